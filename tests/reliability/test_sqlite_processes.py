"""SQLite from several processes: six processes write one file at once, each from five threads
of its own: three run graphs on graph threads of their own (sharing one saver, so one
connection), one appends runs to the graph thread "common" that all six write, one steps the
graph thread "race" from the same checkpoint as the five others (a barrier holds each until all
six stand there).

No "database is locked" (or any other error) escapes: writers wait for each other within the
busy timeout (30 s). Concurrent writers to one graph thread are detected: of the six racers
exactly one wins and five get ConcurrentUpdateError, and a run on "common" either completes or
gets ConcurrentUpdateError; both threads' histories stay single chains.
"""

from __future__ import annotations

from reliability_processes import finish
from reliability_worker import LOAD_RUNS, LOAD_STEPS, RACE_STEPS
from test_concurrent_writers import assert_one_line, seed
from ferrograph.testing import open_saver

PROCESSES = 6


def test_six_processes_write_one_sqlite_file(tmp_path, workers):
    path = str(tmp_path / "checkpoints.db")
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    with open_saver("sqlite", path) as saver:
        seed(saver, "race")
        procs = [workers("load", "sqlite", path, "-", str(run_dir), str(PROCESSES)) for _ in range(PROCESSES)]
        reports = []
        for proc in procs:
            status, report, err = finish(proc, timeout=300)
            assert status == 0, err
            reports.append(report)
        assert [r["errors"] for r in reports] == [[]] * PROCESSES
        assert sorted(r["race"] for r in reports) == ["conflict"] * (PROCESSES - 1) + ["won"]
        assert all(r["own"] == 3 * LOAD_RUNS for r in reports)
        assert all(r["common"] + r["conflicts"] == LOAD_RUNS for r in reports)

        own = {t.config["configurable"]["thread_id"] for t in saver.list(None)} - {"race", "common"}
        assert len(own) == PROCESSES * 3 * LOAD_RUNS
        for thread in own:
            latest = saver.get_tuple({"configurable": {"thread_id": thread}})
            assert latest.checkpoint["channel_values"] == {"n": LOAD_STEPS, "seen": list(range(LOAD_STEPS))}
        race = assert_one_line(saver, "race")
        assert race[-1].checkpoint["channel_values"]["count"] == RACE_STEPS
        common = assert_one_line(saver, "common")
        completed = sum(r["common"] for r in reports)
        assert completed >= 1
        # Each completed run on "common" stored its input checkpoint and LOAD_STEPS + 1 steps;
        # a run refused part-way left what it stored before, on the same line.
        assert len(common) >= completed * (LOAD_STEPS + 2)
