"""`storage_stats` on every saver: counts and bytes that agree with what the saver returns, per
channel and per thread, the activity span, append-delta chains; no value is read."""

from __future__ import annotations

from test_retention import ALL, build, cfg


async def test_stats_agree_with_the_saver(every_saver):
    s = every_saver
    h = await build(s)
    tuples = await s.list(None)
    stats = await s.storage_stats()
    assert stats.threads == 2 and stats.checkpoints == len(ALL) == len(tuples)
    assert stats.writes == sum(len(t.pending_writes) for t in tuples) == 4
    assert stats.bytes == stats.checkpoint_bytes + stats.value_bytes + stats.write_bytes
    assert stats.value_bytes > 20 * 20  # "retention " * 20 at least
    timestamps = sorted(t.checkpoint["ts"] for t in tuples)
    assert (stats.oldest_activity, stats.newest_activity) == (timestamps[0], timestamps[-1])
    channels = {c.channel: c for c in stats.channels}
    assert set(channels) == {"topic", "msgs", "n", "branch", "inner"}
    # One version; the SQL savers hold a small value in every checkpoint row that carries it
    # (c0..c4 and f1), the memory saver once.
    assert channels["topic"].values in (1, 6) and channels["topic"].value_bytes >= channels["topic"].values * 200
    assert channels["n"].writes == 2 and channels["msgs"].writes == 1 and channels["inner"].writes == 1
    assert [t.thread_id for t in stats.largest_threads] == ["t", "u"]
    t_usage = stats.largest_threads[0]
    assert (t_usage.checkpoints, t_usage.writes) == (10, 4)
    assert t_usage.bytes > stats.largest_threads[1].bytes

    one = await s.storage_stats("u", largest=1)
    assert (one.threads, one.checkpoints, one.writes, one.thread_id) == (1, 2, 0, "u")
    assert [t.thread_id for t in one.largest_threads] == ["u"]
    assert one.bytes == stats.largest_threads[1].bytes
    none = await s.storage_stats("nobody")
    assert (none.threads, none.checkpoints, none.bytes) == (0, 0, 0)
    if s.saver.dialect.name if hasattr(s.saver, "dialect") else False:
        assert stats.database_bytes > 0
        # msgs grows every step: once too big for the checkpoint rows, stored as append deltas
        # over a snapshot.
        assert sum(stats.chains.values()) >= 1 and min(stats.chains) == 1
    else:
        assert stats.database_bytes is None and stats.chains == {}
    assert h.ids["c4"] in {t.config["configurable"]["checkpoint_id"] for t in tuples}


async def test_stats_read_no_value(tmp_path):
    """A value row that cannot be decoded does not disturb the statistics: they never read one."""
    import sqlite3

    from ferrograph.checkpointers import SqliteSaver
    from sql_savers import SaverDriver

    path = str(tmp_path / "c.db")
    with SqliteSaver.from_conn_string(path) as saver:
        await build(SaverDriver(saver, is_async=False))
        before = {c.channel: c.value_bytes for c in saver.storage_stats().channels}["msgs"]
    conn = sqlite3.connect(path)
    rows, row_bytes = conn.execute("SELECT count(*), sum(length(blob)) FROM ferrograph_checkpoint_blobs WHERE channel = 'msgs'").fetchone()
    assert rows >= 2
    conn.execute("UPDATE ferrograph_checkpoint_blobs SET blob = X'00FF00' WHERE channel = 'msgs'")
    conn.execute("UPDATE ferrograph_checkpoint_writes SET blob = X'00FF' WHERE channel = 'n'")
    conn.commit()
    conn.close()
    with SqliteSaver.from_conn_string(path) as saver:
        stats = saver.storage_stats()
        assert stats.checkpoints == len(ALL)
        # The copies of msgs held in checkpoint rows (while it was short) are unchanged.
        assert {c.channel: c.value_bytes for c in stats.channels}["msgs"] == before - row_bytes + 3 * rows
        assert saver.get_tuple(cfg("u")) is not None
