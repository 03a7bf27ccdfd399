"""Load, bounded for CI: 50 threads x 50 steps through an AsyncPostgresSaver on a pool with 8
runs at a time, every checkpoint checked; and memory that stays flat across 10,000 runs with
the MemorySaver. Figures are printed (run pytest with -s to see them in the CI log); only
generous bounds are asserted, never timings."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
import tracemalloc
from typing import Annotated, TypedDict
import operator

from ferrograph.checkpointers import MemorySaver
from ferrograph.graph import END, START, StateGraph
from ferrograph.testing import open_async_saver

THREADS = 50
STEPS = 50
CONCURRENT = 8


class Counter(TypedDict):
    n: int
    trail: Annotated[list, operator.add]


def counter_graph(steps: int):
    async def step(state: Counter) -> dict:
        return {"n": state["n"] + 1, "trail": [state["n"]]}

    g = StateGraph(Counter)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["n"] < steps else END)
    return g


async def test_fifty_threads_of_fifty_steps_through_a_postgres_pool(ferrograph_postgres_url):
    async with open_async_saver("postgres", ferrograph_postgres_url, pool=True) as saver:
        graph = counter_graph(STEPS).compile(checkpointer=saver)
        gate = asyncio.Semaphore(CONCURRENT)

        async def run(i: int) -> dict:
            async with gate:
                config = {"configurable": {"thread_id": f"load-{i}"}, "recursion_limit": STEPS + 10}
                return await graph.ainvoke({"n": 0, "trail": []}, config)

        started = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(run(i) for i in range(THREADS))), timeout=600)
        elapsed = time.perf_counter() - started
        expected = {"n": STEPS, "trail": list(range(STEPS))}
        assert all(r == expected for r in results)

        total = 0
        for i in range(THREADS):
            tuples = [t async for t in saver.alist({"configurable": {"thread_id": f"load-{i}"}})]
            total += len(tuples)
            assert len(tuples) == STEPS + 2  # input, the START step, STEPS steps
            assert [t.metadata["step"] for t in tuples] == list(range(STEPS, -2, -1))
            for newer, older in zip(tuples, tuples[1:]):
                assert newer.parent_config["configurable"]["checkpoint_id"] == older.config["configurable"]["checkpoint_id"]
            assert tuples[-1].parent_config is None
            for t in tuples:
                step = t.metadata["step"]
                values = t.checkpoint["channel_values"]
                if step >= 1:
                    assert values["n"] == step and values["trail"] == list(range(step))
            latest = await saver.aget_tuple({"configurable": {"thread_id": f"load-{i}"}})
            assert latest.checkpoint["channel_values"]["n"] == STEPS
        assert total == THREADS * (STEPS + 2)
        print(
            f"\n[load] {THREADS} threads x {STEPS} steps, {CONCURRENT} concurrent runs, AsyncPostgresSaver on a pool:"
            f" {total} checkpoints in {elapsed:.1f}s ({total / elapsed:.0f} checkpoints/s)"
        )


def rss_bytes() -> int:
    """The process's current resident set size (Linux /proc), else its peak (getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_memory_stays_flat_across_ten_thousand_runs_with_the_memory_saver():
    saver = MemorySaver()

    def step(state: Counter) -> dict:
        return {"n": state["n"] + 1, "trail": [state["n"]]}

    g = StateGraph(Counter)
    g.add_node("a", step)
    g.add_node("b", step)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    graph = g.compile(checkpointer=saver)

    def runs(start: int, count: int) -> None:
        for i in range(start, start + count):
            thread = f"m-{i}"
            assert graph.invoke({"n": 0, "trail": []}, {"configurable": {"thread_id": thread}})["n"] == 2
            saver.delete_thread(thread)

    runs(0, 1_000)  # warm-up: caches, interned strings, allocator pools
    gc.collect()
    rss_warm = rss_bytes()
    tracemalloc.start()
    traced_warm = tracemalloc.get_traced_memory()[0]
    runs(1_000, 9_000)
    gc.collect()
    traced_end, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_end = rss_bytes()
    assert saver.stats()["threads"] == 0 and saver.stats()["checkpoints"] == 0
    rss_growth = rss_end - rss_warm
    traced_growth = traced_end - traced_warm
    print(
        f"\n[memory] 10,000 runs (1,000 warm-up + 9,000 measured) on fresh threads, MemorySaver, delete_thread after"
        f" each: RSS {rss_warm / 2**20:.1f} MiB after warm-up -> {rss_end / 2**20:.1f} MiB at the end"
        f" ({rss_growth / 2**20:+.2f} MiB); Python objects (tracemalloc) {traced_growth / 1024:+.1f} KiB"
        f" (peak {traced_peak / 1024:.0f} KiB)"
    )
    assert traced_growth < 1 * 2**20, traced_growth  # Python objects: well under 1 MiB for 9,000 runs
    assert rss_growth < 32 * 2**20, rss_growth  # process: generous, allocators keep pages
