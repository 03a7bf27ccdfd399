"""The other process of the reliability tests: runs a graph on a saver and reports what happened.

    python reliability_worker.py crash KIND CONN THREAD RUN_DIR BLOCK(0|1) start|resume sync|async
    python reliability_worker.py race  KIND CONN THREAD RUN_DIR [PARTIES]
    python reliability_worker.py load  sqlite PATH - RUN_DIR PARTIES

KIND is a `ferrograph.testing.open_saver` kind ("sqlite" or "postgres") and CONN its conn
string. Nodes record every run as a line in RUN_DIR/<node>.runs (appended, so a count survives
a SIGKILL), and coordinate with the test through files in RUN_DIR. The last line of stdout is
a JSON report. Every wait is bounded, so a process the test lost track of ends by itself.
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, TypedDict

from ferrograph.graph import END, START, StateGraph

#: The longest any node waits for anything (seconds).
MAX_WAIT = 120.0
#: Exit status of a run that lost a race with another writer.
CONFLICT = 3


def mark(run_dir: Path, node: str) -> None:
    """Record one run of `node`; O_APPEND with one small write is atomic, even across processes."""
    fd = os.open(run_dir / f"{node}.runs", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
    finally:
        os.close(fd)


def runs(run_dir: Path, node: str) -> int:
    path = run_dir / f"{node}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = MAX_WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


# ---- crash: a step with a fast node and a slow one that blocks until the process is killed


class CrashState(TypedDict):
    log: Annotated[list, operator.add]


def crash_graph(run_dir: Path, block: bool) -> StateGraph:
    def a(state: CrashState) -> dict:
        mark(run_dir, "a")
        return {"log": ["a"]}

    def fast(state: CrashState) -> dict:
        mark(run_dir, "fast")
        return {"log": ["fast"]}

    def slow(state: CrashState) -> dict:
        mark(run_dir, "slow")
        if block:
            # Wait for the step's other node to finish, say "I'm running", and block: the test
            # kills the process here (and gives up on its own after MAX_WAIT).
            wait_until(lambda: runs(run_dir, "fast"), "the fast node")
            (run_dir / "slow.running").write_text(str(os.getpid()))
            time.sleep(MAX_WAIT)
            raise TimeoutError("slow was never killed")
        return {"log": ["slow"]}

    def c(state: CrashState) -> dict:
        mark(run_dir, "c")
        return {"log": ["c", len(state["log"])]}

    g = StateGraph(CrashState)
    g.add_node("a", a)
    g.add_node("fast", fast)
    g.add_node("slow", slow)
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge("a", "fast")
    g.add_edge("a", "slow")
    g.add_edge(["fast", "slow"], "c")
    g.add_edge("c", END)
    return g


# ---- race: two processes step the same thread from the same checkpoint


class RaceState(TypedDict):
    count: int
    by: Annotated[list, operator.add]


RACE_STEPS = 5


def race_graph(run_dir: Optional[Path], barrier: Optional[Callable[[], None]] = None, parties: int = 2) -> StateGraph:
    """A counter that loops RACE_STEPS times. On its first step each runner waits at
    `barrier` (or, across processes, for a ready file from each of `parties` processes), so
    all runners stand on the same checkpoint when they write the step's result."""

    def step(state: RaceState) -> dict:
        if run_dir is not None:
            mark(run_dir, "step")
        if state["count"] == 0:
            if barrier is not None:
                barrier()
            elif run_dir is not None:
                (run_dir / f"ready.{os.getpid()}").write_text("")
                wait_until(lambda: len(list(run_dir.glob("ready.*"))) >= parties, "the other writers")
        return {"count": state["count"] + 1, "by": [os.getpid() if barrier is None else threading.get_ident()]}

    g = StateGraph(RaceState)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["count"] < RACE_STEPS else END)
    return g


# ---- load: writers in several processes on one SQLite file

LOAD_RUNS = 6
LOAD_STEPS = 8


class LoadState(TypedDict):
    n: int
    seen: Annotated[list, operator.add]


def load_graph() -> StateGraph:
    def step(state: LoadState) -> dict:
        return {"n": state["n"] + 1, "seen": [state["n"]]}

    g = StateGraph(LoadState)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["n"] < LOAD_STEPS else END)
    return g


