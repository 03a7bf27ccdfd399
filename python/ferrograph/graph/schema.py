"""Reading a state schema (TypedDict, dataclass or pydantic model): its keys, which of them
have reducers, and how to turn the engine's state dict into what a node expects and a node's
return value into an update."""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import typing
from typing import Any, Callable, NamedTuple, Optional

import typing_extensions

from ferrograph.errors import InvalidUpdateError

__all__ = ["StateKey", "Schema", "ROOT"]

#: The one key of a state that is not a dict of fields (`StateGraph(Annotated[list, add_messages])`).
ROOT = "__root__"

_MISSING = object()


class StateKey(NamedTuple):
    name: str
    reducer: Optional[Callable[[Any, Any], Any]]
    #: The reducer's starting value (e.g. [] for a list), or None when the type has none.
    initial: Any


def _is_reducer(candidate: Any) -> bool:
    if not callable(candidate) or isinstance(candidate, type):
        return False
    try:
        params = [
            p
            for p in inspect.signature(candidate).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
    except (TypeError, ValueError):  # builtins without a signature, e.g. operator.add
        return True
    return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _empty_value(annotation: Any) -> Any:
    """The value a reducer starts from: the type called with no argument, as LangGraph does."""
    typ = typing.get_origin(annotation) or annotation
    if typ in (collections.abc.Sequence, collections.abc.MutableSequence):
        typ = list
    elif typ in (collections.abc.Set, collections.abc.MutableSet):
        typ = set
    elif typ in (collections.abc.Mapping, collections.abc.MutableMapping):
        typ = dict
    if not isinstance(typ, type):
        return None
    try:
        return typ()
    except Exception:  # a type that needs arguments simply has no empty value
        return None


def _manager(annotation: Any) -> Optional[type]:
    """The managed-value class of a key annotated `RemainingSteps`/`IsLastStep` (also under
    typing's Required/NotRequired), or None for a stored key."""
    from ferrograph.managed import ManagedValue

    while typing.get_origin(annotation) in (typing_extensions.Required, typing_extensions.NotRequired):
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, type) and issubclass(meta, ManagedValue):
                return meta
    return None


def _state_key(name: str, annotation: Any) -> StateKey:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        for meta in reversed(metadata):
            if _is_reducer(meta):
                return StateKey(name, meta, _empty_value(base))
    return StateKey(name, None, None)


def _is_pydantic(cls: Any) -> bool:
    return isinstance(cls, type) and hasattr(cls, "model_fields") and hasattr(cls, "model_validate")


