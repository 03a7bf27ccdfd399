"""`stream_mode="messages"`: `(message, metadata)` chunks for the tokens of LangChain chat
models called inside nodes, and for the messages a node returns, as LangGraph streams them.

Each node of such a run runs with a task config (also the one a node taking `config` gets,
and the one LangChain's `ensure_config()` finds, so a model called without a config sees it)
that carries a callback handler and the task's metadata: the run's metadata, the
`thread_id`-like configurable keys, `langgraph_step`, `langgraph_node`, `langgraph_triggers`,
`langgraph_path`, `langgraph_checkpoint_ns` and the node's own metadata. The handler makes chat
models stream (LangChain streams a model's tokens to a streaming handler even under
`invoke`) and hands each token chunk on with the model run's metadata (which LangChain
extends with the model's `ls_*` keys and the run's tags). After the node returns, each
message in its update that it did not receive and that was not streamed already is handed
on too. Messages without an id get one first, as LangGraph gives them.

Chunks go to a `MessageSink` from whichever thread produced them; the drivers wait on it
together with the running tasks, so chunks come out while a node still runs. Without
langchain-core there are no chat models nor messages to stream, and the mode streams nothing.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import threading
import uuid
from typing import Any, Callable, Optional, Sequence

try:
    from langchain_core.messages import BaseMessage
except ImportError:  # no chat models to stream: the mode yields nothing
    BaseMessage = None  # type: ignore[misc,assignment]

from ferrograph.types import Command

__all__ = ["MessageSink", "MessagesStream"]

#: The configurable keys LangGraph copies into a task's metadata.
_CONFIGURABLE_TO_METADATA = ("thread_id", "checkpoint_id", "checkpoint_ns", "task_id", "run_id", "assistant_id", "graph_id")
#: A model run tagged with this is not streamed.
TAG_NOSTREAM = "nostream"


class MessageSink:
    """Chunks produced on any thread, taken by the driver; `event` (sync) and the asyncio
    event bound by `bind_loop` (async) are set whenever something arrives or a task ends."""

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self.event = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._aevent: Optional[asyncio.Event] = None

    def bind_loop(self) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        self._aevent = asyncio.Event()
        return self._aevent

    def wake(self, *_: Any) -> None:
        self.event.set()
        if self._loop is not None and self._aevent is not None:
            self._loop.call_soon_threadsafe(self._aevent.set)

    def put(self, chunk: tuple[str, Any]) -> None:
        with self._lock:
            self._items.append(chunk)
        self.wake()

    def drain(self) -> list[tuple[str, Any]]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items


class MessagesStream:
    """One run's messages streaming: task configs, the handler, the ids already sent."""

    def __init__(self, config: dict, parent: Optional["MessagesStream"] = None) -> None:
        self.sink = MessageSink()
        # A child run shares its parent's: a message streamed in the child is not streamed
        # again when the parent's task returns it.
        self.seen: set[Any] = set() if parent is None else parent.seen
        self._seen_lock: threading.Lock = threading.Lock() if parent is None else parent._seen_lock
        self._config = config
        base = dict(config.get("metadata") or {})
        configurable = config.get("configurable") or {}
        for key in _CONFIGURABLE_TO_METADATA:
            if key not in base and configurable.get(key):
                base[key] = configurable[key]
        base.setdefault("ls_integration", "langgraph")
        self._base_metadata = base
        self._handler = _handler_class()(self) if BaseMessage is not None else None

    def task(self, name: str, task_meta: dict, node_metadata: Optional[dict]) -> tuple[dict, dict]:
        """A task's metadata (as its returned messages carry it) and its config."""
        metadata = {**self._base_metadata, **task_meta, **(node_metadata or {})}
        # A root task's namespace, or a child run's own (as LangGraph's configs pass it down).
        ns = self._base_metadata.get("checkpoint_ns") or task_meta["langgraph_checkpoint_ns"]
        config = {**self._config, "metadata": {**metadata, "checkpoint_ns": ns}}
        if self._handler is not None:
            from langchain_core.callbacks import CallbackManager

            user = self._config.get("callbacks")
            manager = CallbackManager.configure(
                inheritable_callbacks=user,
                inheritable_tags=list(self._config.get("tags") or ()),
                inheritable_metadata=config["metadata"],
            )
            manager.add_handler(self._handler, inherit=True)
            config["callbacks"] = manager
        return metadata, config

    def wrap(self, fn: Callable[[], Any], node_input: Any, metadata: dict, config: dict) -> Callable[[], Any]:
        """`fn` (a node call, sync or async) run under the task config; the messages it
        returns are streamed when it returns."""
        if self._handler is None:
            return fn
        from langchain_core.runnables.config import var_child_runnable_config

        def run() -> Any:
            token = var_child_runnable_config.set(config)  # type: ignore[arg-type]
            try:
                self._see(node_input)
                out = fn()
            finally:
                var_child_runnable_config.reset(token)
            if inspect.isawaitable(out):
                return finish(out)
            self._returned(out, metadata)
            return out

        async def finish(pending: Any) -> Any:
            token = var_child_runnable_config.set(config)  # type: ignore[arg-type]
            try:
                out = await pending
            finally:
                var_child_runnable_config.reset(token)
            self._returned(out, metadata)
            return out

        return run

    def emit(self, message: Any, metadata: dict, *, dedupe: bool) -> None:
        with self._seen_lock:
            if dedupe and message.id in self.seen:
                return
            if message.id is None:
                message.id = str(uuid.uuid4())
            self.seen.add(message.id)
        self.sink.put(("messages", (message, metadata)))

    def _see(self, node_input: Any) -> None:
        """A node's input messages are not its output: remember their ids."""
        ids = [m.id for m in _messages_in(_values(node_input)) if m.id is not None]
        with self._seen_lock:
            self.seen.update(ids)

    def _returned(self, out: Any, metadata: dict) -> None:
        items = out if isinstance(out, (list, tuple)) and any(isinstance(o, Command) for o in out) else [out]
        for item in items:
            update = item.update if isinstance(item, Command) else item
            if isinstance(update, BaseMessage):
                found: Sequence[Any] = [update]
            elif isinstance(update, Sequence) and not isinstance(update, str):
                found = [v for v in update if isinstance(v, BaseMessage)]
            else:
                found = list(_messages_in(_values(update)))
            for message in found:
                self.emit(message, metadata, dedupe=True)


