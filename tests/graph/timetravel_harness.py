"""Harness of the time-travel differential tests (test_time_travel*.py).

A *scenario* is a function ``scenario(tt)`` (or ``async def``) written once against a ``TT``
context: it builds its graph through ``tt.build(...)``, drives it (invoke, update_state,
replay, resume...) and records what it observes with ``tt.rec(label, data)``. ``run_both``
runs the scenario on LangGraph (on its own InMemorySaver) and on ferrograph (on the saver of
the ``time_travel_saver`` fixture) and compares the two records label by label.

Canonical forms (see ``TT.snap``): everything a user sees in a ``StateSnapshot`` is compared
exactly, except what is implementation-specific by nature:

* checkpoint ids become positions in the thread (0 = oldest checkpoint; ids sort by time,
  so a position never changes once given) — in ``config``, ``parent_config`` and in configs
  returned by ``update_state``/``invoke``;
* ``created_at`` is only checked to be a string; task ids are dropped;
* interrupt ids become labels ``<interrupt#k>`` in order of first sight *within one
  implementation's run*: an id that changed between two ``get_state`` calls gets a new label
  and shows up as a difference;
* ``run_id`` in metadata becomes ``<run_id>``;
* values go through ``difftest_harness.canon`` (tuples and lists compare equal, etc.).

Nodes count their runs in ``tt.probe`` (a fresh dict per implementation and scenario);
``tt.ran()`` returns the counts since the previous call and resets them, which proves which
nodes an operation re-ran. ``tt.flags`` lets a scenario switch node behaviour (e.g. make a
node fail once).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from typing import Any, Callable, Optional

from difftest_harness import Impl, canon, error_category

_LOCK = threading.Lock()

#: A task id inside a checkpoint namespace ("node:<task id>"); both implementations make their
#: own, so namespaces are compared with `<task>` in their place (see `namespaces`).
_TASK_ID = re.compile(r":[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


def namespaces(value: Any) -> Any:
    """`value` (canonical data) with each task id of a namespace replaced by `<task>`."""
    if isinstance(value, str):
        return _TASK_ID.sub(":<task>", value)
    if isinstance(value, (list, tuple)):
        return [namespaces(v) for v in value]
    if isinstance(value, dict):
        return {namespaces(k): namespaces(v) for k, v in value.items()}
    return value


class NodeBoom(Exception):
    """A node's own error (the failure scenarios)."""


def with_time_travel_names(impl: Impl) -> Impl:
    """``impl`` plus the names the time-travel graphs need (interrupt, Interrupt)."""
    if impl.name == "langgraph":
        from langgraph.types import Interrupt, interrupt
    else:
        from ferrograph.types import Interrupt, interrupt
    return Impl(**{**vars(impl), "interrupt": interrupt, "Interrupt": Interrupt})


def hit(probe: dict, name: str) -> None:
    """Count one run of node `name` (nodes of one step may run on several threads)."""
    with _LOCK:
        probe[name] = probe.get(name, 0) + 1


