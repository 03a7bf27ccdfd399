"""One run of a compiled graph: everything the sync and async drivers share.

The Rust core owns the run's state (channels, versions, due tasks, how writes apply). A
`RunLoop` starts it (fresh, from a saved checkpoint, as a replay or a resume), hands out the
tasks of each step, turns what nodes return into writes and stream chunks, and decides what
to persist. It never does I/O itself: saver calls are queued in `outbox` as `SaverCall`s,
which the drivers hand to a writer (`_writer.py`) that runs them with the saver's methods or
their `a`-prefixed twins, so both share this one logic.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import functools
import random
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

from ferrograph import _core
from ferrograph.checkpointers.base import ERROR, EXPECT_LATEST, INTERRUPT, RESUME, WRITES_IDX_MAP, checkpoint_metadata
from ferrograph.config import _CURRENT, CurrentTask
from ferrograph.errors import (
    AsyncNodeError,
    EmptyInputError,
    GraphDrained,
    GraphInterrupt,
    GraphRecursionError,
    GraphValidationError,
    InvalidConfigError,
    InvalidUpdateError,
    ParentCommand,
    is_invalid_resume,
)
from ferrograph.graph._cache import NodeCache
from ferrograph.graph._messages import MessagesStream
from ferrograph.graph._options import RunOptions
from ferrograph.graph._subgraph import LOAD_BEFORE, NS_END, Nesting, Replay, subgraph_task_state, task_ns, with_checkpoint_map
from ferrograph.graph.schema import ROOT
from ferrograph.graph.state import END, START, BranchSpec
from ferrograph.runtime import ExecutionInfo, Runtime, RunControl, _no_op_writer
from ferrograph.types import (
    Command,
    Interrupt,
    PregelTask,
    RetryPolicy,
    Send,
    StateSnapshot,
    _Scratchpad,
)

TASKS = "__pregel_tasks"
NO_WRITES: str = _core.NO_WRITES
#: The task id of writes that come from no node: a `Command` given as a run's input.
NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
#: Channels of saved writes that are records about a task, not state updates.
SPECIAL_CHANNELS = frozenset({*WRITES_IDX_MAP, NO_WRITES})

#: How long (seconds) a step's finished task waits for the tasks started before it before its
#: chunks stream. LangGraph streams tasks as they finish, and its runner starts one fresh
#: thread per task, one after another, so nodes that take about as long as each other finish
#: (and stream) in task order; ferrograph's threads are already running and would race. Tasks
#: that finish within this of each other stream in task order; a task slower than that by
#: more still lets the later ones stream first, as in LangGraph. No run waits longer for it:
#: the step ends only when all its tasks have finished anyway.
ORDER_GRACE = 0.02

#: Restoring a checkpoint to look at it must never trip the recursion limit.
_INSPECT_LIMIT = 2**31


class SaverCall(NamedTuple):
    """A saver method to call (sync name; the async driver adds the `a`), and what to do
    with its result."""

    method: str
    args: tuple
    on_done: Optional[Callable[[Any], None]] = None


def note_task(exc: BaseException, name: str, task_id: str) -> None:
    """Name the failing node on the exception itself, which otherwise stays unchanged."""
    note = f"During task with name '{name}' and id '{task_id}'"
    if sys.version_info >= (3, 11) and note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def thread_of(config: dict) -> dict:
    """The thread a config names, as the saver protocol wants it; a clear error without one."""
    configurable = config.get("configurable")
    thread_id = configurable.get("thread_id") if isinstance(configurable, dict) else None
    if thread_id is None or thread_id == "":
        raise InvalidConfigError(
            "A graph with a checkpointer needs config['configurable']['thread_id'] to know which thread to use"
        )
    # Any value names a thread by its string form (LangGraph's docs pass uuid.uuid4()), as
    # LangGraph's savers store it.
    assert isinstance(configurable, dict), "a thread_id was found in it"
    ns = configurable.get("checkpoint_ns", "")
    return {"thread_id": str(thread_id), "checkpoint_ns": ns}


def _metadata_tail(config: dict, parents: dict) -> dict:
    """What every checkpoint of a run carries after its source and step: the parents, then
    the caller's metadata and the scalar `configurable` keys, as LangGraph records them (never
    replacing the run's own keys)."""
    base = checkpoint_metadata(config, None)
    if config.get("run_id") is not None:
        base["run_id"] = str(config["run_id"])
    tail = {"parents": dict(parents)}
    tail.update((k, v) for k, v in base.items() if k not in ("source", "step", "parents"))
    return tail


def _native_sink(saver: Any, thread: dict, metadata: dict, codec: Any) -> Any:
    """The native memory saver's way in for a run (`MemoryRunSink`: a step's checkpoint and
    its tasks' writes go from the Rust run into the store, with no Python dicts), or None for
    any other saver, or one whose `put`/`put_writes` a subclass or the instance replaced."""
    native = _core.NativeMemorySaver
    if not isinstance(saver, native):
        return None
    own = getattr(saver, "__dict__", {})
    for method in ("put", "put_writes"):
        if method in own or getattr(type(saver), method) is not getattr(native, method):
            return None
    return saver.run_sink(thread["thread_id"], thread["checkpoint_ns"], metadata, codec)


def _merged_updates(applied: list[dict]) -> Any:
    """What a task wrote, as its "updates" chunk shows it: one dict, or (when a key was written
    more than once, by a list of Commands) a list with a dict per write, as LangGraph does."""
    if not applied:
        return None
    if len(applied) == 1:
        return applied[0]
    keys = [k for update in applied for k in update]
    if len(keys) == len(set(keys)):
        return {k: v for update in applied for k, v in update.items()}
    return [{k: v} for update in applied for k, v in update.items()]


def apply_null_writes(run: Any, writes: Sequence[tuple[str, Any]]) -> None:
    """Apply writes of no task (a `Command` input's update and gotos) to a core run."""
    if not writes:
        return
    update, gotos, sends = [], [], []
    for channel, value in writes:
        if channel == TASKS and isinstance(value, Send):
            sends.append((value.node, value.arg))
        elif channel.startswith("branch:to:"):
            gotos.append(channel[len("branch:to:") :])
        elif channel not in SPECIAL_CHANNELS:
            update.append((channel, value))
    run.apply_command(update, gotos, sends)


def _writes_by_task(pending: Optional[Sequence[tuple]]) -> dict[str, list[tuple[str, Any]]]:
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in pending or ():
        grouped.setdefault(task_id, []).append((channel, value))
    return grouped


def _special(writes: list[tuple[str, Any]], channel: str) -> Any:
    for ch, value in writes:
        if ch == channel:
            return value
    return None


def _completed(writes: list[tuple[str, Any]]) -> bool:
    """Whether a task's saved writes show it finished. A task that failed or paused and then
    finished on a resume keeps its error or interrupt record beside its writes."""
    return any(ch not in WRITES_IDX_MAP for ch, _ in writes)


