"""`ferrograph.inspect.diff` on every saver: per channel added, removed, changed and appended,
the pending writes between two checkpoints (`ferrograph diff`: tests/cli/test_diff.py)."""

from __future__ import annotations

import json

import pytest
from test_retention import build, cfg

from ferrograph.errors import FerrographError
from ferrograph.inspect import diff


async def test_diff_between_two_checkpoints(every_saver):
    s = every_saver
    h = await build(s)
    saver = s.saver

    def call(a, b):
        if s.is_async:  # the async savers' sync methods run on their loop from another thread
            import asyncio

            return asyncio.to_thread(diff, saver, a, b)
        return _done(diff(saver, a, b))

    d = await call(cfg("t", h.ids["c2"]), cfg("t", h.ids["c4"]))
    by_channel = {c.channel: c for c in d.channels}
    assert set(by_channel) == {"msgs", "n"}
    assert by_channel["n"].kind == "changed" and (by_channel["n"].before, by_channel["n"].after) == (2, 4)
    msgs = by_channel["msgs"]
    assert msgs.kind == "appended" and len(msgs.appended) == 5 and msgs.after[-5:] == msgs.appended
    assert d.a["checkpoint_id"] == h.ids["c2"] and d.b["checkpoint_id"] == h.ids["c4"]
    # c2 has no writes, c3 none; so nothing between c2 and c4 but c4's own are not "between".
    assert d.pending_writes == []
    d = await call(cfg("t", h.ids["c1"]), cfg("t", h.ids["c3"]))
    assert [(w["checkpoint_id"], w["channel"], w["value"]) for w in d.pending_writes] == [(h.ids["c1"], "n", 5)]

    d = await call(cfg("t", h.ids["c1"]), cfg("t", h.ids["f1"]))  # onto the branch
    by_channel = {c.channel: c for c in d.channels}
    assert by_channel["branch"].kind == "added" and by_channel["branch"].after == "f"
    d = await call(cfg("t", h.ids["f1"]), cfg("t", h.ids["c1"]))
    assert {c.channel: c.kind for c in d.channels}["branch"] == "removed"
    d = await call(cfg("t", h.ids["c4"]), cfg("t"))  # the latest is c4: nothing changed
    assert d.channels == [] and d.as_json()["channels"] == []
    with pytest.raises(FerrographError, match="checkpoint 'nope' of thread 't' not found"):
        await call(cfg("t", "nope"), cfg("t"))


async def _done(value):
    return value
