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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    repeat, number = (3, 20) if args.quick else (7, 200)
    libs = _libs()
    rows = []
    for name, calls in engine_workloads(libs):
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
