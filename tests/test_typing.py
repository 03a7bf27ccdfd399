"""The package type-checks: mypy reports no errors in python/ferrograph (configured in
pyproject.toml's [tool.mypy])."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ERROR = re.compile(r"^(?P<path>[^:\n]+):\d+(?::\d+)?: error: ", re.MULTILINE)


def test_the_package_type_checks(tmp_path):
    pytest.importorskip("mypy")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            "--no-error-summary",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,  # [tool.mypy] names the files, relative to the repository
        timeout=300,
    )
    output = result.stdout + result.stderr
    # 0: clean; 1: errors; anything else: mypy itself failed.
    assert result.returncode == 0 and not ERROR.search(result.stdout), output
