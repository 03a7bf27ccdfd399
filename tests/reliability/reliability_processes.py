"""Shared helpers of the reliability tests: the conn string of a saver kind for a test, and
running reliability_worker.py in another process (always bounded in time). A module of its own
name, not conftest.py: `from conftest import ...` finds whichever conftest was imported last
when several test folders run together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

WORKER = Path(__file__).with_name("reliability_worker.py")
#: The longest a worker process may live (seconds); it is killed after that.
PROCESS_TIMEOUT = 90.0


def conn_string(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    """A fresh database of `kind`: a SQLite file under tmp_path, or the plugin's per-test
    Postgres database (the test skips, saying why, when no Postgres is reachable)."""
    if kind == "sqlite":
        return str(tmp_path / "checkpoints.db")
    return request.getfixturevalue("ferrograph_postgres_url")


def start_worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def finish(proc: subprocess.Popen, timeout: float = PROCESS_TIMEOUT) -> tuple[int, Optional[dict], str]:
    """Wait for a worker (killing it after `timeout`): its exit status, its JSON report (the
    last line of stdout, if any) and its stderr."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"worker {proc.args} did not finish in {timeout:.0f}s; stderr:\n{err}")
    lines = [line for line in out.splitlines() if line.strip()]
    report: Any = json.loads(lines[-1]) if lines else None
    return proc.returncode, report, err


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL a worker and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


