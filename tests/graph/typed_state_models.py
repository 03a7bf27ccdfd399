"""Classes of a user's own that graph state schemas name (tests/graph/test_typed_state.py), in a
module of their own so that `ferrograph show --allow typed_state_models:Doc` can import them."""

from __future__ import annotations

import dataclasses
import enum
from typing import Generic, NamedTuple, Optional, TypeVar

from pydantic import BaseModel


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Hit(NamedTuple):
    doc_id: str
    score: float


@dataclasses.dataclass
class Citation:
    source: str
    page: Optional[int] = None


class Doc(BaseModel):
    title: str
    tags: list[str] = []
    citation: Optional[Citation] = None
    priority: Priority = Priority.LOW


class Author(BaseModel):
    """Only reachable through a forward reference in `Review`."""

    name: str


@dataclasses.dataclass
class Review:
    author: "Author"
    notes: "list[Note]"


@dataclasses.dataclass
class Note:
    text: str


T = TypeVar("T")


@dataclasses.dataclass
class Box(Generic[T]):
    item: T


@dataclasses.dataclass
class Secret:
    """Named by no schema: only in the data."""

    value: str
