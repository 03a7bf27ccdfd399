"""`ferrograph copy URL_FROM URL_TO [--thread T]`: SQLite to Postgres and back, every checkpoint,
parent link, metadata, channel version and pending write checked value by value; idempotent and
resumable."""

from __future__ import annotations

import json
import subprocess

import pytest
from cli_helpers import THREADS, console_script, fill, normalized, run

from ferrograph._transfer import copy_thread
from ferrograph.checkpointers import open_saver
from ferrograph.demo import build


@pytest.fixture(params=["sqlite->sqlite", "sqlite->postgres", "postgres->sqlite"])
def urls(request, tmp_path):
    """(source, destination): the source filled by `fill`, the destination empty."""
    src_kind, dst_kind = request.param.split("->")
    pg = request.getfixturevalue("ferrograph_postgres_url") if "postgres" in request.param else None
    src = pg if src_kind == "postgres" else str(tmp_path / "from.db")
    dst = pg if dst_kind == "postgres" else f"sqlite:///{tmp_path / 'to.db'}"
    return src, dst, fill(src)


def test_copy_everything_value_by_value_then_nothing_twice(urls, capsys):
    src, dst, facts = urls
    code, out, err = run(capsys, "copy", src, dst, "--json")
    assert code == 0, err
    with open_saver(src, create=False) as a, open_saver(dst, create=False) as b:
        expected = normalized(a)
        assert normalized(b) == expected
        total_writes = sum(len(r["pending_writes"]) for r in expected)
    assert json.loads(out) == {
        "threads": 5,
        "checkpoints_copied": len(expected),
        "checkpoints_skipped": 0,
        "writes_copied": total_writes,
    }
    # The fork keeps its parent link, and the special writes (error, interrupt) came along.
    fork = next(r for r in expected if r["checkpoint_id"] == facts["fork"])
    assert fork["parent"] == facts["fork_parent"] and fork["metadata"]["source"] == "update"
    channels = {w[1] for r in expected for w in r["pending_writes"]}
    assert {"__error__", "__interrupt__"} <= channels

    code, out, _ = run(capsys, "copy", src, dst, "--json")
    assert json.loads(out) == {"threads": 5, "checkpoints_copied": 0, "checkpoints_skipped": len(expected), "writes_copied": 0}
    with open_saver(dst, create=False) as b:
        assert normalized(b) == expected

    code, out, _ = run(capsys, "copy", src, dst)
    assert code == 0 and "copied 5 threads: 0 checkpoints" in out


def test_copied_thread_runs_on(urls, capsys):
    """A copied thread is a working thread: time travel from the destination."""
    src, dst, facts = urls
    assert run(capsys, "copy", src, dst, "--thread", "agent-1")[0] == 0
    with open_saver(dst, create=False) as saver:
        assert {r["thread_id"] for r in normalized(saver)} == {"agent-1"}
        app = build(checkpointer=saver)
        config = {"configurable": {"thread_id": "agent-1"}}
        latest = app.get_state(config)
        assert latest.values["questions"] == ["What is rust?"]
        # Replay the original branch's fork point with other questions: a second fork.
        fork_parent = {"configurable": {"thread_id": "agent-1", "checkpoint_id": facts["fork_parent"]}}
        again = app.update_state(fork_parent, {"questions": ["What is send?"]}, as_node="plan")
        final = app.invoke(None, again)
        assert final["findings"][0].startswith("What is send?")


def test_resumes_after_an_interruption(urls, capsys):
    src, dst, _ = urls

    class Interrupted(Exception):
        pass

    with open_saver(src, create=False) as a, open_saver(dst) as b:
        calls = {"n": 0}
        real_put_writes = b.put_writes

        def flaky_put_writes(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 7:  # stop between a checkpoint and its writes
                raise Interrupted()
            return real_put_writes(*args, **kwargs)

        b.put_writes = flaky_put_writes  # type: ignore[method-assign]
        with pytest.raises(Interrupted):
            copy_thread(a, b, "agent-1")
        partial = normalized(b, "agent-1")
        assert 0 < len(partial) < len(normalized(a, "agent-1"))

    code, out, err = run(capsys, "copy", src, dst, "--thread", "agent-1", "--json")
    assert code == 0, err
    stats = json.loads(out)
    assert stats["checkpoints_skipped"] == len(partial) and stats["checkpoints_copied"] == 14 - len(partial)
    with open_saver(src, create=False) as a, open_saver(dst, create=False) as b:
        assert normalized(b) == normalized(a, "agent-1")


def test_copy_a_pruned_thread(urls, capsys):
    """After pruning, the latest checkpoint's parent is gone: it is copied with all its values
    and its (dangling) parent link."""
    src, dst, _ = urls
    assert run(capsys, "prune", src, "--keep-latest", "--thread", "agent-1")[0] == 0
    assert run(capsys, "copy", src, dst, "--thread", "agent-1")[0] == 0
    with open_saver(src, create=False) as a, open_saver(dst, create=False) as b:
        expected = normalized(a, "agent-1")
        assert len(expected) == 1 and expected[0]["parent"]
        assert normalized(b, "agent-1") == expected
        assert expected[0]["checkpoint"]["channel_values"]["report"].startswith("# Report")


def test_errors(tmp_path, capsys):
    src = str(tmp_path / "from.db")
    fill(src)
    code, _, err = run(capsys, "copy", src, str(tmp_path / "to.db"), "--thread", "nope")
    assert code == 1 and "thread 'nope' has no checkpoints at the source" in err
    code, _, err = run(capsys, "copy", str(tmp_path / "missing.db"), str(tmp_path / "to.db"))
    assert code == 1 and "no such SQLite database" in err
    code, _, err = run(capsys, "copy", src, "mysql://x/y")
    assert code == 1 and "unsupported saver URL" in err
    code, _, err = run(capsys, "copy", src, str(tmp_path / "no" / "dir" / "to.db"))
    assert code == 1 and "no such directory" in err


def test_console_script_copy(tmp_path, ferrograph_postgres_url):
    """The installed console script, SQLite to Postgres and back again."""
    src = str(tmp_path / "from.db")
    back = str(tmp_path / "back.db")
    fill(src)
    exe = console_script()
    for a, b in ((src, ferrograph_postgres_url), (ferrograph_postgres_url, back)):
        done = subprocess.run([*exe, "copy", a, b, "--json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["threads"] == len(THREADS)
    with open_saver(src, create=False) as a, open_saver(back, create=False) as b:
        assert normalized(b) == normalized(a)