class RunLoop:
    """The bookkeeping of one run, shared by the sync and async drivers."""

    # What a run does with subgraphs (graph/_subgraph.py); class-level defaults, so that a run
    # without any costs nothing here.
    #: The run's checkpoint namespace ("" at the root) and the checkpoint ids of the runs above
    #: it by namespace (its checkpoints' `parents` metadata; never changed in place).
    ns = ""
    parents: dict = {}
    #: What a child run takes from its parent (None at the root).
    nesting: Optional[Nesting] = None
    #: The time travel this run is part of, as its children see it.
    replay: Optional[Replay] = None
    #: The thread's latest checkpoint id, read when a root run travels (`latest_call`).
    latest_id: Optional[str] = None
    #: A child run that starts from an older checkpoint (`load_call`): a branch of its own.
    branching = False
    #: The step a run that resumes a thread starts from: a child run started during the step
    #: after it goes on from its own checkpoint rather than starting on its input.
    resume_step: Optional[int] = None
    #: The modes child runs hand up (see `_hand_up`), and their chunks to stream, as
    #: (mode, chunk, namespace).
    child_modes: tuple[str, ...] = ()
    nested: Optional[collections.deque] = None
    #: Whether the caller sees this run's children's chunks (`subgraphs=True` at the top).
    children_shown = False
    #: Child runs started so far by task id (they are numbered, see graph/_subgraph.py).
    child_runs: Optional[dict[str, int]] = None

    def __init__(
        self,
        graph: Any,
        config: dict,
        options: RunOptions,
        *,
        interrupt_before: Sequence[str] = (),
        interrupt_after: Sequence[str] = (),
        context: Any = None,
        control: Optional[RunControl] = None,
        nesting: Optional[Nesting] = None,
    ) -> None:
        self.graph = graph
        self.config = config
        self.modes = options.modes
        self.output_keys = options.output_keys
        self.debug = "debug" in self.modes
        #: "debug" wraps what the "checkpoints" and "tasks" modes show.
        self.checkpoint_events = self.debug or "checkpoints" in self.modes
        self.task_events = self.debug or "tasks" in self.modes
        #: Whether a step of one task streams its chunks only once the step's writes are
        #: applied, as LangGraph's runner does unless the run streams "messages" or "custom"
        #: (a step of several tasks streams each as it finishes). A program sees the
        #: difference where a reducer changes the update's objects: add_messages gives its
        #: messages ids.
        self.after_step = not ({"messages", "custom"} & set(self.modes))
        #: The saver and codec of the run's calls; a child run's come from its parent.
        if nesting is None:
            self.saver = graph.checkpointer
            self.codec = graph._codec
            checkpoint_map = (config.get("configurable") or {}).get("checkpoint_map")
            if checkpoint_map:
                self.parents = dict(checkpoint_map)
        else:
            self.saver = nesting.saver
            self.codec = nesting.codec
            self.ns = nesting.ns
            self.parents = nesting.parents
            self.nesting = nesting
            self.replay = nesting.replay
            self.children_shown = nesting.shown
        if options.subgraphs or options.forward is not None or "messages" in self.modes:
            self._hand_up(options)
        #: ferrograph's own savers take a step's checkpoint encoded in one crossing (only the
        #: new versions' values, by the Rust codec); any other saver gets LangGraph's dict.
        self.encoded_puts = getattr(self.saver, "takes_encoded_checkpoints", False) is True
        self.thread = thread_of(config) if self.saver is not None else None
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.durability = options.durability
        self.control = control
        #: Chunks nodes wrote to the custom stream, not yet handed to the caller. Written from
        #: node threads; a deque's append and popleft are atomic.
        self._custom: collections.deque = collections.deque()
        writer = self._custom.append if "custom" in self.modes else _no_op_writer
        self.runtime: Runtime[Any] = Runtime(
            context=graph._coerce_context(context), store=graph.store, stream_writer=writer, control=control
        )
        self.run = _core.CoreRun(graph._core, config["recursion_limit"], uuid.uuid4().hex)
        self.tasks: list[tuple] = []
        #: Indexes of this step's tasks that still have to run (others were restored).
        self.to_run: list[int] = []
        self.outbox: list[SaverCall] = []
        #: Config of the latest checkpoint this run stands on (the parent of the next one).
        self.parent_config: Optional[dict] = None
        #: Writes saved against the checkpoint the next step starts from, by task id.
        self.pending: dict[str, list[tuple[str, Any]]] = {}
        #: Resume values per task id, for `interrupt()`.
        self.resume: dict[str, list] = {}
        #: A resume that no paused task took: the first `interrupt()` without an answer takes it.
        self.null_resume: list = []
        #: An error raised by a task or after it (a branch); raised once its chunks are out.
        self.error: Optional[BaseException] = None
        #: Interrupts raised by this step's tasks (the run stops after the step).
        self.interrupts: list[Interrupt] = []
        #: Set when a task paused, also on a child's stop at its interrupt_before/after,
        #: which raises no Interrupt (the run stops after the step).
        self.paused = False
        #: Set when an interrupt_before/after stops the run.
        self.static_interrupt = False
        self._unreported_checkpoint: Optional[tuple[dict, Optional[dict], dict, dict]] = None
        self._interrupt_reported = False
        #: "updates" chunks of tasks that finished before the run stopped, restored from their
        #: saved writes (LangGraph reports them again, marked cached, when the step resumes).
        self._restored: list[tuple[str, Any]] = []
        #: With durability "exit": the checkpoint not written yet, and its tasks' writes.
        self._unsaved: Optional[tuple[str, int, str]] = None
        self._deferred_writes: list[tuple[list, str]] = []
        self._exiting = False
        self.metadata_tail = _metadata_tail(config, self.parents) if self.saver is not None else {}
        #: The native memory saver's sink: with it, steps are stored as they are made, not
        #: queued (the writer would only hand them over).
        self.native_sink = (
            _native_sink(self.saver, self.thread, self.metadata_tail, self.codec) if self.thread is not None else None
        )
        self.drained = False
        #: The output keys when they are not every state key.
        keys = options.output_keys
        self.narrowed: Optional[frozenset[str]] = (
            frozenset((keys,) if isinstance(keys, str) else keys) if keys is not None else None
        )
        self.cache = NodeCache() if graph.cache is not None else None
        self.messages = (
            MessagesStream(config, None if nesting is None else nesting.messages) if "messages" in self.modes else None
        )

    def _hand_up(self, options: RunOptions) -> None:
        """Collect child runs' chunks: the modes this run streams with `subgraphs=True` (and
        what its own parent wants), else only "messages" (a child's tokens reach the caller
        only with `subgraphs=True`, but they must not pass for this run's own)."""
        if options.forward is not None:
            own = self.modes if options.subgraphs else ()
            self.child_modes = tuple(dict.fromkeys((*options.forward.modes, *own)))
        else:
            self.child_modes = self.modes if options.subgraphs else ("messages",) if "messages" in self.modes else ()
        if self.child_modes:
            self.nested = collections.deque()
        self.children_shown = self.children_shown or options.subgraphs

    def _thread(self) -> dict:
        """The thread's ids; only a run with a checkpointer saves or loads, and it has them."""
        assert self.thread is not None, "a run without a checkpointer has no thread"
        return self.thread

    # ---- starting

    def load_call(self) -> Optional[SaverCall]:
        """The saver read that starts the run, or None without a checkpointer."""
        if self.saver is None:
            return None
        configurable = {**self._thread()}
        checkpoint_id = (self.config.get("configurable") or {}).get("checkpoint_id")
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        if self.nesting is not None and self.replay is not None and self.replay.first_visit(self.ns):
            # A child of a time-travelling run, the first time its namespace runs: it starts
            # from its checkpoint as of the parent's, on its input (see graph/_subgraph.py).
            self.nesting.resuming = False
            self.branching = True
            return SaverCall(LOAD_BEFORE, ({"configurable": configurable}, self.replay.checkpoint_id))
        return SaverCall("get_tuple", ({"configurable": configurable},))

    def latest_call(self) -> Optional[SaverCall]:
        """For a root run that travels to a checkpoint: the read of the thread's latest (a
        fork or update checkpoint that is not the latest forks again, as in LangGraph)."""
        if self.saver is None or self.nesting is not None:
            return None
        if not (self.config.get("configurable") or {}).get("checkpoint_id"):
            return None
        return SaverCall("get_tuple", ({"configurable": {**self._thread()}},), self._superseded)

    def _superseded(self, latest: Any) -> None:
        self.latest_id = None if latest is None else latest.checkpoint["id"]

    def begin(self, saved: Any, input: Any) -> list[tuple[str, Any]]:
        """Set the run up from the saved checkpoint (if any) and the input. Returns chunks."""
        run = self.run
        if self.nesting is not None and self.nesting.resuming and saved is not None:
            # A child run of a task that resumes: it goes on where it stopped, with the
            # answer its parent's task was given (see graph/_subgraph.py).
            input = self.nesting.resume_input()
        if self.saver is None:
            if isinstance(input, Command):
                raise GraphValidationError("Command(resume=...) needs a graph compiled with a checkpointer")
            if input is not None:
                run.input(input)
            return []
        if saved is not None:
            run.restore(saved.checkpoint, (saved.metadata or {}).get("step", -1))
            self.parent_config = saved.config
        replay = bool((self.config.get("configurable") or {}).get("checkpoint_id"))
        if isinstance(input, Command) or input is None:
            if saved is None:
                if isinstance(input, Command):
                    raise EmptyInputError(f"Thread '{self._thread()['thread_id']}' has nothing to resume")
                return []
            # Resuming: what is due now runs without stopping at interrupt_before again.
            run.mark_interrupt()
            if replay and not isinstance(input, Command):
                # Time travel: tasks due at that checkpoint run again (their saved writes are
                # ignored), on a new branch forked from it unless it is itself a fork or
                # an update that is still the thread's latest, which already started one.
                # Children load their checkpoints as of then (graph/_subgraph.py).
                source = (saved.metadata or {}).get("source")
                superseded = self.latest_id is not None and self.latest_id != saved.checkpoint["id"]
                bound = saved.checkpoint["id"]
                if source in ("update", "fork") and saved.parent_config is not None:
                    bound = saved.parent_config["configurable"]["checkpoint_id"]
                self.replay = Replay(bound)
                if source not in ("update", "fork") or superseded:
                    run.set_step(run.step + 1)
                    self._save("fork", run.step)
                else:
                    run.set_seed(saved.checkpoint["id"])
            else:
                self.pending = _writes_by_task(saved.pending_writes)
                self._apply_null_writes(self.pending.pop(NULL_TASK_ID, ()))
                if isinstance(input, Command):
                    self._command_input(input)
            self.resume_step = run.step
            return [("values", self.output())] if "values" in self.modes else []
        run.input(input)
        self._save("input", run.step)
        return []

    def _command_input(self, command: Command) -> None:
        """A `Command` as the run's input, on a thread that has a checkpoint: its update and
        gotos apply at once (saved as writes of no task, so a later resume from the same
        checkpoint applies them again), and its resume answers the paused tasks."""
        if command.graph == Command.PARENT:
            raise InvalidUpdateError("There is no parent graph")
        schema = self.graph._builder.schema
        update = list(schema.to_update(command.update, START).items()) if command.update is not None else []
        gotos = command.goto
        targets = (gotos,) if isinstance(gotos, (str, Send)) else tuple(gotos or ())
        for target in targets:
            if not isinstance(target, (str, Send)):
                raise TypeError(f"In Command.goto, expected Send/str, got {type(target).__name__}")
        writes: list[tuple[str, Any]] = [
            (TASKS, t) if isinstance(t, Send) else (f"branch:to:{t}", START) for t in targets
        ]
        if command.resume is None and not update and not writes:
            raise EmptyInputError("Received empty Command input")
        if update or writes:
            self._apply_null_writes([*writes, *update])
            self.outbox.append(SaverCall("put_writes", (self.parent_config, [*writes, *update], NULL_TASK_ID, "")))
        if command.resume is not None:
            self._resume_with(command)

    def _apply_null_writes(self, writes: Sequence[tuple[str, Any]]) -> None:
        """Apply writes of no task (see `_command_input`) to the run. A resume goes on past
        them: they do not count as a change that stops at interrupt_before again."""
        if writes:
            apply_null_writes(self.run, writes)
            self.run.mark_interrupt()

    def _resume_with(self, command: Command) -> None:
        """Hand `command.resume` to the tasks paused by interrupts, saving it with each. With
        none paused (a stop at interrupt_before), it answers the next `interrupt()` called."""
        paused = {tid: w for tid, w in self.pending.items() if _special(w, INTERRUPT)}
        if not paused:
            self.null_resume.append(command.resume)
            return
        value = command.resume
        by_id = isinstance(value, dict) and value and all(
            any(getattr(i, "id", None) == key for w in paused.values() for i in _special(w, INTERRUPT)) for key in value
        )
        for task_id, writes in paused.items():
            earlier = list(_special(writes, RESUME) or [])
            if by_id:
                current = [i.id for i in _special(writes, INTERRUPT)]
                answer = next((value[i] for i in current if i in value), _MISSING)
                if answer is _MISSING:
                    self.resume[task_id] = earlier
                    continue
                earlier.append(answer)
            else:
                earlier.append(value)
            self.resume[task_id] = earlier
            writes[:] = [(ch, v) for ch, v in writes if ch != RESUME] + [(RESUME, earlier)]
            self.outbox.append(SaverCall("put_writes", (self.parent_config, [(RESUME, earlier)], task_id, "")))

    # ---- checkpoints

    def checkpoint_id(self) -> Optional[str]:
        """The id of the checkpoint the run stands on (with durability "exit", the one it
        has not written yet)."""
        if self._unsaved is not None:
            return self._unsaved[2]
        return None if self.parent_config is None else self.parent_config["configurable"]["checkpoint_id"]

    def _save(self, source: str, step: int, *, checkpoint_id: Optional[str] = None) -> None:
        """Queue a checkpoint of the run as it stands now (a native sink stores it at once). With
        durability "exit" only the id is taken (task ids derive from it); the checkpoint is
        written when the run ends."""
        self.pending = {}
        if self.durability == "exit" and not self._exiting:
            checkpoint_id = _core.new_checkpoint_id()[0]
            self.run.set_seed(checkpoint_id)
            self._unsaved = (source, step, checkpoint_id)
            self._deferred_writes = []
            return
        parent = self.parent_config
        parent_id = None if parent is None else parent["configurable"]["checkpoint_id"]
        # A stepping run's checkpoint must follow the thread's latest (the saver refuses it
        # with ConcurrentUpdateError otherwise), unless it continues from a checkpoint the
        # caller named: that one is a branch of its own, like forks and updates.
        named = (self.config.get("configurable") or {}).get("checkpoint_id")
        if self.branching and parent_id is not None:
            named = parent_id
            self.branching = False
        expect_latest = source in ("loop", "input") and not (named and parent_id == named)
        if self.native_sink is not None:
            # Made (unless given), seeded into the run's task ids and stored in one call.
            checkpoint_id = self.native_sink.put(self.run, source, step, parent_id, expect_latest, checkpoint_id)
            self.parent_config = {"configurable": {**self._thread(), "checkpoint_id": checkpoint_id}}
        else:
            if checkpoint_id is None:
                checkpoint_id, ts = _core.new_checkpoint_id()
            else:
                ts = _core.new_checkpoint_id()[1]
            self.run.set_seed(checkpoint_id)
            mine = self.parent_config = {"configurable": {**self._thread(), "checkpoint_id": checkpoint_id}}
            self._queue_put(source, step, checkpoint_id, ts, parent_id, expect_latest, mine)
        if self.checkpoint_events:
            parent_event = None if parent_id is None else self._event_config(parent_id)
            metadata = {"source": source, "step": step, **self.metadata_tail, "parents": dict(self.parents)}
            self._unreported_checkpoint = (self._event_config(checkpoint_id), parent_event, metadata, self.output())

    def _queue_put(
        self, source: str, step: int, checkpoint_id: str, ts: str, parent_id: Optional[str], expect_latest: bool, mine: dict
    ) -> None:
        """Queue the saver's `put` of the run as checkpoint `checkpoint_id` (`mine` its config)."""
        checkpoint: Union[dict[str, Any], _core.EncodedCheckpoint]
        if self.encoded_puts:
            checkpoint, new_versions = self.run.encoded_checkpoint(checkpoint_id, ts, self.codec)
        else:
            checkpoint, new_versions = self.run.checkpoint(checkpoint_id, ts)
        # The run's own keys first, then the config's (which never replace them), in
        # LangGraph's order.
        metadata = {"source": source, "step": step, **self.metadata_tail, "parents": dict(self.parents)}
        configurable = {**self._thread()}
        if parent_id is not None:
            configurable["checkpoint_id"] = parent_id
        if expect_latest:
            configurable[EXPECT_LATEST] = True

        def saved(config: Any) -> None:
            # Written in the background, a checkpoint may be stored after the run has moved
            # on to the next one: the saver's config then replaces nothing.
            if self.parent_config is mine and isinstance(config, dict) and config.get("configurable", {}).get("checkpoint_id"):
                self.parent_config = config

        self.outbox.append(SaverCall("put", ({"configurable": configurable}, checkpoint, metadata, new_versions), saved))

    def _save_writes(self, i: int, writes: list) -> None:
        if self.saver is None:
            return
        _name, _input, task_id, _push = self.tasks[i]
        if self.durability == "exit":
            self._deferred_writes.append((writes, task_id))
            return
        self.outbox.append(SaverCall("put_writes", (self.parent_config, writes, task_id, "")))

    def _write_at_exit(self, stopped: bool = True) -> None:
        """With durability "exit": write the last checkpoint the run reached, and the writes
        of a step that stopped it (failed or interrupted), so a resume starts there. A child
        run that ends normally writes nothing, unless it keeps a history per thread
        (`checkpointer=True`: no task ids in its namespace), as in LangGraph."""
        if self.saver is None or self.durability != "exit" or self._unsaved is None:
            return
        if not stopped and self.nesting is not None and NS_END in self.ns:
            return
        source, step, checkpoint_id = self._unsaved
        self._unsaved = None
        self._exiting = True
        self._save(source, step, checkpoint_id=checkpoint_id)
        for writes, task_id in self._deferred_writes:
            self.outbox.append(SaverCall("put_writes", (self.parent_config, writes, task_id, "")))
        self._deferred_writes = []

    def _event_config(self, checkpoint_id: str) -> dict:
        """A checkpoint's config as the "checkpoints" and "debug" streams show it: LangGraph's
        (the namespace first, then the run's configurable keys, then the id)."""
        conf = self.config.get("configurable") or {}
        rest = {k: v for k, v in conf.items() if k not in ("checkpoint_ns", "checkpoint_id") and not k.startswith("__")}
        return {"configurable": {"checkpoint_ns": conf.get("checkpoint_ns", ""), **rest, "checkpoint_id": checkpoint_id}}

    def take_outbox(self) -> Sequence[SaverCall]:
        if not self.outbox:
            return ()  # the common case, several times a step: nothing to hand over
        calls, self.outbox = self.outbox, []
        return calls

    # ---- steps

    def tick(self) -> bool:
        """Plan the next step; False when the run is over, stopped by an interrupt, or asked
        to drain (see `drained`)."""
        if self.error is not None or self.paused or self.static_interrupt:
            return False
        tasks = self.run.tick()
        if tasks and self.control is not None and self.control.drain_requested:
            # Stopped between steps (a last step that asks to drain just ends the run): the
            # last checkpoint is where a resume goes on.
            self.drained = True
            self.run.clear_tasks()
            return False
        self.tasks = tasks or []
        self.to_run = list(range(len(self.tasks)))
        if self.pending:
            for i, (_name, _input, task_id, _push) in enumerate(self.tasks):
                writes = self.pending.get(task_id)
                if writes is not None and _completed(writes):
                    kept = [(ch, v) for ch, v in writes if ch not in SPECIAL_CHANNELS]
                    self.run.restore_task(i, kept)
                    self.to_run.remove(i)
                    if "updates" in self.modes:
                        self._restored.append(self._cached_chunk(i, kept))
                elif writes is not None and _special(writes, RESUME) is not None:
                    self.resume.setdefault(task_id, list(_special(writes, RESUME)))
            self.pending = {}
        if tasks and self._should_interrupt(self.interrupt_before):
            self.static_interrupt = True
            self.run.clear_tasks()
            return False
        return bool(tasks)

    def _should_interrupt(self, nodes: Sequence[str]) -> bool:
        """interrupt_before: stop (and remember where) if a listed node is due and something
        changed since the last interrupt."""
        if not nodes or self.saver is None:
            return False
        if self._hits(nodes, {task[0] for task in self.tasks}) and self.run.updated_since_interrupt():
            self.run.mark_interrupt()
            return True
        return False

    def _should_interrupt_after(self, ran: set[str]) -> bool:
        return bool(self.interrupt_after) and self._hits(self.interrupt_after, ran) and self.run.updated_since_interrupt()

    @staticmethod
    def _hits(nodes: Sequence[str], names: set[str]) -> bool:
        return ("*" in nodes and bool(names - {START})) or bool(names & set(nodes))

    def started(self) -> list[tuple[str, Any]]:
        """Chunks announcing the step: the previous checkpoint and the tasks ("checkpoints",
        "tasks" and "debug" modes)."""
        chunks = self._checkpoint_chunk() if self.checkpoint_events else []
        restored, self._restored = self._restored, []
        if not self.task_events:
            return chunks + restored
        step = self.run.step + 1
        for i in self.to_run:
            name, input, task_id, push = self.tasks[i]
            if name == START:
                continue
            payload = {
                "id": task_id,
                "name": name,
                "input": input if push else self._debug_input(name, input),
                "triggers": tuple(self.run.task_triggers(i)),
            }
            chunks.extend(self._event("task", step, payload))
        return chunks + restored

    def _event(self, kind: str, step: int, payload: dict) -> list[tuple[str, Any]]:
        """A checkpoint or task event, in each mode that shows it: as it is ("checkpoints",
        "tasks") and wrapped with its step, time and kind ("debug")."""
        chunks: list[tuple[str, Any]] = []
        if kind == "checkpoint" and "checkpoints" in self.modes:
            chunks.append(("checkpoints", payload))
        elif kind != "checkpoint" and "tasks" in self.modes:
            chunks.append(("tasks", payload))
        if self.debug:
            chunks.append(("debug", {"step": step, "timestamp": _now(), "type": kind, "payload": payload}))
        return chunks

    def _checkpoint_chunk(self, due: Optional[Sequence[tuple]] = None) -> list[tuple[str, Any]]:
        """The event of the last checkpoint saved, once the tasks due at it are known (`due`,
        or this step's)."""
        if self._unreported_checkpoint is None:
            return []
        config, parent, metadata, values = self._unreported_checkpoint
        self._unreported_checkpoint = None
        tasks = [
            {"id": task_id, "name": name, "interrupts": (), "state": None}
            for name, _input, task_id, _push in (self.tasks if due is None else due)
        ]
        payload = {
            "config": with_checkpoint_map(config, metadata),
            "parent_config": with_checkpoint_map(parent, metadata),
            "values": values,
            "metadata": metadata,
            "next": [t["name"] for t in tasks],
            "tasks": tasks,
        }
        return self._event("checkpoint", metadata["step"], payload)

    def _debug_input(self, name: str, state: dict) -> Any:
        schema = self.graph._nodes[name].input_schema or self.graph._builder.schema
        if schema.kind == "dict":
            return state
        try:
            return schema.to_node_input(state)
        except Exception:  # the node itself will report invalid input when it runs
            return state

    def call(self, i: int, *, asynchronous: bool = False) -> Callable[[], Any]:
        """A zero-argument callable that runs task `i`'s node once per call (a retry calls it
        again: the task's runtime then says which attempt it is). `asynchronous`: a subgraph
        node of an async run, whose child run is async too."""
        name, input, task_id, push = self.tasks[i]
        if name == START:
            return functools.partial(self.graph._input_update, input)
        spec = self.graph._nodes[name]
        config = self.config
        if self.messages is not None:
            task_meta = {
                "langgraph_step": self.run.step + 1,
                "langgraph_node": name,
                "langgraph_triggers": tuple(self.run.task_triggers(i)),
                "langgraph_path": tuple(self.run.task_path(i))[:3],
                "langgraph_checkpoint_ns": task_ns(self, name, task_id),
            }
            metadata, config = self.messages.task(name, task_meta, spec.metadata)
        if not push:
            schema = spec.input_schema or self.graph._builder.schema
            if schema.managed:
                input = self._with_managed(input, schema)
            if schema.kind != "dict":
                # Built inside the call, so a pydantic ValidationError is the node's error.
                input = _Deferred(schema.to_node_input, input)
            elif spec.input_schema is not None or self.graph._state_names is not None:
                input = {k: v for k, v in input.items() if k in schema.names}
        scratchpad = _Scratchpad(task_id, self.resume.setdefault(task_id, []), self.null_resume) if self.saver is not None else None
        fn: Callable[[], Any] = (_AsyncNodeCall if spec.is_async or asynchronous else _NodeCall)(
            self, name, task_id, scratchpad, spec, input, config
        )
        if asynchronous:
            fn._fn = spec.fn.acall  # type: ignore[attr-defined]
        if self.messages is not None:
            fn = self.messages.wrap(fn, input.state if isinstance(input, _Deferred) else input, metadata, config)
        return fn

    def _with_managed(self, state: dict, schema: Any) -> dict:
        """`state` with the managed values (ferrograph.managed) of the step that runs: they
        are filled per step, never stored."""
        step, stop = self.run.step + 1, self.run.stop()
        return {**state, **{key: manager.get(step, stop) for key, manager in schema.managed.items()}}

    def task_runtime(self, name: str, task_id: str, attempt: int, first_attempt_time: float) -> Runtime[Any]:
        """The run's runtime with the task's own execution info (its namespace is the task's,
        `node:task_id` under the run's, as LangGraph names it)."""
        thread = self.thread or {}
        info = ExecutionInfo(
            checkpoint_id=(self.parent_config or {}).get("configurable", {}).get("checkpoint_id", ""),
            checkpoint_ns=task_ns(self, name, task_id),
            task_id=task_id,
            thread_id=thread.get("thread_id"),
            run_id=None if self.config.get("run_id") is None else str(self.config["run_id"]),
            node_attempt=attempt,
            node_first_attempt_time=first_attempt_time,
        )
        return self.runtime.override(execution_info=info)

    def cache_lookup(self) -> list:
        """The cache keys of this step's tasks that may be served from the cache."""
        if self.cache is None:
            return []
        keyed = {}
        for i in self.to_run:
            name, input, _task_id, push = self.tasks[i]
            spec = self.graph._nodes.get(name)
            if spec is None or spec.cache_policy is None:
                continue
            schema = spec.input_schema or self.graph._builder.schema
            if not push and schema.kind != "dict":
                try:
                    input = schema.to_node_input(input)
                except Exception:  # invalid input is the node's error, when it runs
                    continue
            keyed[i] = (name, spec.fn, spec.cache_policy, input)
        return self.cache.plan(keyed)

    def cached(self, found: dict) -> list[tuple[str, Any]]:
        """Tasks whose writes the cache had: those writes stand in for running them."""
        assert self.cache is not None, "cache hits need a cache"
        chunks: list[tuple[str, Any]] = []
        for i, writes in self.cache.hits(found):
            self.run.restore_task(i, writes)
            self.to_run.remove(i)
            self._save_writes(i, writes)
            if "updates" in self.modes:
                chunks.append(self._cached_chunk(i, writes))
        return chunks

    def _cached_chunk(self, i: int, writes: list) -> tuple[str, Any]:
        """The "updates" chunk of task `i` when its writes come from before (the cache or a
        step that stopped), not from running it: marked cached, as in LangGraph."""
        state_keys = self.graph._builder.schema.names
        update = {ch: v for ch, v in writes if ch in state_keys} or None
        return ("updates", {self.tasks[i][0]: update, "__metadata__": {"cached": True}})

    def policy(self, i: int) -> Sequence[RetryPolicy]:
        name = self.tasks[i][0]
        return () if name == START else self.graph._nodes[name].retry_policy

    def failed(self, i: int, exc: BaseException) -> list[tuple[str, Any]]:
        """Record task `i`'s failure (or pause, for an interrupt); returns its chunks. A child
        run's `Command(graph=Command.PARENT)` reaching this task is its result instead; in
        the child that sent it, it ends the run (nothing of its step is saved)."""
        if isinstance(exc, ParentCommand):
            if exc.sender is not self:
                return self.complete(i, exc.command)
            if self.error is None:
                self.error = exc
            return []
        if isinstance(exc, GraphInterrupt):
            self.interrupts.extend(exc.interrupts)
            self.paused = True
            # The answers it took so far go with it, so a resume replays them.
            answered = self.resume.get(self.tasks[i][2])
            self._save_writes(i, [(INTERRUPT, list(exc.interrupts))] + ([(RESUME, list(answered))] if answered else []))
            chunks = (self.nested_chunks() if self.nested else []) + self.custom_chunks()
            if exc.interrupts:
                return chunks + self._paused_chunks(i, tuple(exc.interrupts))
            if self.nesting is None and "updates" in self.modes:
                # Paused by a child's stop at its interrupt_before/after: reported by the root
                # only, as an update of no interrupts (LangGraph's).
                chunks.append(("updates", {INTERRUPT: ()}))
            return chunks
        name, _input, task_id, _push = self.tasks[i]
        note_task(exc, name, task_id)
        if self.error is None:  # the step's first failure is the one raised
            self.error = exc
        # An answer interrupt() rejected is dropped from the task's saved answers.
        kept = [(RESUME, list(self.resume.get(task_id, ())))] if is_invalid_resume(exc) else []
        self._save_writes(i, [(ERROR, repr(exc))] + kept)
        return self._chunks(i, None, exc, updates=False)

    def _paused_chunks(self, i: int, found: tuple) -> list[tuple[str, Any]]:
        """How task `i`'s interrupts show in the streams, as soon as it pauses (LangGraph's
        chunks, one set per paused task): the interrupts as an update, the state as it was
        before the step with those interrupts in it, and the task's result event."""
        chunks: list[tuple[str, Any]] = []
        if "updates" in self.modes:
            chunks.append(("updates", {INTERRUPT: found}))
        if "values" in self.modes:
            values = self.output()
            chunks.append(("values", {**values, INTERRUPT: found} if isinstance(values, dict) else {INTERRUPT: found}))
        if self.task_events:
            name, _input, task_id, _push = self.tasks[i]
            payload = {
                "id": task_id,
                "name": name,
                "error": None,
                "result": {},
                "interrupts": [dataclasses.asdict(found_one) for found_one in found],
            }
            chunks.extend(self._event("task_result", self.run.step + 1, payload))
        return chunks

    def cancelled(self, i: int) -> None:
        """Task `i` was still running when its step failed and is cancelled: recorded as failed
        with CancelledError, as LangGraph records it (so it runs again on resume). Not with
        durability "exit", whose writes stand as they were at the failure."""
        if self.durability != "exit":
            self.failed(i, asyncio.CancelledError())

    def _record(self, i: int, result: Any) -> tuple[Any, Sequence[BranchSpec], Any]:
        """Write task `i`'s update and gotos. Returns the update as applied, the branches to
        evaluate next and the state they read (the task's own writes included). A node may
        return a list mixing Commands and plain updates, as in LangGraph: each part applies."""
        name = self.tasks[i][0]
        schema = self.graph._builder.schema
        if name == START:
            parts: Sequence[Any] = (result,)
        elif isinstance(result, (list, tuple)) and result and any(isinstance(r, Command) for r in result):
            parts = result
        else:
            parts = (result,)
        applied: list[dict] = []
        for part in parts:
            gotos: Union[str, Send, Sequence[Union[str, Send]]] = ()
            if name == START:
                update = part
            elif isinstance(part, Command):
                if part.graph == Command.PARENT:
                    # For the task of the parent that runs this child (see `failed`); at the
                    # root it reaches the caller, as in LangGraph.
                    raise ParentCommand(Command(update=part.update, goto=part.goto, resume=part.resume), self)
                update = None if part.update is None else self._command_update(schema, part.update, name)
                gotos = part.goto
            else:
                update = schema.to_update(part, name)
            written = self.run.update(i, update) if update else None
            if written:
                applied.append(written)
            if gotos:
                for target in (gotos,) if isinstance(gotos, (str, Send)) else gotos:
                    self._route(i, name, target, None)
        branches = self.graph._builder.branches.get(name, ())
        state = None
        if branches:
            preview = self.run.preview(i)
            state = schema.to_node_input(self._with_managed(preview, schema) if schema.managed else preview)
        return _merged_updates(applied), branches, state

    @staticmethod
    def _command_update(schema: Any, update: Any, node: str) -> Optional[dict]:
        """A Command's update as writes: its keys for a dict (even on a root state, as in
        LangGraph), the whole value for a root state otherwise."""
        if schema.kind == "root" and not isinstance(update, dict):
            return {ROOT: update}
        return schema.to_update(update, node)

    def complete(self, i: int, result: Any) -> list[tuple[str, Any]]:
        """Record task `i`'s result as writes and routes; returns its stream chunks. If a
        branch function raises, the node's update is still reported and the error is kept
        in `self.error` for the driver to raise once the chunks are out."""
        try:
            applied, branches, state = self._record(i, result)
        except Exception as exc:
            return self.failed(i, exc)
        try:
            for branch in branches:
                if branch.is_async:
                    raise AsyncNodeError(
                        f"The branch from '{self.tasks[i][0]}' is async: run the graph with ainvoke/astream"
                    )
                args = {"config": self.config} if branch.takes_config else {}
                self._routes(i, branch, branch.path(state, **args))
        except Exception as exc:
            return self._branch_failed(i, applied, exc)
        return self._finish(i, applied)

    async def acomplete(self, i: int, result: Any) -> list[tuple[str, Any]]:
        """`complete`, awaiting async branch functions."""
        try:
            applied, branches, state = self._record(i, result)
        except Exception as exc:
            return self.failed(i, exc)
        try:
            for branch in branches:
                args = {"config": self.config} if branch.takes_config else {}
                out = branch.path(state, **args)
                if asyncio.iscoroutine(out):
                    out = await out
                self._routes(i, branch, out)
        except Exception as exc:
            return self._branch_failed(i, applied, exc)
        return self._finish(i, applied)

    def _finish(self, i: int, applied: Optional[dict]) -> list[tuple[str, Any]]:
        self.run.finish(i)
        # With durability "exit" LangGraph writes a failed step's writes as they stood at the
        # failure: a task that finishes later is not among them (it runs again on resume).
        late = self.durability == "exit" and self.error is not None
        if self.saver is not None and not late:
            if self.native_sink is not None and self.durability != "exit":
                assert self.parent_config is not None, "a task runs from a checkpoint"
                self.native_sink.put_writes(self.run, i, self.parent_config["configurable"]["checkpoint_id"])
            else:
                self._save_writes(i, list(self.run.task_writes(i)) or [(NO_WRITES, None)])
        if self.cache is not None:
            self.cache.finished(i, list(self.run.task_writes(i)))
        return self._chunks(i, applied, None)

    def _branch_failed(self, i: int, applied: Optional[dict], exc: BaseException) -> list[tuple[str, Any]]:
        self.failed(i, exc)
        return self._chunks(i, applied, exc)

    def _chunks(
        self, i: int, applied: Optional[dict], error: Optional[BaseException], *, updates: bool = True
    ) -> list[tuple[str, Any]]:
        name, _input, task_id, _push = self.tasks[i]
        if name == START:
            return []
        chunks = self.custom_chunks() if self._custom else []
        if self.nested:
            chunks[:0] = self.nested_chunks()
        if updates and "updates" in self.modes:
            chunks.append(("updates", {name: self._update_chunk(applied)}))
        if self.task_events:
            payload = {
                "id": task_id,
                "name": name,
                "error": error,
                "result": dict(applied) if applied else {},
                "interrupts": [],
            }
            chunks.extend(self._event("task_result", self.run.step + 1, payload))
        return chunks

    def _routes(self, i: int, branch: BranchSpec, result: Any) -> None:
        targets = result if isinstance(result, (list, tuple)) else (result,)
        for target in targets:
            self._route(i, self.tasks[i][0], target, branch.path_map)

    def _route(self, i: int, source: str, target: Any, path_map: Optional[dict]) -> None:
        if isinstance(target, Send):
            self.run.send(i, target.node, target.arg)
            return
        if path_map is not None:
            try:
                target = path_map[target]
            except (KeyError, TypeError):
                raise GraphValidationError(
                    f"The branch from '{source}' returned {target!r}, which is not in its path_map"
                ) from None
        if target is None or target == END:
            return
        if not isinstance(target, str):
            raise InvalidUpdateError(
                f"The branch from '{source}' must return node names or Send objects, got {target!r}"
            )
        self.run.goto(i, target)

    def apply(self) -> list[tuple[str, Any]]:
        """End the step: apply its writes and checkpoint, or stop on an interrupt."""
        ran = {task[0] for task in self.tasks} if self.interrupt_after else set()
        if self.paused:
            # The step is not checkpointed (its finished tasks' writes are saved as pending
            # writes); its paused tasks were reported as they paused, and the caller still
            # sees the state with the finished tasks' writes in it (LangGraph's last "values").
            self._write_at_exit()
        changed = self.run.apply()
        if changed and self.narrowed is not None:
            # As in LangGraph, "values" shows a step only when it changed an output key.
            changed = not self.narrowed.isdisjoint(self.run.updated_keys())
        chunks = [("values", self.output())] if changed and "values" in self.modes else []
        if self.paused:
            return chunks
        if self.saver is not None:
            if self._should_interrupt_after(ran):
                self.run.mark_interrupt()
                self.static_interrupt = True
            self._save("loop", self.run.step)
        if self.static_interrupt:
            # The run stops here: its last checkpoint is reported now, with the tasks due at
            # it, before the interrupt (LangGraph's order).
            if self.checkpoint_events:
                chunks.extend(self._checkpoint_chunk(self._due_tasks()))
            chunks.extend(self.interrupt_chunks())
        return chunks

    def _due_tasks(self) -> list[tuple]:
        """The tasks due at the run's current position, without starting a step."""
        try:
            due = self.run.tick() or []
        except GraphRecursionError:
            return []
        self.run.clear_tasks()
        return due

    def failed_run(self) -> None:
        """The run stops on an error: with durability "exit", save where it got to."""
        self._write_at_exit()

    def check_stopped(self) -> None:
        """Once the run has ended and everything is stored: GraphDrained if a drain stopped it;
        in a child run, GraphInterrupt if interrupts stopped it (its parent's task pauses with
        them, as in LangGraph; only a root run returns its interrupts)."""
        if self.nesting is not None and (self.paused or self.static_interrupt):
            raise GraphInterrupt(tuple(self.interrupts))
        if self.drained:
            assert self.control is not None, "only a run with a RunControl drains"
            raise GraphDrained(self.control.drain_reason or "shutdown")

    def finish(self) -> list[tuple[str, Any]]:
        """After the last step: the checkpoint kept for the end (durability "exit"), and the
        chunks that close the run."""
        chunks: list[tuple[str, Any]] = []
        self._write_at_exit(self.static_interrupt)
        if self.checkpoint_events:
            # Stopped before a step (interrupt_before), the tasks it did not start are due.
            chunks.extend(self._checkpoint_chunk(self.tasks if self.static_interrupt else []))
        if self.static_interrupt:
            chunks.extend(self.interrupt_chunks())
        return chunks

    def interrupt_chunks(self) -> list[tuple[str, Any]]:
        """How a stop at interrupt_before/after shows in the streams (reported once): an
        update of no interrupts, as in LangGraph."""
        if self._interrupt_reported:
            return []
        self._interrupt_reported = True
        if self.nesting is not None:
            return []  # a child's stop is reported by the root, which pauses with it
        return [("updates", {INTERRUPT: ()})] if "updates" in self.modes else []

    def output(self) -> Any:
        """The state as a "values" chunk shows it: the output keys (only the one key's value
        when `output_keys` names one)."""
        state = self.run.state()
        keys = self.output_keys
        if isinstance(keys, str):
            return state.get(keys)
        if keys is not None:
            return {k: v for k, v in state.items() if k in keys}
        return state

    def _update_chunk(self, applied: Optional[dict]) -> Any:
        """A node's update as its "updates" chunk shows it, narrowed to the output keys."""
        keys = self.output_keys
        if keys is None or applied is None:
            return applied
        if isinstance(applied, list):  # a key written more than once: one entry per write
            if isinstance(keys, str):
                return [u[keys] for u in applied if keys in u] or None
            return [u for u in applied if not set(keys).isdisjoint(u)] or None
        if isinstance(keys, str):
            return applied.get(keys)
        narrowed = {k: v for k, v in applied.items() if k in keys}
        return narrowed or None

    def nested_chunks(self) -> list[tuple]:
        """What child runs streamed since the last call, as (mode, chunk, namespace)."""
        assert self.nested is not None, "only a run streaming its children collects their chunks"
        chunks = []
        while self.nested:
            chunks.append(self.nested.popleft())
        return chunks

    def custom_chunks(self) -> list[tuple[str, Any]]:
        """What nodes wrote to the custom stream since the last call."""
        chunks = []
        while self._custom:
            chunks.append(("custom", self._custom.popleft()))
        return chunks

    # ---- looking back

    def snapshot(self, saved: Any, *, live: bool, requested: Optional[dict] = None) -> StateSnapshot:
        """The state at a saved checkpoint with the tasks due there and what became of them.

        `live` (the thread's current state) counts finished tasks as done: their writes are in
        the values and they are not in `next`, and only unanswered interrupts are listed.
        Otherwise the snapshot records the step as it started: every due task is in `next`.
        """
        if saved is None:
            # Only get_state reads a checkpoint that may be missing, and it passes its config.
            assert requested is not None, "a snapshot of no checkpoint needs the requested config"
            return StateSnapshot({}, (), requested, None, None, None, (), ())
        run = _core.CoreRun(self.graph._core, _INSPECT_LIMIT)
        run.restore(saved.checkpoint, (saved.metadata or {}).get("step", -1))
        pending = _writes_by_task(saved.pending_writes)
        tasks = run.tick() or []
        # As in LangGraph, a Command input's writes show in the values but do not add the
        # tasks its gotos scheduled (their writes, if they ran, are left out too).
        apply_null_writes(run, pending.pop(NULL_TASK_ID, ()))
        found: list[PregelTask] = []
        next_names: list[str] = []
        interrupts: list[Interrupt] = []
        state_keys = self.graph._builder.channels
        subgraphs = self.graph.subgraphs
        finished = False
        for i, (name, _input, task_id, _push) in enumerate(tasks):
            writes = pending.get(task_id, [])
            done = _completed(writes)
            paused = tuple(_special(writes, INTERRUPT) or ())
            if live and done:
                paused = ()  # it finished: every question it asked was answered
            elif live:
                answered = len(_special(writes, RESUME) or ())
                paused = tuple(p for p in paused if p.id != _answered_id(task_id, answered))
            interrupts.extend(paused)
            result = {ch: v for ch, v in writes if ch in state_keys} if done else None
            state = subgraph_task_state(self, name, task_id, saved.config) if name in subgraphs else None
            found.append(PregelTask(task_id, name, tuple(run.task_path(i)), _special(writes, ERROR), paused, state, result))
            if live and done:
                run.restore_task(i, [(ch, v) for ch, v in writes if ch not in SPECIAL_CHANNELS])
                finished = True
            else:
                next_names.append(name)
        if finished:
            run.apply()
        values = run.state()
        return StateSnapshot(
            values=values.get(ROOT) if self.graph.root else values,
            next=tuple(next_names),
            config=with_checkpoint_map(saved.config, saved.metadata),
            metadata=saved.metadata,
            created_at=saved.checkpoint.get("ts"),
            parent_config=with_checkpoint_map(saved.parent_config, saved.metadata),
            tasks=tuple(found),
            interrupts=tuple(interrupts),
        )

    def update(self, saved: Any, values: Any, as_node: Optional[str]) -> None:
        """Queue a checkpoint that applies `values` as if node `as_node` had returned them."""
        # Whether the node's writes are kept is known only after it ran (below): nothing of
        # an update is stored directly.
        self.native_sink = None
        run = self.run
        if saved is not None:
            run.restore(saved.checkpoint, (saved.metadata or {}).get("step", -1))
            self.parent_config = saved.config
        if as_node is None:
            as_node = run.last_node() or START
        if as_node == END:
            raise GraphValidationError("Cannot update state as END")
        if as_node != START and as_node not in self.graph._nodes:
            raise GraphValidationError(f"Cannot update state as unknown node '{as_node}'")
        due = [t for t in (run.tick() or []) if t[0] == as_node and not t[3]]
        if due:
            # The node is due at that checkpoint: the update stands in for its run there,
            # and is also saved as that task's writes.
            run.keep_only_task(due[0][2])
            self.tasks = due[:1]
        else:
            run.clear_tasks()
            run.add_task(as_node)
            self.tasks = [(as_node, None, "", False)]
        result = self.graph._input_update(values) if as_node == START else values
        self.complete(0, result)
        if self.error is not None:
            raise self.error
        if not due:
            self.outbox.clear()  # the update's writes are the new checkpoint, not pending writes
        run.apply()
        self._save("update", run.step)


