"""Memory of a long run under each durability: a 10,000-step graph whose one node writes a fresh
20 KB string every step, on PostgresSaver.from_conn_string, run once per mode in a fresh process
so each peak RSS (ru_maxrss) is that mode's alone. Printed as a Markdown table.

    python benchmarks/durability.py                  # 10,000 steps, modes async, sync, unbounded
    python benchmarks/durability.py --steps 2000     # a shorter run

"unbounded" is "async" with both write-behind bounds out of reach (max_pending_bytes and
max_pending_steps of 10**12): what the background writer holds when nothing stops it. The
server is FERROGRAPH_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
each run gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import TypedDict

MODES = {
    "sync": ("sync", {}),
    "async": ("async", {}),
    "unbounded": ("async", {"max_pending_bytes": 10**12, "max_pending_steps": 10**12}),
}


class State(TypedDict):
    n: int
    blob: str


def _database(base: str, name: str, create: bool) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{base.rpartition('/')[0]}/{name}"


def child(mode: str, steps: int, size: int, url: str) -> dict:
    """One run in this process; what it measured."""
    from ferrograph.checkpointers import PostgresSaver
    from ferrograph.graph import START, StateGraph

    durability, bounds = MODES[mode]

    def node(state: State) -> dict:
        n = state["n"] + 1
        # A fresh string each step (as a model's reply would be), not a shared constant.
        return {"n": n, "blob": str(n % 10) * (size - 8) + f"{n:08d}"}

    g = StateGraph(State)
    g.add_node("step", node)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["n"] < steps else "__end__")
    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        graph = g.compile(checkpointer=saver, **bounds)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        out = graph.invoke({"n": 0, "blob": ""}, {"configurable": {"thread_id": "t"}, "recursion_limit": steps + 1}, durability=durability)
        seconds = time.perf_counter() - start
        assert out["n"] == steps
        stored = saver.get_tuple({"configurable": {"thread_id": "t"}})
        assert stored is not None and stored.checkpoint["channel_values"]["n"] == steps
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "seconds": seconds, "peak_rss_mb": peak / 1024, "rss_before_mb": before / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=20_000, help="bytes of the value written each step")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated among {', '.join(MODES)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.size, args.url)))
        return
    base = os.environ.get("FERROGRAPH_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    rows = []
    for mode in args.modes.split(","):
        name = f"ferrograph_bench_durability_{os.getpid()}_{mode}"
        url = _database(base, name, create=True)
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--steps", str(args.steps), "--size", str(args.size), "--url", url],
                check=True,
                capture_output=True,
                text=True,
            )
        finally:
            _database(base, name, create=False)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.steps:,} steps, {args.size:,} B written per step, PostgresSaver.from_conn_string\n")
    print("| durability | wall time | steps/s | peak RSS | RSS before the run |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['mode']} | {row['seconds']:.1f} s | {args.steps / row['seconds']:,.0f} "
            f"| {row['peak_rss_mb']:.0f} MB | {row['rss_before_mb']:.0f} MB |"
        )


if __name__ == "__main__":
    main()
