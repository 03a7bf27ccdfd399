"""Side-by-side benchmarks: the same workloads on LangGraph and on ferrograph, in one process
run, printed as a Markdown table of per-call times and the ratio (LangGraph / ferrograph).

    python benchmarks/run.py            # all workloads
    python benchmarks/run.py --quick    # fewer repetitions, for a smoke run
"""

from __future__ import annotations

import argparse
import operator
import statistics
import sys
import time
from typing import Annotated, Any, Callable, TypedDict


class LinearState(TypedDict):
    n: int


class FanState(TypedDict):
    n: int
    results: Annotated[list, operator.add]


def _inc(state: dict) -> dict:
    return {"n": state["n"] + 1}


def _source(state: dict) -> dict:
    return {"n": state["n"]}


def _join(state: dict) -> dict:
    return {"n": len(state["results"])}


def _make_worker(i: int) -> Callable[[dict], dict]:
    def worker(state: dict) -> dict:
        return {"results": [i]}

    return worker


def linear_graph(lib: Any, nodes: int = 10) -> Any:
    g = lib.StateGraph(LinearState)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        g.add_node(name, _inc)
    g.add_edge(lib.START, names[0])
    for a, b in zip(names, names[1:]):
        g.add_edge(a, b)
    g.add_edge(names[-1], lib.END)
    return g.compile()


def fanout_graph(lib: Any, width: int = 20) -> Any:
    g = lib.StateGraph(FanState)
    g.add_node("source", _source)
    g.add_node("join", _join)
    workers = [f"w{i}" for i in range(width)]
    for i, name in enumerate(workers):
        g.add_node(name, _make_worker(i))
        g.add_edge("source", name)
    g.add_edge(lib.START, "source")
    g.add_edge(workers, "join")
    g.add_edge("join", lib.END)
    return g.compile()


class _Lib:
    def __init__(self, module: Any) -> None:
        self.StateGraph = module.StateGraph
        self.START = module.START
        self.END = module.END


def _libs() -> dict[str, _Lib]:
    import langgraph.graph as lg

    import ferrograph.graph as fg

    return {"langgraph": _Lib(lg), "ferrograph": _Lib(fg)}


def _time_per_call(fn: Callable[[], Any], repeat: int, number: int) -> float:
    """Median over `repeat` rounds of the mean time of `number` calls, in seconds."""
    fn()  # warm up caches, thread pools, imports
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


def _check_same(name: str, results: dict[str, Any]) -> None:
    values = list(results.values())
    if any(v != values[0] for v in values[1:]):
        raise SystemExit(f"{name}: implementations disagree: {results}")


def engine_workloads(libs: dict[str, _Lib]) -> list[tuple[str, dict[str, Callable[[], Any]]]]:
    linear = {k: linear_graph(v) for k, v in libs.items()}
    fan = {k: fanout_graph(v) for k, v in libs.items()}
    return [
        ("10-node linear graph, invoke", {k: (lambda g=g: g.invoke({"n": 0})) for k, g in linear.items()}),
        ("20-way fan-out + reducer join, invoke", {k: (lambda g=g: g.invoke({"n": 0})) for k, g in fan.items()}),
    ]


def _message(i: int) -> dict:
    """A chat-message-like dict of about 200 bytes."""
    return {
        "role": "assistant" if i % 2 else "user",
        "content": f"message {i}: " + "lorem ipsum dolor sit amet " * 5,
        "id": f"msg-{i:06d}",
        "metadata": {"tokens": 42 + i, "model": "local"},
    }


def _checkpoint(saver: Any, i: int, previous_versions: dict) -> tuple[dict, dict]:
    """A realistic checkpoint: 20 messages plus a few scalar channels; every put changes the
    messages and the step counter, as a chat turn does."""
    from ferrograph.checkpointers.base import empty_checkpoint

    checkpoint = empty_checkpoint()
    values = {
        "messages": [_message(j) for j in range(i, i + 20)],
        "step": i,
        "user": "user-1",
        "done": False,
    }
    versions = dict(previous_versions)
    changed = ["messages", "step"] if previous_versions else list(values)
    new_versions = {}
    for channel in changed:
        versions[channel] = saver.get_next_version(versions.get(channel), None)
        new_versions[channel] = versions[channel]
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = versions
    checkpoint["versions_seen"] = {"agent": dict(versions)}
    return checkpoint, new_versions