_MISSING = object()


class _NodeCall(CurrentTask):
    """One task's node call, made as often as it is attempted: it is also what the node sees
    as its current task (config, runtime, interrupts), set around each attempt. One object,
    not closures: this runs for every task of every step."""

    __slots__ = ("_fn", "_input", "_injects", "_wants_runtime", "_node_config")

    def __init__(self, loop: "RunLoop", name: str, task_id: str, scratchpad: Optional[_Scratchpad], spec: Any, input: Any, config: dict) -> None:
        # CurrentTask's fields, set here rather than through super(): this runs for every task.
        self.config = loop.config
        self.scratchpad = scratchpad
        self.attempt = 0
        self._first_attempt_time = 0.0
        self._runtime = None
        self._loop = loop
        self._name = name
        self._task_id = task_id
        self._fn = spec.fn
        self._input = input
        self._injects = spec.injects
        self._wants_runtime = spec.wants_runtime
        self._node_config = config

    def _start(self) -> Any:
        self.attempt += 1
        if self.attempt == 1:
            self._first_attempt_time = time.time()
        arg = self._input
        if type(arg) is _Deferred:
            arg = arg.build()
        if not self._injects:
            return self._fn(arg)
        runtime = self.runtime if self._wants_runtime else self._loop.runtime
        return self._fn(arg, **{key: _injected(key, runtime, self._node_config) for key in self._injects})

    def __call__(self) -> Any:
        token = _CURRENT.set(self)
        try:
            if self._injects or type(self._input) is _Deferred or self.attempt:
                return self._start()
            # The common case in one frame: a plain node's first attempt.
            self.attempt = 1
            self._first_attempt_time = time.time()
            return self._fn(self._input)
        finally:
            _CURRENT.reset(token)


