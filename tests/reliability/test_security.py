"""The claims of docs/security.md, one test each: what the codec rebuilds and refuses, how the
allowlist is extended, and why LangGraph's checkpoint advisories do not apply."""

from __future__ import annotations

import json
import pickle
import sys
from dataclasses import dataclass

import pytest

from ferrograph import _core, serde
from ferrograph.checkpointers import MemorySaver
from ferrograph.errors import CorruptCheckpointError, SerializationError


@dataclass
class Point:
    x: int
    y: int


class Opaque:
    def __init__(self) -> None:
        self.secret = 1


def test_an_unlisted_class_is_refused_on_write():
    with pytest.raises(SerializationError, match="Opaque"):
        serde.Serializer().dumps({"o": Opaque()})
    with pytest.raises(SerializationError):
        MemorySaver(serializer=serde.Serializer()).put(
            {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
            {"v": 4, "id": _core.new_checkpoint_id()[0], "ts": "", "channel_values": {"o": Opaque()},
             "channel_versions": {"o": "1"}, "versions_seen": {}, "updated_channels": None},
            {},
            {"o": "1"},
        )


def test_an_unlisted_class_named_by_stored_data_is_refused_on_read():
    data = json.dumps({"__fg__": "dataclass", "cls": f"{__name__}:Point", "v": {"x": 1, "y": 2}})
    with pytest.raises(CorruptCheckpointError, match="not allowed"):
        serde.Serializer().loads(data)


def test_the_allowlist_is_extended_per_serializer_or_process_wide():
    ser = serde.Serializer(allowed=[Point])
    assert ser.loads(ser.dumps(Point(1, 2))) == Point(1, 2)
    assert f"{__name__}:Point" in ser.allowed_classes()
    saver = MemorySaver(serializer=ser)
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    cp = {"v": 4, "id": _core.new_checkpoint_id()[0], "ts": "", "channel_values": {"p": Point(3, 4)},
          "channel_versions": {"p": "1"}, "versions_seen": {}, "updated_channels": None}
    saver.put(config, cp, {}, {"p": "1"})
    assert saver.get_tuple(config).checkpoint["channel_values"]["p"] == Point(3, 4)
    # The process-wide allowed set (used by the SQL savers outside a graph) is extended with
    # serde.allow, a decorator too.

    @serde.allow
    @dataclass
    class Local:
        v: int

    assert serde.loads(serde.dumps(Local(5))) == Local(5)


def test_no_pickle_and_no_constructor_envelopes_are_executed_on_read():
    """CVE-2025-64439 (LangGraph's JSON-mode constructor envelope) and pickle payloads: a
    pickle is not JSON; LangChain's {"lc": ..., "type": "constructor"} envelope is plain data."""
    with pytest.raises(CorruptCheckpointError, match="not valid JSON"):
        _core.loads(pickle.dumps(Point(1, 2)))
    envelope = {"lc": 2, "type": "constructor", "id": ["os", "system"], "kwargs": {"command": "echo pwned"}}
    assert _core.loads(json.dumps(envelope)) == envelope
    for cls in ("os:system", "builtins:eval", "subprocess:Popen", "antigravity:x"):
        with pytest.raises(CorruptCheckpointError, match="not allowed"):
            _core.loads(json.dumps({"__fg__": "object", "cls": cls, "v": {}}))
    assert "antigravity" not in sys.modules
