"""Side-by-side benchmarks: the same workloads on LangGraph and on ferrograph, in one process
run, printed as a Markdown table of per-call times and the ratio (LangGraph / ferrograph).

    python benchmarks/run.py                        # all workloads
    python benchmarks/run.py --quick                # fewer repetitions, for a smoke run
    python benchmarks/run.py --only sqlite,storage  # some groups: engine, memory, sqlite,
                                                    # postgres, storage

The SQL groups run LangGraph's own savers (langgraph-checkpoint-sqlite's SqliteSaver and
langgraph-checkpoint-postgres' PostgresSaver) against ferrograph's on the same database:

- sqlite: a file in a temporary folder per saver, in WAL mode with synchronous=NORMAL for both
  (LangGraph's setup() turns WAL on; the benchmark sets synchronous=NORMAL on its connection,
  which is what ferrograph's from_conn_string does).
- postgres: the server at FERROGRAPH_BENCH_POSTGRES_URL (default
  postgresql://postgres@127.0.0.1:5432/postgres); each saver gets a fresh database, created for
  the run and dropped afterwards. Both savers use their own from_conn_string (one autocommit
  connection; LangGraph's in its default mode, which pipelines its statements).
- storage: bytes stored per checkpoint for a 200-step thread whose messages grow by one
  (~200-byte) message a step, each step a put_writes of the new message and a put of the
  checkpoint, on SQLite for both savers. Measured as the pages the database holds after
  `PRAGMA wal_checkpoint(TRUNCATE)` and `VACUUM`: the sum of dbstat's pgsize over every table and
  index (the file size when SQLite lacks dbstat), divided by 200. Lower is better; the ratio is
  LangGraph / ferrograph as for times.
"""

from __future__ import annotations

import argparse
import contextlib
import operator
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Annotated, Any, Callable, Optional, TypedDict

GROUPS = ("engine", "memory", "sqlite", "postgres", "storage")
Workloads = list[tuple[str, dict[str, Callable[[], Any]]]]


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


def _time_per_call(fn: Callable[[], Any], repeat: int, round_seconds: float) -> float:
    """Median over `repeat` rounds of the mean time of a call, in seconds; a round makes as many
    calls as fit in about `round_seconds` (at least one)."""
    start = time.perf_counter()
    fn()  # warm up caches, thread pools, imports; and size the rounds
    number = max(1, min(1000, int(round_seconds / max(time.perf_counter() - start, 1e-7))))
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


def _summary(t: Any) -> tuple:
    """What both libraries must agree on about a checkpoint tuple (ids differ between runs)."""
    values = t.checkpoint["channel_values"]
    return (t.metadata["step"], values["step"], [m["id"] for m in values["messages"]])


def saver_workloads(libs: dict[str, _Lib], stack: contextlib.ExitStack) -> Workloads:
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
            {k: (lambda s=s: _summary(s.get_tuple(thread))) for k, s in savers.items()},
        ),
        (
            "memory saver: list a 1,000-checkpoint thread",
            {k: (lambda s=s: len(list(s.list(thread)))) for k, s in savers.items()},
        ),
        ("10-node linear graph + memory saver, invoke", {k: run_graph(g) for k, g in graphs.items()}),
    ]


def _sqlite_savers(stack: contextlib.ExitStack) -> tuple[dict[str, Any], dict[str, str]]:
    """Each library's SqliteSaver on its own file in a temporary folder; the savers and files."""
    from langgraph.checkpoint.sqlite import SqliteSaver as LangGraphSqliteSaver

    from ferrograph.checkpointers import SqliteSaver

    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="ferrograph-bench-"))
    paths = {lib: os.path.join(folder, f"{lib}.db") for lib in ("langgraph", "ferrograph")}
    conn = sqlite3.connect(paths["langgraph"], check_same_thread=False)
    stack.callback(conn.close)
    langgraph = LangGraphSqliteSaver(conn)
    langgraph.setup()  # journal_mode=WAL
    conn.execute("PRAGMA synchronous=NORMAL")
    ferrograph = stack.enter_context(SqliteSaver.from_conn_string(paths["ferrograph"]))
    ferrograph.setup()  # WAL, synchronous=NORMAL
    return {"langgraph": langgraph, "ferrograph": ferrograph}, paths


def _postgres_base_url() -> str:
    return os.environ.get("FERROGRAPH_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _fresh_postgres_database(stack: contextlib.ExitStack, name: str) -> str:
    """A new database on the benchmark server, dropped when `stack` closes; its URL."""
    import psycopg
    from psycopg import sql as pgsql

    base = _postgres_base_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(pgsql.Identifier(name)))
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))

    stack.callback(drop)
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}"


def _postgres_savers(stack: contextlib.ExitStack) -> dict[str, Any]:
    from langgraph.checkpoint.postgres import PostgresSaver as LangGraphPostgresSaver

    from ferrograph.checkpointers import PostgresSaver

    urls = {lib: _fresh_postgres_database(stack, f"ferrograph_bench_{os.getpid()}_{lib}") for lib in ("langgraph", "ferrograph")}
    langgraph = stack.enter_context(LangGraphPostgresSaver.from_conn_string(urls["langgraph"]))
    langgraph.setup()
    ferrograph = stack.enter_context(PostgresSaver.from_conn_string(urls["ferrograph"]))
    ferrograph.setup()
    return {"langgraph": langgraph, "ferrograph": ferrograph}


