"""Running a run's saver calls (the `SaverCall`s its `RunLoop` queues): inline, or, with
durability "async", on a background writer while the graph goes on.

A background writer runs the calls in the order they were queued. Whatever queues while a
batch is being written goes out next as one batch (`saver.run_batch(calls)` or
`await saver.arun_batch(calls)`, one transaction on the SQL savers; one call after another on
savers without the hook). A call queued while the writer is idle starts at once (the async
driver's), or within `DRAIN_DELAY` (the sync driver's, see below). A failed
batch is written again call by call up to the failing one (see `write`); after that nothing
more is written (later checkpoints would lack their parents), and the error reaches the run's
caller at the next step boundary or at the end. Results go back to the calls' `on_done` on
the driver's own thread, when it checks on the writer.

What a background writer holds (queued, or in the batch being written) is bounded: at most
`max_pending_bytes` of values (their encoded size, see `call_bytes`) and
`max_pending_steps` checkpoints. A run that would go past either waits in `submit` until a
batch is written (backpressure; a sync run first writes what is queued itself, if no pooled
thread is writing), so a graph faster than its database runs at the database's pace instead of
piling up its steps in memory. A single call larger than the bound is still taken, alone.

The sync driver's writer drains on a thread of one shared pool; the async driver's is an
asyncio task. Both share the queue logic in `_Writer`. The pooled thread is asked for only when
writes have waited `DRAIN_DELAY` (a timer of `_core.call_later`, which waits without the GIL):
when the sync driver waits for its writer (at the end of a run) it writes what no pooled thread
has taken yet itself, and a run shorter than the delay (a graph of quick nodes) writes all its
steps that way, in one batch, with no other thread woken. A woken thread needs the GIL, which
the run holds while it computes: it takes it at the run's next blocking call (a saver read, a
statement), and the hand-overs cost a short run on SQLite about a third of its time. A run
with slower nodes has its steps written in the background from the first delay on. Reads of a
saver (a run's load, `get_state`, ...) first wait for the background writers on that saver
(`settle`), so they see everything queued before them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from typing import Any, Optional, Sequence

from ferrograph import _core, serde
from ferrograph.graph._loop import SaverCall

#: Seconds a sync run's queued writes wait for the run to write them itself before a pooled
#: thread is asked to (see the module doc): how much later than at once a checkpoint may start
#: being written while a node runs.
DRAIN_DELAY = 0.01

#: The default bounds of what a run's background writer holds (see `compile`).
MAX_PENDING_BYTES = 32 * 1024 * 1024
MAX_PENDING_STEPS = 100

#: Threads that drain sync writers; idle ones are reused, so a run starts no thread of its own.
_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
_pool_lock = threading.Lock()

#: Background writers in use, by id of their saver (see `settle`).
_active: dict[int, set["_Writer"]] = {}
_active_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="ferrograph-writer")
        return _pool


def writes_inline(saver: Any, *, sync: bool) -> bool:
    """Whether a run's saver calls stay on the run's own thread (or task) even with durability
    "async": for a saver that keeps checkpoints in this process (`in_process`: a call takes
    microseconds, a background writer would only add the hand-over), and, for a sync run, an
    async saver whose event loop runs in this thread (its sync methods refuse to be called
    there, rather than wait forever for the loop this thread blocks)."""
    if getattr(saver, "in_process", False):
        return True
    if not sync:
        return False
    loop = getattr(saver, "loop", None)
    return loop is not None and loop is _running_loop()


#: Values whose size needs no codec: a number (or None) counts as a machine word.
_SCALARS = (int, float, bool, type(None))


def value_bytes(value: Any, serializer: Optional[serde.Serializer] = None) -> int:
    """The size of `value` encoded (what the saver will store). Strings, bytes and numbers are
    sized directly; anything else by encoding it with `serializer` (the codec is the cheapest
    way to walk a value in full). A value the codec refuses counts its shallow size: the saver
    call raises the codec's error in its turn."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value)
    if kind in _SCALARS:
        return 8
    try:
        with serde.using(serializer):
            return len(serde.dumps(value))
    except Exception:
        return sys.getsizeof(value)


