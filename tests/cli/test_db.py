"""`ferrograph db upgrade|downgrade|current|history URL [--sql]` on SQLite and Postgres."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ferrograph.cli import main
from ferrograph.migrations import head_revision


@pytest.fixture(params=["sqlite", "sqlite-url", "postgres"])
def url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("ferrograph_postgres_url")
    if request.param == "sqlite-url":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return str(tmp_path / "db.sqlite")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_upgrade_current_history_downgrade(url, capsys):
    assert run(capsys, "db", "current", url)[:2] == (0, "none (no ferrograph schema)\n")
    assert run(capsys, "db", "upgrade", url, "0001")[0] == 0
    assert run(capsys, "db", "current", url)[:2] == (0, "0001\n")
    assert run(capsys, "db", "upgrade", url)[0] == 0
    assert run(capsys, "db", "current", url)[:2] == (0, f"{head_revision()} (head)\n")
    assert run(capsys, "db", "upgrade", url)[0] == 0  # already there: nothing to do
    code, out, _ = run(capsys, "db", "history", url)
    assert code == 0
    assert f"-> {head_revision()} (head, current)" in out
    assert "<base> -> 0001," in out
    assert run(capsys, "db", "downgrade", url, "0001")[0] == 0
    assert run(capsys, "db", "current", url)[1] == "0001\n"
    assert run(capsys, "db", "downgrade", url, "base")[0] == 0
    assert run(capsys, "db", "current", url)[1] == "none (no ferrograph schema)\n"


def test_sql_prints_instead_of_running(url, capsys):
    code, out, _ = run(capsys, "db", "upgrade", url, "--sql")
    assert code == 0
    assert "CREATE TABLE ferrograph_checkpoints" in out
    assert "CREATE TABLE ferrograph_alembic_version" in out
    assert run(capsys, "db", "current", url)[1] == "none (no ferrograph schema)\n"
    if not url.startswith("postgresql"):
        # Reading the revision of a file that does not exist does not create it.
        assert not os.path.exists(url.removeprefix("sqlite:///"))

    assert run(capsys, "db", "upgrade", url, "0001")[0] == 0
    code, out, _ = run(capsys, "db", "upgrade", url, "--sql")
    assert code == 0
    assert "CREATE TABLE ferrograph_checkpoints" not in out  # only what the database misses
    assert "ADD COLUMN run_id" in out
    assert run(capsys, "db", "current", url)[1] == "0001\n"

    assert run(capsys, "db", "upgrade", url)[0] == 0
    code, out, _ = run(capsys, "db", "downgrade", url, "0001", "--sql")
    assert code == 0
    assert "DROP COLUMN run_id" in out
    assert run(capsys, "db", "current", url)[1] == f"{head_revision()} (head)\n"


def test_jsonb_on_postgres(ferrograph_postgres_url, capsys):
    code, out, _ = run(capsys, "db", "upgrade", ferrograph_postgres_url, "--sql")
    assert code == 0 and "metadata JSONB NOT NULL" in out


def test_errors_are_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "db", "upgrade", "mysql://nope")
    assert code == 1
    assert err.startswith("ferrograph: error:") and "unsupported database URL" in err
    code, _, err = run(capsys, "db", "downgrade", str(tmp_path / "empty.db"), "base", "--sql")
    assert code == 1 and "no ferrograph schema" in err


def test_usage():
    with pytest.raises(SystemExit) as exit_info:
        main(["db"])
    assert exit_info.value.code == 2


def test_the_installed_console_script(tmp_path):
    script = shutil.which("ferrograph", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the ferrograph console script is not installed next to this Python")
    db = str(tmp_path / "script.db")
    done = subprocess.run([script, "db", "upgrade", db], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([script, "db", "current", db], capture_output=True, text=True, timeout=120)
    assert done.stdout == f"{head_revision()} (head)\n"