class TT:
    """One implementation's side of a scenario."""

    def __init__(self, impl: Impl, saver: Any, thread_id: str = "t1") -> None:
        self.impl = with_time_travel_names(impl)
        self.saver = saver
        self.probe: dict = {}
        self.flags: dict = {}
        self.log: list = []
        self.graph: Any = None
        self.cfg = {"configurable": {"thread_id": thread_id}}
        self._interrupt_labels: dict = {}
        # Task paths and the results of tasks that failed or paused and then finished are
        # compared exactly (a test may relax them to isolate another difference).
        self.exact_task_paths = True
        self.strict_task_results = True

    # ---- building and recording

    def build(self, builder: Callable, **compile_kwargs: Any) -> Any:
        """``builder(tt)`` returns an uncompiled StateGraph; compiled here on the saver."""
        self.graph = builder(self).compile(checkpointer=self.saver, **compile_kwargs)
        return self.graph

    def rec(self, label: str, data: Any) -> None:
        self.log.append((label, data))

    def ran(self) -> dict:
        with _LOCK:
            out = dict(sorted(self.probe.items()))
            self.probe.clear()
        return out

    def thread(self, thread_id: Optional[str] = None) -> dict:
        return {"configurable": {"thread_id": thread_id or self.cfg["configurable"]["thread_id"]}}

    # ---- canonical forms

    def value(self, x: Any) -> Any:
        """Canonical value, with Interrupt objects as {"__interrupt__": value, "id": label}."""
        if isinstance(x, self.impl.Interrupt):
            return {"__interrupt__": self.value(x.value), "id": self.interrupt_label(x.id)}
        if isinstance(x, dict):
            return {str(k): self.value(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            if x and all(isinstance(v, self.impl.Interrupt) for v in x):
                # Interrupts of parallel tasks: ferrograph lists them in finishing order,
                # LangGraph in task order; compared as a set (sorted by value, then labelled).
                x = sorted(x, key=lambda i: repr(canon(i.value, self.impl)))
            return [self.value(v) for v in x]
        return canon(x, self.impl)

    def interrupt_label(self, iid: Any) -> str:
        if iid not in self._interrupt_labels:
            self._interrupt_labels[iid] = f"<interrupt#{len(self._interrupt_labels)}>"
        return self._interrupt_labels[iid]

    def positions(self, thread_id: Optional[str] = None) -> dict:
        """checkpoint id -> position (0 = oldest) over the whole thread (subgraphs'
        namespaces included), right now."""
        ids = [s.config["configurable"]["checkpoint_id"] for s in self.graph.get_state_history(self.thread(thread_id))]
        ids += self._subgraph_ids(thread_id)
        return {cid: i for i, cid in enumerate(sorted(set(ids)))}

    async def apositions(self, thread_id: Optional[str] = None) -> dict:
        ids = [
            s.config["configurable"]["checkpoint_id"]
            async for s in self.graph.aget_state_history(self.thread(thread_id))
        ]
        ids += self._subgraph_ids(thread_id)
        return {cid: i for i, cid in enumerate(sorted(set(ids)))}

    def _subgraph_ids(self, thread_id: Optional[str]) -> list:
        """Ids of the thread's checkpoints in every namespace, when the scenario says it has
        subgraphs (`tt.flags["subgraphs"]`): listed on the saver, without a namespace."""
        if not self.flags.get("subgraphs"):
            return []
        return [t.config["configurable"]["checkpoint_id"] for t in self.saver_list(self.thread(thread_id))]

    def saver_list(self, config: dict) -> list:
        """The graph's saver's `list(config)`, read as the graph reads it (ferrograph
        rebuilds only the classes the graph allows: its codec is made active)."""
        codec = getattr(self.graph, "_codec", None)
        if codec is None:
            return list(self.graph.checkpointer.list(config))
        from ferrograph import serde

        with serde.using(codec):
            return list(self.graph.checkpointer.list(config))

    def config(self, config: Optional[dict], pos: dict) -> Any:
        if config is None:
            return None
        out = {k: v for k, v in config.items() if k != "configurable"}
        # LangGraph leaves its internal keys (the saver lent to a subgraph) in some configs.
        conf = {k: v for k, v in config.get("configurable", {}).items() if not k.startswith("__")}

        def position(cid: str) -> str:
            return f"<pos {pos[cid]}>" if cid in pos else f"<unknown {cid}>"

        if "checkpoint_id" in conf:
            conf["checkpoint_id"] = position(conf["checkpoint_id"])
        if "checkpoint_map" in conf:  # a subgraph's: the checkpoint ids of its parents
            conf["checkpoint_map"] = {k: position(v) for k, v in conf["checkpoint_map"].items()}
        out["configurable"] = conf
        return namespaces(canon(out, self.impl))

    def metadata(self, md: Optional[dict], pos: Optional[dict] = None) -> Any:
        if md is None:
            return None
        md = dict(md)
        if "run_id" in md:
            md["run_id"] = "<run_id>"
        if md.get("parents"):  # a subgraph's: its parents' checkpoint ids by namespace
            md["parents"] = {k: f"<pos {(pos or {})[v]}>" if v in (pos or {}) else f"<unknown {v}>" for k, v in md["parents"].items()}
        return namespaces(self.value(md))

    def task_path(self, path: Any) -> Any:
        path = list(path)
        # LangGraph's push tasks are ("__pregel_push", index, False) (the third item says
        # whether the task comes from a functional-API call); ferrograph writes
        # ("__pregel_push", index). Compared exactly only by test_send_task_path_exact.
        if not self.exact_task_paths and path[:1] == ["__pregel_push"] and path[2:] == [False]:
            path = path[:2]
        return canon(path, self.impl)

    def task(self, t: Any, pos: Optional[dict] = None) -> dict:
        result = self.value(t.result)
        if not self.strict_task_results and (t.error is not None or t.interrupts):
            result = "<not compared>"
        return {
            "name": t.name,
            "path": self.task_path(t.path),
            "error": error_category(t.error, self.impl) if isinstance(t.error, BaseException) else canon(t.error, self.impl),
            "interrupts": self.value(list(t.interrupts)),
            # A subgraph's task: its config (or with subgraphs=True its snapshot).
            "state": self.snap(t.state, pos or {}) if hasattr(t.state, "next") else namespaces(canon(t.state, self.impl)),
            "result": result,
        }

    def snap(self, s: Any, pos: dict) -> dict:
        assert s.created_at is None or isinstance(s.created_at, str), s.created_at
        return {
            "values": self.value(s.values),
            "next": list(s.next),
            "config": self.config(s.config, pos),
            "metadata": self.metadata(s.metadata, pos),
            "created_at": s.created_at is not None,
            "parent_config": self.config(s.parent_config, pos),
            # Tasks of one step are compared as a set (ordered by name then path).
            "tasks": sorted((self.task(t, pos) for t in s.tasks), key=lambda t: (t["name"], repr(t["path"]))),
            "interrupts": self.value(list(s.interrupts)),
        }

    def short(self, s: Any) -> tuple:
        """(metadata.source, metadata.step, next, values): the history outline."""
        md = s.metadata or {}
        return (md.get("source"), md.get("step"), list(s.next), self.value(s.values))

    # ---- sync observations

    def history(self, config: Optional[dict] = None, **kwargs: Any) -> list:
        pos = self.positions()
        return [self.snap(s, pos) for s in self.graph.get_state_history(config or self.cfg, **kwargs)]

    def outline(self, config: Optional[dict] = None, **kwargs: Any) -> list:
        return [self.short(s) for s in self.graph.get_state_history(config or self.cfg, **kwargs)]

    def state(self, config: Optional[dict] = None) -> dict:
        pos = self.positions()
        return self.snap(self.graph.get_state(config or self.cfg), pos)

    def at(self, index_from_oldest: int) -> dict:
        """The config of the thread's checkpoint at a position (0 = oldest)."""
        hist = list(self.graph.get_state_history(self.cfg))
        return hist[len(hist) - 1 - index_from_oldest].config

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> dict:
        """Run fn; its canonical result or error category, plus the nodes that ran."""
        try:
            result, error = fn(*args, **kwargs), None
        except Exception as exc:  # noqa: BLE001 - compared
            result, error = None, exc
        return self._outcome(result, error)

    def _outcome(self, result: Any, error: Optional[BaseException]) -> dict:
        if isinstance(result, dict) and "configurable" in result:  # a config (update_state)
            result = self.config(result, self.positions())
        else:
            result = self.value(result)
        return {"result": result, "error": error_category(error, self.impl), "ran": self.ran()}

    # ---- async observations

    async def ahistory(self, config: Optional[dict] = None, **kwargs: Any) -> list:
        pos = await self.apositions()
        return [self.snap(s, pos) async for s in self.graph.aget_state_history(config or self.cfg, **kwargs)]

    async def astate(self, config: Optional[dict] = None) -> dict:
        pos = await self.apositions()
        return self.snap(await self.graph.aget_state(config or self.cfg), pos)

    async def aat(self, index_from_oldest: int) -> dict:
        hist = [s async for s in self.graph.aget_state_history(self.cfg)]
        return hist[len(hist) - 1 - index_from_oldest].config

    async def acall(self, fn: Callable, *args: Any, **kwargs: Any) -> dict:
        try:
            result, error = await fn(*args, **kwargs), None
        except Exception as exc:  # noqa: BLE001 - compared
            result, error = None, exc
        if isinstance(result, dict) and "configurable" in result:
            pos = await self.apositions()
            return {"result": self.config(result, pos), "error": None, "ran": self.ran()}
        return self._outcome(result, error)


def run_on(scenario: Callable, impl: Impl, saver: Any) -> TT:
    tt = TT(impl, saver)
    if inspect.iscoroutinefunction(scenario):
        asyncio.run(scenario(tt))
    else:
        scenario(tt)
    return tt


def run_both(scenario: Callable, langgraph_impl: Impl, ferrograph_impl: Impl, saver: Any) -> tuple:
    """Run `scenario` on LangGraph (InMemorySaver) and on ferrograph (`saver`); compare."""
    from timetravel_savers import langgraph_saver

    ref = run_on(scenario, langgraph_impl, langgraph_saver())
    ours = run_on(scenario, ferrograph_impl, saver)
    assert [label for label, _ in ours.log] == [label for label, _ in ref.log]
    for (label, expected), (_, got) in zip(ref.log, ours.log):
        if got != expected:
            path, g, e = first_diff(got, expected)
            raise AssertionError(
                f"[{label}] differs at {path}:\n  ferrograph: {g!r}\n  langgraph:  {e!r}"
                f"\n--- whole ferrograph {label}: {got!r}\n--- whole langgraph {label}: {expected!r}"
            )
    return ref, ours


def first_diff(a: Any, b: Any, path: str = "") -> tuple:
    """The first place two canonical values differ: (path, a's part, b's part)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return (f"{path}.{k}", a.get(k, "<missing>"), b.get(k, "<missing>"))
            if a[k] != b[k]:
                return first_diff(a[k], b[k], f"{path}.{k}")
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_diff(x, y, f"{path}[{i}]")
    return (path or "<top>", a, b)


__all__ = ["NodeBoom", "TT", "hit", "namespaces", "run_both", "run_on", "with_time_travel_names"]