def load(path: str, run_dir: Path, parties: int) -> dict:
    """Writers on threads of this process, all on one SQLite file with the other processes':
    three on graph threads of their own (sharing one saver), one appending runs to the graph
    thread "common" that every process writes (its own saver), one in the race on "race"
    (see `race_graph`). Every outcome is counted; any other error is reported."""
    from ferrograph.checkpointers import SqliteSaver
    from ferrograph.errors import ConcurrentUpdateError

    report: dict = {"own": 0, "common": 0, "conflicts": 0, "race": None, "errors": []}
    lock = threading.Lock()

    def outcome(key: str, value: Any = None) -> None:
        with lock:
            if key == "race":
                report["race"] = value
            elif key == "errors":
                report["errors"].append(value)
            else:
                report[key] += 1

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as e:  # noqa: BLE001 - reported to the test
                outcome("errors", repr(e))

        return run

    with SqliteSaver.from_conn_string(path) as shared:
        graph = load_graph().compile(checkpointer=shared)

        def own(k: int) -> None:
            for i in range(LOAD_RUNS):
                config = {"configurable": {"thread_id": f"own-{os.getpid()}-{k}-{i}"}}
                state = graph.invoke({"n": 0, "seen": []}, config, durability="sync" if i % 2 else "async")
                assert state == {"n": LOAD_STEPS, "seen": list(range(LOAD_STEPS))}, state
                outcome("own")

        def common() -> None:
            with SqliteSaver.from_conn_string(path) as saver:
                app = load_graph().compile(checkpointer=saver)
                for _ in range(LOAD_RUNS):
                    try:
                        app.invoke({"n": 0, "seen": []}, {"configurable": {"thread_id": "common"}})
                        outcome("common")
                    except ConcurrentUpdateError:
                        outcome("conflicts")

        def race() -> None:
            with SqliteSaver.from_conn_string(path) as saver:
                app = race_graph(run_dir, parties=parties).compile(checkpointer=saver)
                try:
                    app.invoke(None, {"configurable": {"thread_id": "race"}})
                    outcome("race", "won")
                except ConcurrentUpdateError:
                    outcome("race", "conflict")

        threads = [threading.Thread(target=guarded(lambda k=k: own(k))) for k in range(3)]
        threads += [threading.Thread(target=guarded(common)), threading.Thread(target=guarded(race))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(MAX_WAIT)
    return report


async def crash_async(kind: str, conn: str, config: dict, run_dir: Path, block: bool, start: bool) -> int:
    from ferrograph.testing import open_async_saver

    async with open_async_saver(kind, conn) as saver:
        graph = crash_graph(run_dir, block=block).compile(checkpointer=saver)
        state = await graph.ainvoke({"log": []} if start else None, config)
    print(json.dumps({"state": state}))
    return 0


def main(argv: list[str]) -> int:
    from ferrograph.errors import ConcurrentUpdateError
    from ferrograph.testing import open_saver

    mode, kind, conn, thread, run_dir = argv[:5]
    config = {"configurable": {"thread_id": thread}}
    if mode == "load":
        print(json.dumps(load(conn, Path(run_dir), int(argv[5]))))
        return 0
    if mode == "crash" and argv[7] == "async":
        return asyncio.run(crash_async(kind, conn, config, Path(run_dir), argv[5] == "1", argv[6] == "start"))
    with open_saver(kind, conn) as saver:
        if mode == "crash":
            graph = crash_graph(Path(run_dir), block=argv[5] == "1").compile(checkpointer=saver)
            state = graph.invoke({"log": []} if argv[6] == "start" else None, config)
            print(json.dumps({"state": state}))
            return 0
        if mode == "race":
            graph = race_graph(Path(run_dir), parties=int(argv[5]) if len(argv) > 5 else 2).compile(checkpointer=saver)
            try:
                state = graph.invoke(None, config)
            except ConcurrentUpdateError as e:
                print(json.dumps({"conflict": str(e)}))
                return CONFLICT
            print(json.dumps({"state": state}))
            return 0
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
