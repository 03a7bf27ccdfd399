"""The pytest plugin's `ferrograph_postgres_url` fixture, run in a pytester session: the server
comes from FERROGRAPH_TEST_POSTGRES_URL, each test gets its own database which is dropped
afterwards, and without a URL or a Docker engine the test is skipped with the reason."""

from __future__ import annotations

import os

import pytest

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


def test_a_fresh_database_per_test_dropped_afterwards(pytester, ferrograph_postgres_server):
    import psycopg

    pytester.makeini(INI)
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    names = (pytester.path / "names.txt").read_text().split()
    assert len(set(names)) == 2
    with psycopg.connect(ferrograph_postgres_server) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,)).fetchall()
    assert left == []


def test_skips_with_the_reason_without_url_or_docker(pytester, monkeypatch):
    from ferrograph.testing import plugin

    monkeypatch.delenv("FERROGRAPH_TEST_POSTGRES_URL", raising=False)
    monkeypatch.setattr(plugin, "_docker_unavailable", lambda: "no Docker engine answers (test)")
    pytester.makeini(INI)
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*FERROGRAPH_TEST_POSTGRES_URL or a Docker engine*no Docker engine answers (test)*"])


def test_the_plugin_is_inert_unless_used(pytester, monkeypatch):
    monkeypatch.delenv("FERROGRAPH_TEST_POSTGRES_URL", raising=False)
    pytester.makeini(INI)
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_with_database_rewrites_urls_and_dsns():
    from ferrograph.testing.plugin import with_database

    assert with_database("postgresql://u:p@h:5/test?sslmode=disable", "x") == "postgresql://u:p@h:5/x?sslmode=disable"
    assert "dbname=x" in with_database("host=h user=u dbname=test", "x")


@pytest.mark.skipif(not os.environ.get("FERROGRAPH_TEST_POSTGRES_URL"), reason="needs FERROGRAPH_TEST_POSTGRES_URL")
def test_ci_runs_postgres_for_real(ferrograph_postgres_url):
    assert ferrograph_postgres_url.startswith("postgresql://")