def sql_workloads(libs: dict[str, _Lib], stack: contextlib.ExitStack, backend: str) -> Workloads:
    """put, get_tuple, list (whole and limit=10) of a 1,000-checkpoint thread, and the 10-node
    graph with a checkpointer, on LangGraph's and ferrograph's saver for `backend`."""
    savers = _sqlite_savers(stack)[0] if backend == "sqlite" else _postgres_savers(stack)
    label = "SQLite" if backend == "sqlite" else "Postgres"
    for s in savers.values():
        _fill(s, "history", 1000)
    thread = {"configurable": {"thread_id": "history", "checkpoint_ns": ""}}
    graphs = {k: _checkpointed_linear(libs[k], s) for k, s in savers.items()}
    counter = {"n": 0}

    def run_graph(graph: Any) -> Callable[[], Any]:
        def call() -> Any:
            counter["n"] += 1
            return graph.invoke({"n": 0}, {"configurable": {"thread_id": f"graph-{counter['n']}"}})

        return call

    return [
        (f"{label}: put (20 messages + scalars)", {k: _put_call(s) for k, s in savers.items()}),
        (
            f"{label}: get_tuple, latest of 1,000",
            {k: (lambda s=s: _summary(s.get_tuple(thread))) for k, s in savers.items()},
        ),
        (
            f"{label}: list a 1,000-checkpoint thread",
            {k: (lambda s=s: [_summary(t) for t in s.list(thread)]) for k, s in savers.items()},
        ),
        (
            f"{label}: list, limit=10",
            {k: (lambda s=s: [_summary(t) for t in s.list(thread, limit=10)]) for k, s in savers.items()},
        ),
        (f"10-node linear graph + {label} saver, invoke", {k: run_graph(g) for k, g in graphs.items()}),
    ]


def _stored_bytes(path: str) -> int:
    """Bytes a SQLite database holds once compacted (see the module doc)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        try:
            return int(conn.execute("SELECT sum(pgsize) FROM dbstat").fetchone()[0])
        except sqlite3.OperationalError:  # built without dbstat
            return os.path.getsize(path)
    finally:
        conn.close()


def _grow_thread(saver: Any, steps: int) -> list:
    """`steps` checkpoints whose messages grow by one message a step, each step's new message
    also saved as the pending write of the task that produced it, as a graph run does."""
    from ferrograph.checkpointers.base import empty_checkpoint

    config = {"configurable": {"thread_id": "growing", "checkpoint_ns": ""}}
    messages: list = []
    versions: dict = {}
    for step in range(steps):
        new_message = _message(step)
        if step:
            saver.put_writes(config, [("messages", [new_message])], f"task-{step}")
        messages = messages + [new_message]
        checkpoint = empty_checkpoint()
        new_versions = {"messages": saver.get_next_version(versions.get("messages"), None)}
        if not versions:
            new_versions["user"] = saver.get_next_version(None, None)
        versions = {**versions, **new_versions}
        checkpoint["channel_values"] = {"messages": messages, "user": "user-1"}
        checkpoint["channel_versions"] = dict(versions)
        checkpoint["versions_seen"] = {"agent": dict(versions)}
        config = saver.put(config, checkpoint, {"source": "loop", "step": step, "parents": {}}, new_versions)
    return [m["id"] for m in saver.get_tuple(config).checkpoint["channel_values"]["messages"]]


def storage_rows(steps: int = 200) -> list[tuple[str, float, float, str]]:
    """Bytes per checkpoint of a `steps`-step growing thread on SQLite, for both savers."""
    per_checkpoint = {}
    with contextlib.ExitStack() as stack:
        savers, paths = _sqlite_savers(stack)
        results = {k: _grow_thread(s, steps) for k, s in savers.items()}
        _check_same("storage", results)
        for k, path in paths.items():
            per_checkpoint[k] = _stored_bytes(path) / steps
    name = f"SQLite: bytes stored per checkpoint, {steps}-step thread growing by one message a step"
    return [(name, per_checkpoint["langgraph"], per_checkpoint["ferrograph"], "bytes")]


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
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups among {', '.join(GROUPS)}")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown groups {unknown}: choose among {', '.join(GROUPS)}")
    repeat, round_seconds = (3, 0.1) if args.quick else (7, 0.5)
    libs = _libs()
    rows: list[tuple[str, float, float, str]] = []
    with contextlib.ExitStack() as stack:
        for group in groups:
            workloads: Workloads = []
            try:
                if group == "engine":
                    workloads = engine_workloads(libs)
                elif group == "memory":
                    workloads = saver_workloads(libs, stack)
                elif group in ("sqlite", "postgres"):
                    workloads = sql_workloads(libs, stack, group)
                else:
                    rows += storage_rows()
            except ImportError as exc:  # a build without the savers still benchmarks the engine
                print(f"({group} workloads skipped: {exc})")
            except Exception as exc:
                if group != "postgres":
                    raise
                print(f"(postgres workloads skipped: {type(exc).__name__}: {exc})")
            for name, calls in workloads:
                if "put" not in name:
                    _check_same(name, {k: c() for k, c in calls.items()})
                t_lg = _time_per_call(calls["langgraph"], repeat, round_seconds)
                t_fg = _time_per_call(calls["ferrograph"], repeat, round_seconds)
                rows.append((name, t_lg, t_fg, "time"))
    print("| workload | LangGraph | ferrograph | ratio (LangGraph / ferrograph) |")
    print("|---|---:|---:|---:|")
    for name, lg, fg, unit in rows:
        if unit == "bytes":
            print(f"| {name} | {lg:,.0f} B | {fg:,.0f} B | {lg / fg:.1f}x smaller |")
        else:
            print(f"| {name} | {lg * 1e6:,.0f} µs | {fg * 1e6:,.0f} µs | {lg / fg:.1f}x |")
    print(
        f"\nPython {sys.version.split()[0]}, one process, median of {repeat} rounds of ~{round_seconds}s;"
        " SQLite in WAL with synchronous=NORMAL for both libraries; Postgres on a fresh database per saver."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