def _fill(saver: Any, thread: str, count: int) -> dict:
    """Write `count` checkpoints to a thread; returns the config of the last one."""
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    versions: dict = {}
    for i in range(count):
        checkpoint, new_versions = _checkpoint(saver, i, versions)
        versions = checkpoint["channel_versions"]
        config = saver.put(config, checkpoint, {"source": "loop", "step": i, "parents": {}}, new_versions)
    return config


def _put_call(saver: Any) -> Callable[[], Any]:
    state = {"config": {"configurable": {"thread_id": "put", "checkpoint_ns": ""}}, "versions": {}, "i": 0}
    prepared = []
    for i in range(64):  # checkpoints are built ahead, so only put() is timed
        checkpoint, new_versions = _checkpoint(saver, i, state["versions"])
        state["versions"] = checkpoint["channel_versions"]
        prepared.append((checkpoint, new_versions))

    def put() -> Any:
        i = state["i"] = (state["i"] + 1) % len(prepared)
        checkpoint, new_versions = prepared[i]
        checkpoint = {**checkpoint, "id": _fresh_id()}
        state["config"] = saver.put(state["config"], checkpoint, {"source": "loop", "step": i, "parents": {}}, new_versions)
        return None

    return put


def _fresh_id() -> str:
    from ferrograph import _core

    return _core.new_checkpoint_id()[0]


def saver_workloads(libs: dict[str, _Lib]) -> list[tuple[str, dict[str, Callable[[], Any]]]]:
    from langgraph.checkpoint.memory import InMemorySaver

    from ferrograph.checkpointers import MemorySaver

    savers = {"langgraph": InMemorySaver(), "ferrograph": MemorySaver()}
    latest = {k: _fill(s, "history", 1000) for k, s in savers.items()}
    thread = {"configurable": {"thread_id": "history", "checkpoint_ns": ""}}
    graphs = {k: _checkpointed_linear(libs[k], s) for k, s in {"langgraph": InMemorySaver(), "ferrograph": MemorySaver()}.items()}
    counter = {"n": 0}

    def run_graph(graph: Any) -> Callable[[], Any]:
        def call() -> Any:
            counter["n"] += 1
            return graph.invoke({"n": 0}, {"configurable": {"thread_id": f"t{counter['n']}"}})

        return call

    return [
        ("memory saver: put (20 messages + scalars)", {k: _put_call(s) for k, s in savers.items()}),
        (
            "memory saver: get_tuple, latest of 1,000",
            {k: (lambda s=s: s.get_tuple(thread).checkpoint["id"]) for k, s in savers.items()},
        ),
        (
            "memory saver: list a 1,000-checkpoint thread",
            {k: (lambda s=s: len(list(s.list(thread)))) for k, s in savers.items()},
        ),
        ("10-node linear graph + memory saver, invoke", {k: run_graph(g) for k, g in graphs.items()}),
    ]


def _checkpointed_linear(lib: Any, saver: Any) -> Any:
    g = lib.StateGraph(LinearState)
    names = [f"n{i}" for i in range(10)]
    for name in names:
        g.add_node(name, _inc)
    g.add_edge(lib.START, names[0])
    for a, b in zip(names, names[1:]):
        g.add_edge(a, b)
    return g.compile(checkpointer=saver)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    repeat, number = (3, 20) if args.quick else (7, 200)
    libs = _libs()
    rows = []
    workloads = engine_workloads(libs)
    try:
        workloads += saver_workloads(libs)
    except ImportError as exc:  # a build without the savers still benchmarks the engine
        print(f"(saver workloads skipped: {exc})")
    for name, calls in workloads:
        if "put" not in name:
            _check_same(name, {k: c() for k, c in calls.items()})
        t_lg = _time_per_call(calls["langgraph"], repeat, number)
        t_fg = _time_per_call(calls["ferrograph"], repeat, number)
        rows.append((name, t_lg, t_fg))
    print("| workload | LangGraph | ferrograph | speed-up |")
    print("|---|---:|---:|---:|")
    for name, t_lg, t_fg in rows:
        print(f"| {name} | {t_lg * 1e6:,.0f} µs | {t_fg * 1e6:,.0f} µs | {t_lg / t_fg:.1f}x |")
    print(f"\nPython {sys.version.split()[0]}, one process, median of {repeat} rounds of {number} calls.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
