"""A reducer for chat messages: appends new messages and replaces those whose id is already
there, and a ready-made `MessagesState`. Works with LangChain messages when langchain_core is
installed, and with plain dicts otherwise."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypedDict

__all__ = ["add_messages", "MessagesState", "REMOVE_ALL_MESSAGES"]

REMOVE_ALL_MESSAGES = "__remove_all__"

try:
    from langchain_core.messages import AnyMessage, RemoveMessage, convert_to_messages
except ImportError:  # the reducer still works on dict messages
    AnyMessage = dict  # type: ignore[misc,assignment]
    RemoveMessage = None  # type: ignore[misc,assignment]
    convert_to_messages = None  # type: ignore[assignment]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if convert_to_messages is not None:
        return list(convert_to_messages(items))
    return [dict(m) if isinstance(m, dict) else m for m in items]


def _get_id(message: Any) -> Any:
    return message.get("id") if isinstance(message, dict) else getattr(message, "id", None)


def _set_id(message: Any, value: str) -> None:
    if isinstance(message, dict):
        message["id"] = value
    else:
        message.id = value


def _is_removal(message: Any) -> bool:
    if RemoveMessage is not None and isinstance(message, RemoveMessage):
        return True
    return isinstance(message, dict) and message.get("type") == "remove"


def add_messages(left: Any, right: Any) -> list:
    """Merge `right` into `left`: a message with a known id replaces the old one in place,
    a removal deletes it, anything else is appended. Messages without id get one."""
    current = _as_list(left)
    incoming = _as_list(right)
    for message in current + incoming:
        if _get_id(message) is None:
            _set_id(message, str(uuid.uuid4()))
    if any(_is_removal(m) and _get_id(m) == REMOVE_ALL_MESSAGES for m in incoming):
        last = max(i for i, m in enumerate(incoming) if _is_removal(m) and _get_id(m) == REMOVE_ALL_MESSAGES)
        return incoming[last + 1 :]
    merged = list(current)
    position = {_get_id(m): i for i, m in enumerate(merged)}
    removed: set = set()
    for message in incoming:
        mid = _get_id(message)
        if _is_removal(message):
            if mid not in position:
                raise ValueError(f"Attempting to delete a message with an ID that doesn't exist ('{mid}')")
            removed.add(mid)
        elif mid in position:
            merged[position[mid]] = message
            removed.discard(mid)
        else:
            position[mid] = len(merged)
            merged.append(message)
    return [m for m in merged if _get_id(m) not in removed]


class MessagesState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