def call_bytes(call: SaverCall, serializer: Optional[serde.Serializer] = None) -> int:
    """What a queued saver call keeps alive: a put's values of the new versions (the others are
    the run's current values anyway), a put_writes' written values."""
    if call.method == "put":
        _config, checkpoint, _metadata, new_versions = call.args
        if type(checkpoint) is _core.EncodedCheckpoint:  # a first-party saver's: already encoded
            return checkpoint.values_size  # it holds the new versions' values only
        values = checkpoint.get("channel_values", {}) if isinstance(checkpoint, dict) else {}
        return sum(value_bytes(values[key], serializer) for key in new_versions if key in values)
    if call.method == "put_writes":
        total = 0
        for _channel, value in call.args[1]:
            # Numbers and None, most of a run's writes besides its messages, need no call.
            total += 8 if type(value) in _SCALARS else value_bytes(value, serializer)
        return total
    return 0


def run_batch(saver: Any, calls: Sequence[SaverCall]) -> list:
    """Runs `calls` with the saver's batch hook (one transaction), or one by one without it."""
    pairs = [(call.method, call.args) for call in calls]
    hook = getattr(saver, "run_batch", None)
    if hook is not None:
        return list(hook(pairs))
    return [getattr(saver, method)(*args) for method, args in pairs]


async def arun_batch(saver: Any, calls: Sequence[SaverCall]) -> list:
    """The async twin of `run_batch`."""
    pairs = [(call.method, call.args) for call in calls]
    hook = getattr(saver, "arun_batch", None)
    if hook is not None:
        return list(await hook(pairs))
    return [await getattr(saver, "a" + method)(*args) for method, args in pairs]


def write(saver: Any, batch: Sequence[SaverCall]) -> list:
    """Writes a batch (one transaction on the SQL savers). If it fails, its calls are written
    again one by one, so that what came before the failing call is stored, as with durability
    "sync" (finished tasks are not run again on resume), and that call's error is raised."""
    try:
        return run_batch(saver, batch)
    except Exception:
        if len(batch) == 1:
            raise
    return [run_batch(saver, [call])[0] for call in batch]


async def awrite(saver: Any, batch: Sequence[SaverCall]) -> list:
    """The async twin of `write`."""
    try:
        return await arun_batch(saver, batch)
    except Exception:
        if len(batch) == 1:
            raise
    return [(await arun_batch(saver, [call]))[0] for call in batch]