class Schema:
    """A state schema, read once at graph build time."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.kind = (
            "pydantic" if _is_pydantic(cls) else "dataclass" if dataclasses.is_dataclass(cls) else "dict"
        )
        if self.kind == "dict" and not hasattr(cls, "__annotations__") and (
            isinstance(cls, type) or typing.get_origin(cls) is not None
        ):
            # Not a class of fields: the whole state is one value, its own reducer included.
            self.kind = "root"
            annotations = {ROOT: cls}
        elif self.kind == "pydantic":
            fields = {n: f.annotation for n, f in cls.model_fields.items()}
            # model_fields drops Annotated metadata into FieldInfo.metadata; read hints instead
            hints = typing.get_type_hints(cls, include_extras=True)
            annotations = {n: hints.get(n, fields[n]) for n in fields}
        elif isinstance(cls, type):
            hints = typing.get_type_hints(cls, include_extras=True)
            if self.kind == "dataclass":
                annotations = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}
            else:
                annotations = dict(hints)
        else:
            raise TypeError(
                f"A state schema must be a class (TypedDict, dataclass or pydantic model) or the type of one value, got {cls!r}"
            )
        #: Keys the engine fills per step (`ferrograph.managed`), by their manager.
        self.managed: dict[str, type] = {}
        for n, a in annotations.items():
            manager = _manager(a)
            if manager is not None:
                self.managed[n] = manager
        self.keys: list[StateKey] = [_state_key(n, a) for n, a in annotations.items() if n not in self.managed]
        self.names = frozenset(annotations)

    @staticmethod
    def is_class_schema(cls: Any) -> bool:
        """Whether instances of `cls` are built from a dict of fields (dataclass, pydantic)."""
        return _is_pydantic(cls) or (isinstance(cls, type) and dataclasses.is_dataclass(cls))

    def to_node_input(self, state: dict) -> Any:
        """What a node receives: the dict itself for a TypedDict, an instance otherwise (a
        pydantic model validates here, so bad input raises pydantic's ValidationError)."""
        if self.kind == "dict":
            return state
        if self.kind == "root":
            return state.get(ROOT)
        # The run may hold more keys than this schema declares (private channels).
        return self.cls(**{k: v for k, v in state.items() if k in self.names})

    def to_update(self, value: Any, node: str) -> Optional[dict]:
        """A node's return value as a dict of writes, or None for no writes."""
        if value is None:
            return None
        if self.kind == "root":
            return {ROOT: value}
        if isinstance(value, dict):
            return value
        return object_fields(value, node)


def object_fields(value: Any, node: str) -> dict:
    """The fields of a dataclass or pydantic instance as an update; anything else is refused."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if _is_pydantic(type(value)):
        return {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, (list, tuple)) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value
    ) and value and not isinstance(value, str):
        return dict(value)
    raise InvalidUpdateError(f"Expected dict, got {value!r} from node '{node}'")


#: Modules whose classes never need allowing: builtins, typing constructs, and the standard
#: types the codec stores by itself.
_NATIVE_MODULES = frozenset(
    {
        "builtins", "typing", "typing_extensions", "collections", "collections.abc", "datetime", "decimal", "uuid",
        "fractions", "pathlib", "ipaddress", "re", "zoneinfo", "types", "abc", "enum", "numpy",
    }
)


def declared_classes(*annotations: Any) -> list[type]:
    """The classes reachable from type annotations, which a graph allows in its checkpoints:
    through Optional/Union, list/tuple/set/dict and other generics, Annotated, Literal (an enum
    member's class), NewType, TypedDict fields, dataclass and pydantic fields (nested; forward
    references resolved in the class's module) and NamedTuple fields. Builtins, typing
    constructs and the standard types the codec stores by itself are left out; a TypedDict is
    walked but not allowed itself (its values are dicts)."""
    found: dict[type, None] = {}
    seen: set[int] = set()

    def walk(tp: Any) -> None:
        if id(tp) in seen:
            return
        seen.add(id(tp))
        if isinstance(tp, str) or isinstance(tp, typing.ForwardRef):
            return  # unresolvable here: the class that holds it is resolved with its hints
        if isinstance(tp, typing.TypeVar):
            for bound in (tp.__bound__, *tp.__constraints__):
                if bound is not None:
                    walk(bound)
            return
        supertype = getattr(tp, "__supertype__", None)
        if supertype is not None:  # NewType
            walk(supertype)
            return
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:  # the metadata (a reducer, a Field) is not a type of the value
            walk(typing.get_args(tp)[0])
            return
        if origin is typing.Literal:
            for value in typing.get_args(tp):
                if not isinstance(value, (str, int, bool, bytes, type(None))) or type(value).__module__ != "builtins":
                    walk(type(value))
            return
        if origin is not None:
            walk(origin)
            for arg in typing.get_args(tp):
                if arg is not Ellipsis:
                    walk(arg)
            return
        if not isinstance(tp, type):
            return
        if typing.is_typeddict(tp):
            _walk_fields(tp, walk)
            return
        if tp.__module__ in _NATIVE_MODULES:
            return
        found[tp] = None
        _walk_fields(tp, walk)

    for annotation in annotations:
        if annotation is not None:
            walk(annotation)
    return list(found)


def _walk_fields(cls: type, walk: Callable[[Any], None]) -> None:
    """Walks the annotated fields of a class (its own and its bases'), forward references
    resolved where they can be."""
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:  # a forward reference that does not resolve: walk what does
        hints = {}
        for klass in reversed(cls.__mro__):
            hints.update(getattr(klass, "__annotations__", {}))
    for hint in hints.values():
        walk(hint)
