"""The durability contract under SIGKILL at random instants, per durability mode, on SQLite and
Postgres (the README's "Reliability" section states it).

A fork server (fault_worker.py) runs an 8-round graph (each round a parallel step `left | right`
and a `join` step) on a thread; the test kills the run with SIGKILL after a random delay
(uniform over one uninterrupted run's wall time, widened when five kills in a row on one
thread came before the end), checks what the database holds, and starts the
thread again (from its input when nothing is stored, else `invoke(None, config)`), until a run
gets to the end; then a new thread. KILLS kill points per test, runs alternating between
`invoke` and `ainvoke`. After each kill (on Postgres, once the killed run's server sessions have
ended: a COMMIT the run sent before it died still lands after its death):

- every stored checkpoint reads back (nothing half written), its `log` and `tally` agree (the two
  channels every node writes together), each checkpoint's log extends its parent's;
- the latest checkpoint's pending writes hold, for each task, its `log` and its `tally` write
  once each (a task's writes are all there or none);

and when the thread ends:

- no node whose work was stored at a kill (in a checkpoint or as a pending write) ran again
  after it (nodes append every run to an effects file, which survives the kill);
- the final state equals an uninterrupted run's: every node's entry exactly once.

The random delays come from a seed printed on failure (FERROGRAPH_FAULT_SEED sets it).
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from reliability_processes import conn_string
from ferrograph.testing import open_saver

WORKER = Path(__file__).with_name("fault_worker.py")
#: Kill points per test (per saver kind and durability mode).
KILLS = 50
SEED = int(os.environ.get("FERROGRAPH_FAULT_SEED", "1717"))


class ForkServer:
    """fault_worker.py, spoken to one JSON line at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def ask(self, command: dict) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server():
    s = ForkServer()
    yield s
    s.close()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


#: The application_name of the runs' Postgres sessions, found in pg_stat_activity after a kill.
WORKER_SESSIONS = "ferrograph-fault-worker"


def worker_conn(kind: str, conn: str) -> str:
    """What the runs connect with: on Postgres, sessions named so that a kill can wait for them."""
    if kind != "postgres":
        return conn
    return f"{conn}{'&' if '?' in conn else '?'}application_name={WORKER_SESSIONS}"


def wait_for_sessions_to_end(kind: str, conn: str, timeout: float = 30.0) -> None:
    """Waits until no session of a killed run is left on the server. Killing a client does not
    stop what its session was doing: the server still runs (and commits) what the client sent
    before it died, and only then sees the closed socket."""
    if kind != "postgres":
        return
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(conn, autocommit=True) as c:
        while True:
            row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
                            (WORKER_SESSIONS,)).fetchone()
            if not row or row[0] == 0:
                return
            assert time.monotonic() < deadline, f"a killed run's Postgres session still runs after {timeout}s"
            time.sleep(0.01)


class Thread:
    """One thread of the test: its runs, the kill points it met, what was stored at each."""

    def __init__(self, tmp: Path, number: int, kind: str, conn: str, durability: str) -> None:
        self.name = f"t{number}"
        self.effects = tmp / f"{self.name}.effects"
        self.command = {
            "kind": kind,
            "conn": worker_conn(kind, conn),
            "thread": self.name,
            "durability": durability,
            "driver": "ainvoke" if number % 2 else "invoke",
            "effects": str(self.effects),
        }
        self.tmp = tmp
        self.runs = 0
        #: Per kill: the tags of the runs started before it, and the entries stored at it.
        self.kills: list[tuple[set[str], set[str]]] = []
        self.final: Optional[dict] = None

    def start(self, server: ForkServer) -> tuple[int, Path]:
        self.runs += 1
        tag = f"{self.name}.{self.runs}"
        report = self.tmp / f"{tag}.json"
        return server.ask({**self.command, "tag": tag, "report": str(report)}), report

    def tags(self) -> set[str]:
        return {f"{self.name}.{i}" for i in range(1, self.runs + 1)}

    def effects_by_tag(self) -> list[tuple[str, str]]:
        if not self.effects.exists():
            return []
        return [tuple(line.split()) for line in self.effects.read_text().splitlines()]  # type: ignore[misc]