class _Writer:
    """The queue of one run's background writes, shared by both drivers' writers.

    `_add` queues calls and says whether a drain must start; the drain `_take`s batches until
    the queue is empty and records each one's outcome with `_ran`. The driver thread calls
    `check` to hand results to `on_done` and raise a failed batch's error (once)."""

    def __init__(
        self,
        saver: Any,
        background: bool,
        serializer: Optional[serde.Serializer] = None,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        max_pending_steps: int = MAX_PENDING_STEPS,
    ) -> None:
        self.background = background
        self.saver = saver
        #: Made active around every call, wherever it runs (see `ferrograph.serde`).
        self.serializer = serializer
        self.max_pending_bytes = max_pending_bytes
        self.max_pending_steps = max_pending_steps
        self.done: list[tuple[SaverCall, Any]] = []
        self.error: Optional[BaseException] = None
        self.reported = False
        if not background:
            return  # calls run in `submit`: nothing is queued, nothing to wait for
        self.lock = threading.Lock()
        #: Notified when a batch is written (a `submit` waiting for room goes on).
        self.room = threading.Condition(self.lock)
        self.queue: list[SaverCall] = []
        #: What is queued or being written: (bytes, checkpoints), of the queue and of the batch.
        self.queued = (0, 0)
        self.writing = (0, 0)
        #: Set while nothing is queued or being written (readers in other threads wait on it).
        self.idle = threading.Event()
        self.idle.set()
        self._busy = False
        #: Held by whoever takes a batch and writes it (the pooled drain or the waiting driver),
        #: so batches are written one at a time, in the order they were taken.
        self.turn = threading.Lock()
        with _active_lock:
            _active.setdefault(id(saver), set()).add(self)

    def _size(self, calls: Sequence[SaverCall]) -> tuple[int, int]:
        nbytes = steps = 0
        for call in calls:
            nbytes += call_bytes(call, self.serializer)
            steps += call.method == "put"
        return nbytes, steps

    def _full(self, size: tuple[int, int]) -> bool:
        """Whether adding `size` would go past a bound (with the lock held). An empty writer
        takes anything."""
        held_bytes = self.queued[0] + self.writing[0]
        held_steps = self.queued[1] + self.writing[1]
        if self.error is not None or (held_bytes == 0 and held_steps == 0):
            return False
        return held_bytes + size[0] > self.max_pending_bytes or held_steps + size[1] > self.max_pending_steps

    def _add(self, calls: Sequence[SaverCall], size: tuple[int, int]) -> bool:
        with self.lock:
            return self._add_locked(calls, size)

    def _add_locked(self, calls: Sequence[SaverCall], size: tuple[int, int]) -> bool:
        """Queues `calls` (with the lock held); whether a drain must start."""
        if self.error is not None or not calls:
            return False
        self.queue.extend(calls)
        self.queued = (self.queued[0] + size[0], self.queued[1] + size[1])
        if self._busy:
            return False
        self._busy = True
        self.idle.clear()
        return True

    def _take(self) -> list[SaverCall]:
        with self.lock:
            if not self.queue or self.error is not None:
                self.queue = []
                self.queued = (0, 0)
                self._busy = False
                self.idle.set()
                return []
            batch, self.queue = self.queue, []
            self.writing, self.queued = self.queued, (0, 0)
            return batch

    def _ran(self, batch: list[SaverCall], results: Optional[list], error: Optional[BaseException]) -> None:
        with self.lock:
            if error is not None:
                self.error = error
                self.queue = []
                self.queued = (0, 0)
            else:
                self.done.extend(zip(batch, results or ()))
            self.writing = (0, 0)
            self.room.notify_all()

    def check(self) -> None:
        """On the driver's thread: pass finished calls' results to their `on_done`, and raise
        the error of a failed batch (the first time only)."""
        if not self.background:
            return  # inline calls hand their results over and raise in `submit`
        if not self.done and self.error is None:
            return  # nothing written since the last check (what is written later is seen next time)
        with self.lock:
            done, self.done = self.done, []
        for call, result in done:
            if call.on_done is not None:
                call.on_done(result)
        if self.error is not None and not self.reported:
            self.reported = True
            raise self.error

    def _unregister(self) -> None:
        if not self.background:
            return  # only background writers are registered
        with _active_lock:
            writers = _active.get(id(self.saver))
            if writers is not None:
                writers.discard(self)
                if not writers:
                    del _active[id(self.saver)]

    def _closing(self, raising: Optional[BaseException]) -> None:
        """After the writer has gone idle for good: results to `on_done`; a write error is
        raised, or, when the run is already raising `raising`, noted on it."""
        self._unregister()
        try:
            self.check()
        except BaseException as exc:
            if raising is None:
                raise
            if hasattr(raising, "add_note") and exc is not raising:
                raising.add_note(f"A background checkpoint write also failed: {exc!r}")


