"""The hand-written stubs of the extension (python/ferrograph/_core.pyi) match the built module."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_core_stub_matches_the_extension(tmp_path):
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ferrograph._core"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository, so mypy reads the installed package
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
