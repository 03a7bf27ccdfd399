"""Which classes checkpoints may hold: the public face of ferrograph's codec.

Checkpoints are typed JSON written and read in Rust. JSON values, and the standard types below,
round-trip exactly with no set-up. A class of your own (a dataclass, a pydantic model, an enum,
a NamedTuple, any plain class) is rebuilt from stored data only when it is *allowed*, because
rebuilding it runs its constructor with whatever the database holds:

- a graph allows every class its schemas name (state, input, output, context, node input
  schemas, through Optional, list, dict, Annotated, nested fields...) for its own checkpoints,
  plus `compile(..., allowed_types=[...])`;
- `allow(*classes)` (also a decorator) allows classes everywhere in this process;
- `Serializer(allowed=[...])` is an allowed set of its own: give it to a saver
  (`MemorySaver(serializer=...)`), to `as_langgraph_saver(saver, serializer=...)`, or make it
  active for a block of saver calls with `using(serializer)`.

Standard types stored without allowlisting (they cannot run code): tuple, set, frozenset,
bytes, bytearray, int of any size, non-finite float, Decimal, UUID, date, datetime and time
(with `datetime.timezone` or IANA `zoneinfo` zones), timedelta, `fractions.Fraction`, complex,
range, pathlib paths (pure and concrete, in their flavour), `ipaddress` addresses, networks and
interfaces, compiled `re` patterns, `zoneinfo.ZoneInfo`, `datetime.timezone`,
`collections.deque`, `OrderedDict`, `Counter`, `defaultdict` (with a builtin type or None as its
default factory), and numpy arrays and scalars when numpy is installed (dtype and shape kept;
arrays of objects refused). A subclass of str, int, float, bytes, list, dict, tuple, set or
frozenset that is not allowed is stored as that builtin value, as LangGraph stores it (an
allowed one round-trips as its own class).
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Iterator, Optional, TypeVar, Union

from ferrograph import _core

__all__ = ["Serializer", "allow", "allowed_classes", "default_serializer", "active", "using", "dumps", "loads"]

Serializer = _core.Serializer

T = TypeVar("T", bound=type)

#: The process-wide serializer: what `allow` extends and every `Serializer` stands on.
_DEFAULT = _core.default_serializer()


def allow(*classes: T) -> T:
    """Allow `classes` in every checkpoint this process writes and reads. Returns the class
    when given one, so `@allow` decorates a class."""
    return _core.allow(*classes)


def allowed_classes() -> list[str]:
    """The `module:qualname` of every class allowed process-wide."""
    return _core.allowed_classes()


def default_serializer() -> Serializer:
    """The process-wide serializer (what `allow` extends)."""
    return _DEFAULT


def active() -> Serializer:
    """The serializer saver calls made here use: the one made active by `using` or by the graph
    run making them, else the process-wide one."""
    current: Optional[Serializer] = _core.active_serializer.get()
    return _DEFAULT if current is None else current


@contextlib.contextmanager
def using(serializer: Optional[Serializer]) -> Iterator[None]:
    """Make `serializer` the one saver calls in this block use (for a saver used from a script
    with classes of its own). `None` leaves the current one in place."""
    if serializer is None:
        yield
        return
    if not isinstance(serializer, Serializer):
        raise TypeError(f"using() takes a ferrograph.serde.Serializer, got {serializer!r}")
    token = _core.active_serializer.set(serializer)
    try:
        yield
    finally:
        _core.active_serializer.reset(token)


def iterate(serializer: Optional[Serializer], items: Iterator[Any]) -> Iterator[Any]:
    """`items` (a saver's lazily decoding `list`), each step taken with `serializer` active.
    The native memory saver's iterator decodes with the serializer active when `list` was
    called, so it is taken as it is."""
    if type(items) is _core.CheckpointTupleIter:
        yield from items
        return
    while True:
        with using(serializer):
            try:
                item = next(items)
            except StopIteration:
                return
        yield item


async def aiterate(serializer: Optional[Serializer], items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The async twin of `iterate`."""
    while True:
        with using(serializer):
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                return
        yield item


def dumps(value: Any, *, context: Optional[str] = None) -> bytes:
    """`value` as typed JSON bytes, with the active serializer. `context` names the value in
    error messages."""
    return _core.dumps(value, context=context)


def loads(data: Union[bytes, str]) -> Any:
    """The value typed JSON holds, with the active serializer."""
    return _core.loads(data)
