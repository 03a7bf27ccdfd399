"""Running a run's saver calls (the `SaverCall`s its `RunLoop` queues): inline, or, with
durability "async", on a background writer while the graph goes on.

A background writer runs the calls in the order they were queued. Whatever queues while a
batch is being written goes out next as one batch (`saver.run_batch(calls)` or
`await saver.arun_batch(calls)`, one transaction on the SQL savers; one call after another on
savers without the hook). A call queued while the writer is idle starts at once. A failed
batch is written again call by call up to the failing one (see `write`); after that nothing
more is written (later checkpoints would lack their parents), and the error reaches the run's
caller at the next step boundary or at the end. Results go back to the calls' `on_done` on
the driver's own thread, when it checks on the writer.

The sync driver's writer drains on a thread of one shared pool; the async driver's is an
asyncio task. Both share the queue logic in `_Writer`. Reads of a saver (a run's load,
`get_state`, ...) first wait for the background writers on that saver (`settle`), so they see
everything queued before them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Optional, Sequence

from ferrograph import serde
from ferrograph.graph._loop import SaverCall

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

    background: bool

    def __init__(self, saver: Any, serializer: Optional[serde.Serializer]) -> None:
        self.saver = saver
        #: Made active around every call, wherever it runs (see `ferrograph.serde`).
        self.serializer = serializer
        self.lock = threading.Lock()
        self.queue: list[SaverCall] = []
        self.done: list[tuple[SaverCall, Any]] = []
        self.error: Optional[BaseException] = None
        self.reported = False
        #: Set while nothing is queued or being written (readers in other threads wait on it).
        self.idle = threading.Event()
        self.idle.set()
        self._busy = False
        if self.background:
            with _active_lock:
                _active.setdefault(id(saver), set()).add(self)

    def _add(self, calls: Sequence[SaverCall]) -> bool:
        with self.lock:
            if self.error is not None or not calls:
                return False
            self.queue.extend(calls)
            if self._busy:
                return False
            self._busy = True
            self.idle.clear()
            return True

    def _take(self) -> list[SaverCall]:
        with self.lock:
            if not self.queue or self.error is not None:
                self.queue = []
                self._busy = False
                self.idle.set()
                return []
            batch, self.queue = self.queue, []
            return batch

    def _ran(self, batch: list[SaverCall], results: Optional[list], error: Optional[BaseException]) -> None:
        with self.lock:
            if error is not None:
                self.error = error
                self.queue = []
            else:
                self.done.extend(zip(batch, results or ()))

    def check(self) -> None:
        """On the driver's thread: pass finished calls' results to their `on_done`, and raise
        the error of a failed batch (the first time only)."""
        with self.lock:
            done, self.done = self.done, []
        for call, result in done:
            if call.on_done is not None:
                call.on_done(result)
        if self.error is not None and not self.reported:
            self.reported = True
            raise self.error

    def _unregister(self) -> None:
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

    def __init__(self, saver: Any, background: bool, serializer: Optional[serde.Serializer] = None) -> None:
        self.background = background
        super().__init__(saver, serializer)

    def submit(self, calls: Sequence[SaverCall]) -> None:
        if not self.background:
            for call in calls:
                with serde.using(self.serializer):
                    result = getattr(self.saver, call.method)(*call.args)
                if call.on_done is not None:
                    call.on_done(result)
            return
        if self._add(calls):
            _executor().submit(self._drain)

    def _drain(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            try:
                with serde.using(self.serializer):
                    results = write(self.saver, batch)
            except BaseException as exc:
                self._ran(batch, None, exc)
            else:
                self._ran(batch, results, None)

    def wait(self) -> None:
        """Block until everything queued is written; then as `check`."""
        self.idle.wait()
        self.check()

    def close(self, raising: Optional[BaseException] = None) -> None:
        self.idle.wait()
        self._closing(raising)


class AsyncWriter(_Writer):
    """The async driver's writer: inline (each call awaited in `submit`), or an asyncio task
    on the run's event loop."""

    def __init__(self, saver: Any, background: bool, serializer: Optional[serde.Serializer] = None) -> None:
        self.background = background
        self.task: Optional[asyncio.Task] = None
        self.loop = asyncio.get_running_loop()
        super().__init__(saver, serializer)

    async def submit(self, calls: Sequence[SaverCall]) -> None:
        if not self.background:
            for call in calls:
                with serde.using(self.serializer):
                    result = await getattr(self.saver, "a" + call.method)(*call.args)
                if call.on_done is not None:
                    call.on_done(result)
            return
        if self._add(calls):
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
    for writer in _writers_of(saver):
        if isinstance(writer, AsyncWriter) and _running_loop() is writer.loop:
            continue
        writer.idle.wait()


async def asettle(saver: Any) -> None:
    """The async twin of `settle`."""
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