def _values(obj: Any) -> list[Any]:
    """The top-level values of a state or update (dict, pydantic model or dataclass)."""
    if isinstance(obj, dict):
        return list(obj.values())
    fields = getattr(type(obj), "model_fields", None)
    if fields is not None:
        return [getattr(obj, k) for k in fields]
    names = getattr(obj, "__dataclass_fields__", None)
    if names is not None and not isinstance(obj, type):
        return [getattr(obj, k) for k in names]
    return []


def _messages_in(values: list[Any]) -> Any:
    for value in values:
        if isinstance(value, BaseMessage):
            yield value
        elif isinstance(value, Sequence) and not isinstance(value, str):
            yield from (v for v in value if isinstance(v, BaseMessage))


@functools.cache
def _handler_class() -> type:
    """The callback handler class, built on first use: LangChain's callback and tracing
    modules take long to import, and only a run streaming messages needs them."""
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk
    from langchain_core.tracers._streaming import _StreamingCallbackHandler

    class _Handler(BaseCallbackHandler, _StreamingCallbackHandler):
        """Hands a streaming chat model's chunks (and its final message, unless already
        streamed) to the run's `MessagesStream`, with the model run's metadata."""

        run_inline = True

        def __init__(self, stream: MessagesStream) -> None:
            self.stream = stream
            self.runs: dict[Any, dict] = {}

        def tap_output_aiter(self, run_id: Any, output: Any) -> Any:
            return output

        def tap_output_iter(self, run_id: Any, output: Any) -> Any:
            return output

        def on_chat_model_start(
            self,
            serialized: Any,
            messages: Any,
            *,
            run_id: Any,
            tags: Optional[list[str]] = None,
            metadata: Optional[dict] = None,
            **kwargs: Any,
        ) -> None:
            if not metadata or "langgraph_node" not in metadata or (tags and TAG_NOSTREAM in tags):
                return
            user_tags = [t for t in tags or () if not t.startswith("seq:step")]
            if user_tags:
                metadata["tags"] = user_tags
            self.runs[run_id] = metadata

        def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: Any, **kwargs: Any) -> None:
            metadata = self.runs.get(run_id)
            if metadata is not None and isinstance(chunk, ChatGenerationChunk):
                self.stream.emit(chunk.message, metadata, dedupe=False)

        def on_llm_end(self, response: Any, *, run_id: Any, **kwargs: Any) -> None:
            metadata = self.runs.pop(run_id, None)
            if metadata is not None and response.generations and response.generations[0]:
                generation = response.generations[0][0]
                if isinstance(generation, ChatGeneration):
                    self.stream.emit(generation.message, metadata, dedupe=True)

        def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
            self.runs.pop(run_id, None)

    return _Handler
