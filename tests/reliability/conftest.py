"""The reliability tests' fixtures; their helpers are in reliability_processes.py."""

from __future__ import annotations

import subprocess

import pytest

from reliability_processes import start_worker


@pytest.fixture
def workers():
    """Worker processes started by a test; any still running when it ends are killed."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = start_worker(*args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