def check_stored(saver: Any, thread: str) -> set[str]:
    """The thread's stored history is whole; the entries of the node runs it holds."""
    config = {"configurable": {"thread_id": thread}}
    history = list(saver.list(config))  # every checkpoint decodes
    ids = {t.config["configurable"]["checkpoint_id"] for t in history}
    by_id = {t.config["configurable"]["checkpoint_id"]: t for t in history}
    for t in history:
        values = t.checkpoint["channel_values"]
        log = values.get("log", [])
        assert values.get("tally", 0) == len(log), f"half a step in checkpoint {t.metadata}: {values}"
        assert len(set(log)) == len(log), f"a node's entry twice in {t.metadata}: {log}"
        parent = (t.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        if parent is not None:
            assert parent in ids, f"checkpoint {t.metadata} has a parent that is not stored"
            assert log[: len(by_id[parent].checkpoint["channel_values"].get("log", []))] == by_id[parent].checkpoint[
                "channel_values"
            ].get("log", []), "a checkpoint's log does not extend its parent's"
    if not history:
        return set()
    latest = saver.get_tuple(config)
    assert latest is not None and latest.config["configurable"]["checkpoint_id"] == history[0].config["configurable"]["checkpoint_id"]
    per_task: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    pending: set[str] = set()
    for task_id, channel, value in latest.pending_writes:
        per_task[task_id][channel] += 1
        if channel == "log":
            pending.update(value)
    for task_id, channels in per_task.items():
        if "log" in channels or "tally" in channels:
            assert channels["log"] == 1 and channels["tally"] == 1, f"task {task_id} half written: {dict(channels)}"
    return set(latest.checkpoint["channel_values"].get("log", [])) | pending


def check_effects(thread: Thread) -> None:
    """No node whose run was stored at a kill ran again after it."""
    effects = thread.effects_by_tag()
    for before, stored in thread.kills:
        again = sorted(entry for entry, tag in effects if tag not in before and entry in stored)
        assert not again, f"{thread.name}: stored at a kill, yet run again after it: {again}"


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_runs_killed_at_random_instants_keep_the_durability_contract(kind, durability, request, tmp_path, server):
    conn = conn_string(request, kind, tmp_path)
    rng = random.Random(f"{SEED}-{kind}-{durability}")
    with open_saver(kind, conn) as saver:  # creates the tables the runs use
        reference = tmp_path / "reference.json"
        assert server.ask({"wait": server.ask({"reference": str(reference)})}) == 0
        expected = read_json(reference)["state"]

        # One uninterrupted run sets the span the kill instants are drawn from.
        calibration = Thread(tmp_path, 0, kind, conn, durability)
        began = time.perf_counter()
        pid, report = calibration.start(server)
        assert server.ask({"wait": pid}) == 0
        span = time.perf_counter() - began
        assert read_json(report)["state"] == expected

        kills = 0
        threads: list[Thread] = []
        while kills < KILLS:
            thread = Thread(tmp_path, len(threads) + 1, kind, conn, durability)
            threads.append(thread)
            while True:
                pid, report = thread.start(server)
                time.sleep(rng.uniform(0, span))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                status = server.ask({"wait": pid})
                if status == 0:
                    thread.final = read_json(report)["state"]
                    break
                assert status == -signal.SIGKILL, f"run {thread.runs} of {thread.name} failed (status {status}), seed {SEED}"
                wait_for_sessions_to_end(kind, conn)
                kills += 1
                if len(thread.kills) % 5 == 4:
                    # Runs slower than the calibration one would never be killed late: widen.
                    span *= 1.5
                thread.kills.append((thread.tags(), check_stored(saver, thread.name)))
                if kills >= KILLS:
                    # The last thread goes on to its end without being killed.
                    pid, report = thread.start(server)
                    assert server.ask({"wait": pid}) == 0
                    thread.final = read_json(report)["state"]
                    break

        for thread in threads:
            assert thread.final == expected, f"{thread.name} ended elsewhere (seed {SEED})"
            assert check_stored(saver, thread.name) == set(expected["log"])
            check_effects(thread)
            ran = collections.Counter(entry for entry, _tag in thread.effects_by_tag())
            assert set(ran) == set(expected["log"])
    print(f"{kind}/{durability}: {kills} kills over {len(threads)} threads, {sum(t.runs for t in threads)} runs, span {span:.3f}s")