class _AsyncNodeCall(_NodeCall):
    """`_NodeCall` of an async node: the task is set inside the coroutine, so the node's own
    awaits see it."""

    __slots__ = ()

    async def __call__(self) -> Any:  # type: ignore[override]
        token = _CURRENT.set(self)
        try:
            return await self._start()
        finally:
            _CURRENT.reset(token)


class _Deferred:
    """A node's input to build when the node runs (a schema instance, whose validation errors
    are the node's own)."""

    __slots__ = ("make", "state")

    def __init__(self, make: Callable[[dict], Any], state: dict) -> None:
        self.make = make
        self.state = state

    def build(self) -> Any:
        return self.make(self.state)


def _injected(key: str, runtime: Runtime[Any], config: dict) -> Any:
    """The value of a node parameter the engine fills by name (see `NodeSpec.injects`)."""
    if key == "config":
        return config
    if key == "runtime":
        return runtime
    if key == "writer":
        return runtime.stream_writer
    if key == "store":
        return runtime.store
    return runtime.previous


def _answered_id(task_id: str, answered: int) -> str:
    """An id no interrupt has unless it is the task's `answered`-th one, already answered."""
    from ferrograph.types import interrupt_id

    return interrupt_id(task_id, answered - 1) if answered else ""


def call_with_retry(call: Callable[[], Any], policies: Sequence[RetryPolicy]) -> Any:
    if not policies:
        return call()
    attempt = 1
    while True:
        try:
            return call()
        except Exception as exc:
            delay = retry_delay(policies, attempt, exc)
            if delay is None:
                raise
            time.sleep(delay)
            attempt += 1


async def acall_with_retry(call: Callable[[], Any], policies: Sequence[RetryPolicy], is_async: bool) -> Any:
    attempt = 1
    while True:
        try:
            if is_async:
                return await call()
            loop = asyncio.get_running_loop()
            ctx = contextvars.copy_context()
            return await loop.run_in_executor(None, ctx.run, call)
        except Exception as exc:
            delay = retry_delay(policies, attempt, exc)
            if delay is None:
                raise
            await asyncio.sleep(delay)
            attempt += 1


def retry_delay(policies: Sequence[RetryPolicy], attempt: int, exc: Exception) -> Optional[float]:
    """Seconds to wait before the next attempt, or None to give up. The first policy whose
    `retry_on` matches the failure applies (attempts are counted across policies, as in
    LangGraph). Interrupts are never retried: they are a pause, not a failure."""
    if isinstance(exc, GraphInterrupt):
        return None
    policy = next((p for p in policies if p.should_retry(exc)), None)
    if policy is None:
        return None
    return _core.retry_delay(
        attempt,
        random.random(),
        policy.initial_interval,
        policy.backoff_factor,
        policy.max_interval,
        policy.max_attempts,
        policy.jitter,
    )