class Writer(_Writer):
    """The sync driver's writer: inline (each call done before `submit` returns), or in the
    background on a pooled thread."""

    #: The timer that asks for a pooled thread, when one was set.
    _later: Optional[_core.Later] = None

    def submit(self, calls: Sequence[SaverCall]) -> None:
        if not self.background:
            for call in calls:
                with serde.using(self.serializer):
                    result = getattr(self.saver, call.method)(*call.args)
                if call.on_done is not None:
                    call.on_done(result)
            return
        if not calls:
            return
        size = self._size(calls)
        with self.lock:
            full = self._full(size)
            start = False if full else self._add_locked(calls, size)
        if full:
            # The run is ahead of its writer: it writes what is queued itself (no pooled thread
            # may have been asked for yet), or waits for the batch being written.
            self._drain_here()
            with self.lock:
                self.room.wait_for(lambda: not self._full(size))
                start = self._add_locked(calls, size)
        if start:
            self._later = _core.call_later(DRAIN_DELAY, self._start_drain)

    def _start_drain(self) -> None:
        _executor().submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self.turn:
                if not self._write_next():
                    return

    def _write_next(self) -> bool:
        """Takes the queued calls and writes them as one batch (with `turn` held); False when
        nothing was queued."""
        batch = self._take()
        if not batch:
            return False
        try:
            with serde.using(self.serializer):
                results = write(self.saver, batch)
        except BaseException as exc:
            self._ran(batch, None, exc)
        else:
            self._ran(batch, results, None)
        return True

    def _drain_here(self) -> None:
        """Writes on this thread what no drain has taken yet; leaves a batch being written to
        its thread."""
        while self.turn.acquire(blocking=False):
            try:
                if not self._write_next():
                    return
            finally:
                self.turn.release()

    def _written(self) -> None:
        """Block until everything queued is written (an inline writer has nothing queued)."""
        if self.background:
            self._drain_here()
            if self._later is not None:
                self._later.cancel()  # written here: no thread needs waking for it
            self.idle.wait()

    def wait(self) -> None:
        """Block until everything queued is written; then as `check`."""
        self._written()
        self.check()

    def close(self, raising: Optional[BaseException] = None) -> None:
        self._written()
        self._closing(raising)


class AsyncWriter(_Writer):
    """The async driver's writer: inline (each call awaited in `submit`), or an asyncio task
    on the run's event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.task: Optional[asyncio.Task] = None
        self.loop = asyncio.get_running_loop()
        #: Set by the drain task after each batch (the run waiting for room goes on).
        self.written = asyncio.Event()
        super().__init__(*args, **kwargs)

    async def submit(self, calls: Sequence[SaverCall]) -> None:
        if not self.background:
            for call in calls:
                with serde.using(self.serializer):
                    result = await getattr(self.saver, "a" + call.method)(*call.args)
                if call.on_done is not None:
                    call.on_done(result)
            return
        if not calls:
            return
        size = self._size(calls)
        # The drain is a task of this loop, so the bound only changes across an await.
        while self._full(size):
            self.written.clear()
            await self.written.wait()
        if self._add(calls, size):
            self.task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            try:
                with serde.using(self.serializer):
                    results = await awrite(self.saver, batch)
            except BaseException as exc:
                self._ran(batch, None, exc)
            else:
                self._ran(batch, results, None)
            self.written.set()

    async def _idle(self) -> None:
        # Shielded: a cancelled run still lets its writes finish.
        while self.task is not None and not self.idle.is_set():
            await asyncio.shield(self.task)

    async def wait(self) -> None:
        await self._idle()
        self.check()

    async def close(self, raising: Optional[BaseException] = None) -> None:
        await self._idle()
        self._closing(raising)


def _writers_of(saver: Any) -> list[_Writer]:
    with _active_lock:
        return list(_active.get(id(saver), ()))


def settle(saver: Any) -> None:
    """Wait until the background writers on `saver` have written what they hold (not those
    of an event loop running in this thread: they cannot progress while it blocks)."""
    if not _active:  # no background writer anywhere (every run of an in-process saver)
        return
    for writer in _writers_of(saver):
        if isinstance(writer, AsyncWriter) and _running_loop() is writer.loop:
            continue
        writer.idle.wait()


async def asettle(saver: Any) -> None:
    """The async twin of `settle`."""
    if not _active:
        return
    loop = asyncio.get_running_loop()
    for writer in _writers_of(saver):
        if writer.idle.is_set():
            continue
        if isinstance(writer, AsyncWriter) and writer.loop is loop:
            await writer._idle()
        else:
            await asyncio.to_thread(writer.idle.wait)


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
