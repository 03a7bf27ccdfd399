"""Side-by-side benchmarks: the same workloads on LangGraph and on ferrograph, in one process
run, printed as a Markdown table of per-call times and the ratio (LangGraph / ferrograph).

    python benchmarks/run.py                        # all workloads
    python benchmarks/run.py --quick                # fewer repetitions, for a smoke run
    python benchmarks/run.py --only sqlite,storage  # some groups: engine, memory, sqlite,
                                                    # postgres, storage

The saver groups (memory, sqlite, postgres) call each library's savers through the saver
protocol, as LangGraph's engine calls them, on an agent-like thread (`AgentThread`): every
checkpoint holds `messages` (the last 20 chat-message dicts of ~200 B, ~4 KB; its version is
bumped every step, the list changing every other step), the scalars `step`, `last_node` and
`tokens_used` (bumped every step), `user_id` (written once) and the trigger channels
`branch:to:agent`/`branch:to:tools`, with metadata `{source, step, parents}`; before each
checkpoint, the task that produced it stores its two writes. After 1,000 such steps: put,
put_writes (one task, two writes), get_tuple of the latest, list of the whole thread (every
tuple looked at), list(limit=10); reads of a 200-step thread whose messages grow by one a step;
the 10-node graph with each library's saver (a fresh thread per invoke); a time-travel cycle
(the 10-node graph on a fresh thread, its history, update_state on its 5th checkpoint, invoke
from the fork); and, on SQLite and Postgres, one LangGraph graph with LangGraph's own saver
against the same graph with `as_langgraph_saver(ferrograph's saver)`.

The SQL groups run LangGraph's own savers (langgraph-checkpoint-sqlite's SqliteSaver and
langgraph-checkpoint-postgres' PostgresSaver) against ferrograph's on the same server:

- sqlite: a file in a temporary folder per saver, in WAL mode with synchronous=NORMAL for both
  (LangGraph's setup() turns WAL on; the benchmark sets synchronous=NORMAL on its connection,
  which is what ferrograph's from_conn_string does).
- postgres: the server at FERROGRAPH_BENCH_POSTGRES_URL (default
  postgresql://postgres@127.0.0.1:5432/postgres); each saver gets fresh databases, created for
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


def _time_per_call(calls: dict[str, Callable[[], Any]], repeat: int, round_seconds: float) -> dict[str, float]:
    """Per library, the median over `repeat` rounds of the mean time of a call, in seconds; a
    round makes as many calls as fit in about `round_seconds` (at least one). The libraries'
    rounds alternate (each round pair in the other order than the last), so a machine that
    slows down or speeds up during a workload moves both libraries' times alike."""
    number = {}
    for name, fn in calls.items():
        start = time.perf_counter()
        fn()  # warm up caches, thread pools, imports; and size the rounds
        number[name] = max(1, min(1000, int(round_seconds / max(time.perf_counter() - start, 1e-7))))
    rounds: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for _ in range(repeat):
        for name in order:
            fn, n = calls[name], number[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            rounds[name].append((time.perf_counter() - start) / n)
        order.reverse()
    return {name: statistics.median(times) for name, times in rounds.items()}


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


def _fresh_id() -> str:
    from ferrograph import _core

    return _core.new_checkpoint_id()[0]


class AgentThread:
    """The steps of an agent-like thread, as LangGraph's engine hands them to a saver: at each
    step the whole checkpoint (every channel's value), the metadata, the versions that changed
    (made by the saver's own `get_next_version`), and the writes of the task that ran.

    Channels: `messages`, the last 20 chat messages (~200 B each, ~4 KB); the agent step adds
    one (the oldest goes), the tools step rewrites the list unchanged, so its version is bumped
    every step; the scalars `step`, `last_node` and `tokens_used`, bumped every step; `user_id`,
    written once by the input; the trigger channels `branch:to:agent` and `branch:to:tools`,
    written by the step before the node they trigger and consumed by it (LangGraph keeps their
    versions and drops their values). Metadata `{source, step, parents}`."""

    WINDOW = 20
    #: Messages are made once and shared by the checkpoints that hold them, so that thousands of
    #: steps can be prepared ahead of a timed loop.
    _messages: dict[int, dict] = {}

    def __init__(self, saver: Any) -> None:
        self.saver = saver
        self.versions: dict[str, Any] = {}
        self.seen: dict[str, dict[str, Any]] = {"__input__": {}}
        self.first_message = 0
        self.tokens = 0
        self.step = -1

    def _message(self, i: int) -> dict:
        message = self._messages.get(i)
        if message is None:
            message = self._messages[i] = _message(i)
        return message

    def _bump(self, channels: list[str]) -> dict[str, Any]:
        new_versions = {}
        for channel in channels:
            self.versions[channel] = self.saver.get_next_version(self.versions.get(channel), None)
            new_versions[channel] = self.versions[channel]
        return new_versions

    def next(self) -> tuple[dict, dict, dict, list[tuple[str, Any]], str]:
        """The next step: checkpoint, metadata, new versions, the writes of the task that ran
        to produce it (empty for the input) and that task's node."""
        self.step += 1
        step = self.step
        if step == 0:
            node, trigger = "__input__", "branch:to:agent"
            new_versions = self._bump(["messages", "step", "last_node", "tokens_used", "user_id", trigger])
        else:
            node = "agent" if step % 2 else "tools"
            trigger = "branch:to:tools" if node == "agent" else "branch:to:agent"
            if node == "agent":
                self.first_message += 1
            self.tokens += 37
            self.seen[node] = {f"branch:to:{node}": self.versions[f"branch:to:{node}"]}
            new_versions = self._bump(["messages", "step", "last_node", "tokens_used", trigger])
        values = {
            "messages": [self._message(j) for j in range(self.first_message, self.first_message + self.WINDOW)],
            "step": step,
            "last_node": node,
            "tokens_used": self.tokens,
            "user_id": "user-1",
            trigger: None,
        }
        checkpoint = {
            "v": 4,
            "id": _fresh_id(),
            "ts": f"2025-01-01T00:00:{step % 60:02d}.000000+00:00",
            "channel_values": values,
            "channel_versions": dict(self.versions),
            "versions_seen": {k: dict(v) for k, v in self.seen.items()},
            "updated_channels": sorted(new_versions),
        }
        metadata = {"source": "input" if step == 0 else "loop", "step": step - 1, "parents": {}}
        writes = [] if step == 0 else [("messages", values["messages"][-1:]), (trigger, None)]
        return checkpoint, metadata, new_versions, writes, node


def _run_agent(saver: Any, thread: str, steps: int) -> dict:
    """`steps` steps of an `AgentThread` stored as the engine stores them: each task's writes
    against the checkpoint it ran from, then the next checkpoint. Returns the last config."""
    agent = AgentThread(saver)
    config: dict = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    for _ in range(steps):
        checkpoint, metadata, new_versions, writes, node = agent.next()
        if writes:
            saver.put_writes(config, writes, f"task-{agent.step}", f"~__pregel_pull, {node}")
        config = saver.put(config, checkpoint, metadata, new_versions)
    return config


#: Calls a timed workload makes at most: the warm-up, then up to 1,000 per round, 7 rounds.
MAX_CALLS = 1 + 1000 * 7


def _put_call(saver: Any) -> Callable[[], Any]:
    """Puts chained on a thread of their own; the checkpoints are built ahead (one per call,
    each with new versions, as a run makes them), so only put() is timed."""
    agent = AgentThread(saver)
    prepared = [agent.next()[:3] for _ in range(MAX_CALLS)]
    state = {"config": {"configurable": {"thread_id": "put", "checkpoint_ns": ""}}, "i": 0}

    def put() -> Any:
        checkpoint, metadata, new_versions = prepared[state["i"]]
        state["i"] += 1
        state["config"] = saver.put(state["config"], checkpoint, metadata, new_versions)
        return None

    return put


def _put_writes_call(saver: Any) -> Callable[[], Any]:
    """One task's two writes (a message and a trigger), a new task each call, against one
    checkpoint of a thread of its own (so the history's checkpoints keep their writes)."""
    config = _run_agent(saver, "writes", 1)
    counter = {"n": 0}
    message = [_message(10**5)]

    def put_writes() -> Any:
        counter["n"] += 1
        saver.put_writes(config, [("messages", message), ("branch:to:tools", None)], f"task-{counter['n']}", "~__pregel_pull, agent")
        return None

    return put_writes


def _summary(t: Any) -> tuple:
    """What both libraries must agree on about a checkpoint tuple (ids differ between runs)."""
    values = t.checkpoint["channel_values"]
    return (
        t.metadata["step"],
        values.get("step"),
        values.get("user_id"),
        [m["id"] for m in values.get("messages", ())],
        sorted((w[1], repr(w[2])) for w in t.pending_writes),
    )


def _checkpointed_linear(lib: Any, saver: Any) -> Any:
    g = lib.StateGraph(LinearState)
    names = [f"n{i}" for i in range(10)]
    for name in names:
        g.add_node(name, _inc)
    g.add_edge(lib.START, names[0])
    for a, b in zip(names, names[1:]):
        g.add_edge(a, b)
    return g.compile(checkpointer=saver)


def _graph_call(graph: Any, prefix: str) -> Callable[[], Any]:
    """Invokes the 10-node graph on a fresh thread per call; returns its final state."""
    counter = {"n": 0}

    def call() -> Any:
        counter["n"] += 1
        return graph.invoke({"n": 0}, {"configurable": {"thread_id": f"{prefix}-{counter['n']}"}})

    return call


def _time_travel_call(graph: Any, prefix: str) -> Callable[[], Any]:
    """A time-travel cycle on a fresh thread per call: the 10-node graph runs (10 steps), its
    history is read whole, the 5th checkpoint is forked by update_state, and the graph runs on
    from the fork. Returns what both libraries must agree on."""
    counter = {"n": 0}

    def call() -> Any:
        counter["n"] += 1
        config = {"configurable": {"thread_id": f"{prefix}-{counter['n']}"}}
        graph.invoke({"n": 0}, config)
        history = list(graph.get_state_history(config))
        fifth = history[-5]
        fork = graph.update_state(fifth.config, {"n": 100})
        final = graph.invoke(None, fork)
        return (len(history), fifth.values, fifth.next, final)

    return call


def protocol_workloads(label: str, savers: dict[str, Any]) -> Workloads:
    """The saver protocol on an agent-like thread of 1,000 steps (`AgentThread`), called as
    LangGraph's engine calls it: put, put_writes, get_tuple of the latest, list of the whole
    thread (every tuple looked at), list(limit=10); and reads of a 200-step thread whose
    messages grow by one a step."""
    thread = {"configurable": {"thread_id": "history", "checkpoint_ns": ""}}
    growing = {"configurable": {"thread_id": "growing", "checkpoint_ns": ""}}
    for s in savers.values():
        _run_agent(s, "history", 1000)
        _grow_thread(s, 200)
    return [
        (f"{label}: put (agent checkpoint, chained)", {k: _put_call(s) for k, s in savers.items()}),
        (f"{label}: put_writes (one task, 2 writes)", {k: _put_writes_call(s) for k, s in savers.items()}),
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
        (
            f"{label}: get_tuple, latest of a 200-step growing thread",
            {k: (lambda s=s: _summary(s.get_tuple(growing))) for k, s in savers.items()},
        ),
        (
            f"{label}: list a 200-step growing thread",
            {k: (lambda s=s: [_summary(t) for t in s.list(growing)]) for k, s in savers.items()},
        ),
    ]


def graph_workloads(label: str, libs: dict[str, _Lib], savers: dict[str, Any], wrapped: Optional[dict[str, Any]] = None) -> Workloads:
    """The 10-node graph with each library's saver (fresh thread per invoke), the time-travel
    cycle, and, with `wrapped` (LangGraph's saver and ferrograph's wrapped by
    `as_langgraph_saver`), one LangGraph graph on each."""
    graphs = {k: _checkpointed_linear(libs[k], s) for k, s in savers.items()}
    rows = [
        (f"10-node linear graph + {label} saver, invoke", {k: _graph_call(g, "graph") for k, g in graphs.items()}),
        (f"time-travel cycle + {label} saver", {k: _time_travel_call(g, "travel") for k, g in graphs.items()}),
    ]
    if wrapped is not None:
        on_langgraph = {k: _checkpointed_linear(libs["langgraph"], s) for k, s in wrapped.items()}
        rows.append(
            (
                f"LangGraph 10-node graph on {label}: its own saver vs as_langgraph_saver(ferrograph's)",
                {k: _graph_call(g, "lg-graph") for k, g in on_langgraph.items()},
            )
        )
    return rows


def memory_workloads(libs: dict[str, _Lib], stack: contextlib.ExitStack) -> Workloads:
    from langgraph.checkpoint.memory import InMemorySaver

    from ferrograph.checkpointers import MemorySaver

    savers = {"langgraph": InMemorySaver(), "ferrograph": MemorySaver()}
    graph_savers = {"langgraph": InMemorySaver(), "ferrograph": MemorySaver()}
    return protocol_workloads("memory", savers) + graph_workloads("memory", libs, graph_savers)


def _sqlite_savers(stack: contextlib.ExitStack) -> tuple[dict[str, Any], dict[str, str]]:
    """Each library's SqliteSaver on its own new file in a temporary folder; the savers and
    files."""
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


def _postgres_savers(stack: contextlib.ExitStack, purpose: str) -> dict[str, Any]:
    """Each library's PostgresSaver on a fresh database of its own."""
    from langgraph.checkpoint.postgres import PostgresSaver as LangGraphPostgresSaver

    from ferrograph.checkpointers import PostgresSaver

    urls = {
        lib: _fresh_postgres_database(stack, f"ferrograph_bench_{os.getpid()}_{purpose}_{lib}")
        for lib in ("langgraph", "ferrograph")
    }
    langgraph = stack.enter_context(LangGraphPostgresSaver.from_conn_string(urls["langgraph"]))
    langgraph.setup()
    ferrograph = stack.enter_context(PostgresSaver.from_conn_string(urls["ferrograph"]))
    ferrograph.setup()
    return {"langgraph": langgraph, "ferrograph": ferrograph}


def _wrapped(savers: dict[str, Any]) -> dict[str, Any]:
    """LangGraph's saver as is, ferrograph's behind `as_langgraph_saver`."""
    from ferrograph.integrations.langgraph import as_langgraph_saver

    return {"langgraph": savers["langgraph"], "ferrograph": as_langgraph_saver(savers["ferrograph"])}


def sql_workloads(libs: dict[str, _Lib], stack: contextlib.ExitStack, backend: str) -> Workloads:
    """The protocol and graph workloads on LangGraph's and ferrograph's saver for `backend`,
    each workload family on databases of its own."""
    if backend == "sqlite":
        label = "SQLite"
        protocol, graphs, wrapped = (_sqlite_savers(stack)[0] for _ in range(3))
    else:
        label = "Postgres"
        protocol, graphs, wrapped = (_postgres_savers(stack, purpose) for purpose in ("protocol", "graphs", "wrapped"))
    return protocol_workloads(label, protocol) + graph_workloads(label, libs, graphs, _wrapped(wrapped))


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
                    workloads = memory_workloads(libs, stack)
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
                times = _time_per_call(calls, repeat, round_seconds)
                rows.append((name, times["langgraph"], times["ferrograph"], "time"))
    print("| workload | LangGraph | ferrograph | ratio (LangGraph / ferrograph) |")
    print("|---|---:|---:|---:|")
    for name, lg, fg, unit in rows:
        if unit == "bytes":
            print(f"| {name} | {lg:,.0f} B | {fg:,.0f} B | {lg / fg:.1f}x smaller |")
        else:
            print(f"| {name} | {lg * 1e6:,.0f} µs | {fg * 1e6:,.0f} µs | {lg / fg:.1f}x |")
    print(
        f"\nPython {sys.version.split()[0]}, one process, median of {repeat} rounds of ~{round_seconds}s, the libraries' rounds alternating;"
        " SQLite in WAL with synchronous=NORMAL for both libraries; Postgres on a fresh database per saver."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
