"""The fork server of the fault-injection test: imports ferrograph once, then forks a child per
run, so that killing a run at a random instant costs a fork, not an interpreter start.

    python fault_worker.py          # reads commands on stdin, one JSON object a line

A command is {"kind", "conn", "thread", "durability", "driver" ("invoke" | "ainvoke"),
"effects" (a file), "tag" (names the run in the effects), "report" (a file)}. The server forks a child that runs the thread on to its
end (from the input when nothing is stored, else `invoke(None, config)`) and answers with the
child's pid; {"wait": pid} answers with the child's exit status once it is gone (a negative
signal number when killed); {"reference": ...} runs the same graph without a saver in a child
and answers with its final state. A child writes its report ({"state", "seconds"}) to "report"
before it exits.

Every node run appends "<node>:<round> <tag>" to the effects file (one O_APPEND write: atomic,
and it survives a SIGKILL) before it returns its writes: a side effect the test can count.
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import sys
import threading
import time
from typing import Annotated, Any, Optional, TypedDict

# Imported here, once, so that a forked run starts with everything loaded.
import ferrograph.testing  # noqa: F401
from ferrograph.checkpointers import AsyncPostgresSaver, AsyncSqliteSaver, PostgresSaver, SqliteSaver  # noqa: F401
from ferrograph.graph import END, START, StateGraph

#: Rounds of the graph: each is a fan-out step (left | right) and a join step.
ROUNDS = 8


class FaultState(TypedDict):
    round: int
    #: "<node>:<round>" per node run, in the order the steps applied them.
    log: Annotated[list, operator.add]
    #: One per node run, written with the log entry: a checkpoint or task with one of the two
    #: and not the other would be a half-written step.
    tally: Annotated[int, operator.add]


def effect(path: str, entry: str, tag: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{entry} {tag}\n".encode())
    finally:
        os.close(fd)


def build(effects: Optional[str] = None, tag: str = "") -> StateGraph:
    def node(name: str) -> Any:
        def run(state: FaultState) -> dict:
            entry = f"{name}:{state['round']}"
            if effects is not None:
                effect(effects, entry, tag)
            out: dict = {"log": [entry], "tally": 1}
            if name == "join":
                out["round"] = state["round"] + 1
            return out

        return run

    g = StateGraph(FaultState)
    for name in ("left", "right", "join"):
        g.add_node(name, node(name))
    g.add_edge(START, "left")
    g.add_edge(START, "right")
    g.add_edge(["left", "right"], "join")
    g.add_conditional_edges("join", lambda s: ["left", "right"] if s["round"] < ROUNDS else END)
    return g


START_STATE = {"round": 0, "log": [], "tally": 0}


def run_child(cmd: dict) -> dict:
    from ferrograph.testing import open_async_saver, open_saver

    config = {"configurable": {"thread_id": cmd["thread"]}, "recursion_limit": 10 * ROUNDS}
    durability = cmd["durability"]
    graph = build(cmd["effects"], cmd["tag"])
    started = time.perf_counter()
    if cmd["driver"] == "ainvoke":

        async def go() -> Any:
            async with open_async_saver(cmd["kind"], cmd["conn"], setup=False) as saver:
                app = graph.compile(checkpointer=saver)
                stored = await saver.aget_tuple(config)
                return await app.ainvoke(START_STATE if stored is None else None, config, durability=durability)

        state = asyncio.run(go())
    else:
        with open_saver(cmd["kind"], cmd["conn"], setup=False) as saver:
            app = graph.compile(checkpointer=saver)
            stored = saver.get_tuple(config)
            state = app.invoke(START_STATE if stored is None else None, config, durability=durability)
    return {"state": state, "seconds": time.perf_counter() - started}


def child(cmd: dict) -> None:
    """In the forked child: run, report, and leave without running the parent's exit code."""
    status = 0
    try:
        if "reference" in cmd:
            report: dict = {"state": build().compile().invoke(START_STATE, {"recursion_limit": 10 * ROUNDS})}
            path = cmd["reference"]
        else:
            report = run_child(cmd)
            path = cmd["report"]
        with open(path + ".tmp", "w") as f:
            json.dump(report, f)
        os.replace(path + ".tmp", path)
    except BaseException as exc:  # reported to the test through the exit status and stderr
        print(f"fault worker child {os.getpid()}: {exc!r}", file=sys.stderr, flush=True)
        status = 1
    finally:
        os._exit(status)


def main() -> int:
    # A fork copies only the calling thread: the server must not have started any.
    assert threading.active_count() == 1
    for line in sys.stdin:
        cmd = json.loads(line)
        if "wait" in cmd:
            _pid, status = os.waitpid(cmd["wait"], 0)
            answer = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        else:
            pid = os.fork()
            if pid == 0:
                child(cmd)
            answer = pid
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
