"""The example test file of the README ("Testing your graphs"), run as a user would: written
into an empty project directory and run there by `python -m pytest` in a subprocess, with only
the installed ferrograph package (its pytest plugin found through the `pytest11` entry point).
The file is read from the doc's code block, so the doc and this test cannot drift apart.

Where Postgres can be had (FERROGRAPH_TEST_POSTGRES_URL is set, as in `make test`, or
testcontainers can start the configured image, as in `make test-containers`, which the project is
given with `-o ferrograph_postgres_image=...`), the `[postgres]` cases must run and pass, not skip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ferrograph.testing import plugin

DOC = Path(__file__).resolve().parents[2] / "README.md"
ENV_URL = "FERROGRAPH_TEST_POSTGRES_URL"


def example_test_file() -> tuple[str, str]:
    """(file name, source) of the doc's ```python block whose first line is `# test_*.py`."""
    for block in re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M):
        first = block.splitlines()[0]
        match = re.fullmatch(r"# (test_\w+\.py)", first.strip())
        if match:
            return match.group(1), block
    raise AssertionError(f"{DOC} has no ```python block starting with '# test_<name>.py'")


def outcomes(stdout: str) -> dict[str, str]:
    """Test id -> PASSED/FAILED/SKIPPED/ERROR, from `pytest -v` output."""
    return dict(re.findall(r"^\S+::(\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b", stdout, flags=re.M))


def test_the_docs_example_passes_in_a_fresh_project(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    image = pytestconfig.getini("ferrograph_postgres_image")
    postgres_ready = bool(os.environ.get(ENV_URL)) or plugin._testcontainers_unavailable(image) is None
    name, source = example_test_file()
    project = tmp_path / "project"
    project.mkdir()
    (project / name).write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", "-o", f"ferrograph_postgres_image={image}", name],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report
    seen = outcomes(result.stdout)
    assert seen, report
    assert "FAILED" not in seen.values() and "ERROR" not in seen.values(), report
    kinds = {re.search(r"\[(\w+)\]$", test_id).group(1) for test_id in seen if test_id.endswith("]")}
    assert {"memory", "sqlite", "postgres"} <= kinds, report
    postgres = {t: s for t, s in seen.items() if t.endswith("[postgres]")}
    others = {t: s for t, s in seen.items() if t not in postgres}
    assert set(others.values()) == {"PASSED"}, report
    assert set(postgres.values()) == {"PASSED" if postgres_ready else "SKIPPED"}, report
