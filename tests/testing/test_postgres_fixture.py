"""The pytest plugin's Postgres fixtures, run in pytester sessions: the server comes from
FERROGRAPH_TEST_POSTGRES_URL or else from a container testcontainers starts once per session
(on the `ferrograph_postgres_image` ini option) and removes at its end, also after failed tests
and Ctrl-C; each test gets its own database, dropped afterwards; without a URL the test is
skipped with a reason naming what is missing (the package, the engine or the image)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import types

import pytest

from ferrograph.testing import plugin

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

USER_TEST = '''
import psycopg

def test_one(ferrograph_postgres_url):
    with psycopg.connect(ferrograph_postgres_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute("CREATE TABLE mine (x int)")
    with open("names.txt", "a") as f:
        f.write(name + "\\n")

def test_two(ferrograph_postgres_url):
    with psycopg.connect(ferrograph_postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'mine'").fetchone()[0] == 0
        name = conn.execute("SELECT current_database()").fetchone()[0]
    with open("names.txt", "a") as f:
        f.write(name + "\\n")
'''


def test_a_fresh_database_per_test_dropped_afterwards(pytester, postgres_server):
    import psycopg

    pytester.makeini(INI)
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    names = (pytester.path / "names.txt").read_text().split()
    assert len(set(names)) == 2
    with psycopg.connect(postgres_server) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,)).fetchall()
    assert left == []


def test_skips_with_the_reason_without_url_or_docker(pytester, monkeypatch):
    asked = []

    def unavailable(image):
        asked.append(image)
        return "no Docker engine answers (test)"

    monkeypatch.delenv("FERROGRAPH_TEST_POSTGRES_URL", raising=False)
    monkeypatch.setattr(plugin, "_testcontainers_unavailable", unavailable)
    pytester.makeini(INI + "ferrograph_postgres_image = example.org/pg:15\n")
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*FERROGRAPH_TEST_POSTGRES_URL, or testcontainers with a Docker engine: no Docker engine answers (test)*"])
    assert asked == ["example.org/pg:15"]  # once per session, with the ini's image


def test_the_plugin_is_inert_unless_used(pytester, monkeypatch):
    monkeypatch.delenv("FERROGRAPH_TEST_POSTGRES_URL", raising=False)
    monkeypatch.setattr(plugin, "_testcontainers_unavailable", lambda image: pytest.fail("Docker was asked"))
    pytester.makeini(INI)
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_with_database_rewrites_urls_and_dsns():
    from ferrograph.testing.plugin import with_database

    assert with_database("postgresql://u:p@h:5/test?sslmode=disable", "x") == "postgresql://u:p@h:5/x?sslmode=disable"
    assert "dbname=x" in with_database("host=h user=u dbname=test", "x")


# ---- why testcontainers cannot run, named

# An image of a registry on a closed loopback port: pulling it fails at once, and the tests send
# nothing off the machine.
ABSENT_IMAGE = "127.0.0.1:9/ferrograph/absent:1"


def test_a_missing_testcontainers_package_is_named(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "testcontainers"] + ["testcontainers"]:
        monkeypatch.setitem(sys.modules, name, None)
    reason = plugin._testcontainers_unavailable(ABSENT_IMAGE)
    assert reason is not None and reason.startswith("testcontainers is not installed (no module testcontainers")
    assert "ferrograph[testing]" in reason


def test_the_community_module_is_preferred(recwarn):
    community = pytest.importorskip("testcontainers.community.postgres")
    assert plugin._postgres_container_class() is community.PostgresContainer
    assert [w for w in recwarn if issubclass(w.category, DeprecationWarning)] == []


def test_before_4_15_the_old_module_is_used(monkeypatch):
    # testcontainers before 4.15 has only `testcontainers.postgres` (since 4.15 a deprecated
    # alias of the community module).
    old_path = types.ModuleType("testcontainers.postgres")
    old_path.PostgresContainer = type("PostgresContainer", (), {})
    monkeypatch.setitem(sys.modules, "testcontainers.community.postgres", None)
    monkeypatch.setitem(sys.modules, "testcontainers.postgres", old_path)
    assert plugin._postgres_container_class() is old_path.PostgresContainer


def test_no_engine_is_named(monkeypatch, tmp_path):
    pytest.importorskip("testcontainers")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    reason = plugin._testcontainers_unavailable(ABSENT_IMAGE)
    assert reason is not None and reason.startswith("no Docker engine answers ("), reason


def test_an_image_that_cannot_be_pulled_is_named_with_the_hint(postgres_image):
    image = ABSENT_IMAGE
    reason = plugin._testcontainers_unavailable(image)
    assert reason is not None, "the pull should have failed"
    assert reason.startswith(f"the image {image} is not on this machine and cannot be pulled ("), reason
    assert reason.endswith(plugin.LOCAL_IMAGE_HINT)
    assert "scripts/postgres-image.sh" in reason and "ferrograph_postgres_image = ferrograph-postgres:15" in reason
    assert plugin._testcontainers_unavailable(postgres_image) is None


# ---- the container: one per session, removed at its end


SESSION_TEST = '''
import json, os, time

import docker
import psycopg


def record(url):
    """This process's containers (by the plugin's label) and the server's version."""
    client = docker.from_env()
    try:
        found = client.containers.list(all=True, filters={"label": "org.ferrograph.testing.pid=%d" % os.getpid()})
    finally:
        client.close()
    with psycopg.connect(url) as conn:
        version = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    with open("seen.jsonl", "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "containers": [c.id for c in found], "version": version}) + "\\n")


def test_one(ferrograph_postgres_url):
    record(ferrograph_postgres_url)


def test_two_fails(ferrograph_postgres_url):
    record(ferrograph_postgres_url)
    assert False, "this session fails"


def test_waits_for_ctrl_c(ferrograph_postgres_url):
    record(ferrograph_postgres_url)
    open("ready", "w").close()
    time.sleep(300)
'''


def containers_of(pid: int) -> list[str]:
    """The containers the plugin started in process `pid` that still exist."""
    import docker

    client = docker.from_env()
    try:
        return [c.id for c in client.containers.list(all=True, filters={"label": f"{plugin.PID_LABEL}={pid}"})]
    finally:
        client.close()


def seen(pytester) -> list[dict]:
    return [json.loads(line) for line in (pytester.path / "seen.jsonl").read_text().splitlines()]


def expected_major(image: str) -> int | None:
    """The Postgres major version an image's tag names (ferrograph-postgres:15, postgres:16-alpine)."""
    match = re.search(r":(\d+)", image.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


def test_one_container_per_session_removed_after_a_failed_session(pytester, postgres_image):
    pytester.makeini(INI)
    pytester.makepyfile(SESSION_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", f"ferrograph_postgres_image={postgres_image}", "-k", "not ctrl_c"
    )
    result.assert_outcomes(passed=1, failed=1)
    records = seen(pytester)
    assert len(records) == 2
    assert len(records[0]["containers"]) == 1 and records[1]["containers"] == records[0]["containers"]
    assert records[0]["pid"] == records[1]["pid"]
    if expected_major(postgres_image) is not None:
        assert records[0]["version"] == expected_major(postgres_image)
    assert containers_of(records[0]["pid"]) == []


def test_the_container_is_removed_after_ctrl_c(pytester, postgres_image):
    pytester.makeini(INI)
    pytester.makepyfile(SESSION_TEST)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", f"ferrograph_postgres_image={postgres_image}",
         "-k", "ctrl_c"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (pytester.path / "ready").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the container did not start within 240 s"
            time.sleep(0.2)
        assert containers_of(proc.pid) == seen(pytester)[0]["containers"] != []
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output, output
    assert containers_of(proc.pid) == []


def test_the_session_server_answers(ferrograph_postgres_url, pytestconfig):
    """Wherever the server comes from (URL or container), a test's database is there to use."""
    import psycopg

    with psycopg.connect(ferrograph_postgres_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0].startswith("ferrograph_test_")
        major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    if not os.environ.get("FERROGRAPH_TEST_POSTGRES_URL"):  # a container: of the configured image
        image = pytestconfig.getini("ferrograph_postgres_image")
        assert expected_major(image) in (None, major)
