"""The plugin's `saver` and `async_saver` fixtures, run in pytester sessions: one case per kind
with readable ids, the right saver classes set up and closed afterwards, the set restricted by
the `ferrograph_savers` marker and ini option (unknown names are usage errors), Postgres cases
skipped with the reason when no server is reachable, and no clash with a project's own `saver`
fixture or parametrization."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
NO_POSTGRES = "ferrograph_savers = memory sqlite\n"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = run(pytester, "--collect-only", "-q", *args)
    return [line.split("::", 1)[1] for line in result.outlines if "::" in line]


def test_one_case_per_kind_with_readable_ids(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        def test_sync(saver): pass
        async def test_async(async_saver): pass
        def test_other(): pass
        """
    )
    assert collected(pytester) == [
        "test_sync[memory]",
        "test_sync[sqlite]",
        "test_sync[postgres]",
        "test_async[memory]",
        "test_async[sqlite]",
        "test_async[postgres]",
        "test_other",
    ]


def test_sync_savers_are_set_up_and_closed_afterwards(pytester, postgres_server):
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest
        from ferrograph.checkpointers.base import empty_checkpoint

        SEEN = {}

        def test_saver(saver, request):
            kind = request.node.callspec.params["saver"]
            config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
            saved = saver.put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
            assert saver.get_tuple(saved).config == saved  # the tables exist: set up
            SEEN[kind] = saver

        def test_after():
            assert [(k, type(s).__name__) for k, s in SEEN.items()] == [
                ("memory", "MemorySaver"), ("sqlite", "SqliteSaver"), ("postgres", "PostgresSaver")
            ]
            import sqlite3
            with pytest.raises(sqlite3.ProgrammingError):  # closed
                SEEN["sqlite"].conn.execute("SELECT 1")
            assert SEEN["postgres"].conn.closed
        """
    )
    run(pytester).assert_outcomes(passed=4)


def test_async_savers_are_set_up_and_closed_afterwards(pytester, postgres_server):
    pytester.makeini(INI + "asyncio_mode = auto\n")
    pytester.makepyfile(
        """
        from ferrograph.checkpointers.base import empty_checkpoint

        SEEN = {}

        async def test_saver(async_saver, request):
            kind = request.node.callspec.params["async_saver"]
            config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
            saved = await async_saver.aput(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
            assert (await async_saver.aget_tuple(saved)).config == saved
            SEEN[kind] = async_saver

        def test_after():
            assert [(k, type(s).__name__) for k, s in SEEN.items()] == [
                ("memory", "MemorySaver"), ("sqlite", "AsyncSqliteSaver"), ("postgres", "AsyncPostgresSaver")
            ]
            assert SEEN["postgres"].conn.closed
        """
    )
    run(pytester).assert_outcomes(passed=4)


def test_the_postgres_saver_gets_its_own_database_dropped_afterwards(pytester, postgres_server):
    import psycopg

    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ferrograph_savers("postgres")
        @pytest.mark.parametrize("n", [1, 2])
        def test_db(saver, n):
            with open("names.txt", "a") as f:
                f.write(saver.conn.info.dbname + "\\n")
        """
    )
    run(pytester).assert_outcomes(passed=2)
    names = (pytester.path / "names.txt").read_text().split()
    assert len(set(names)) == 2 and all(n.startswith("ferrograph_test_") for n in names)
    with psycopg.connect(postgres_server) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,)).fetchall()
    assert left == []


def test_postgres_cases_skip_with_the_reason_without_url_or_docker(pytester, monkeypatch):
    from ferrograph.testing import plugin

    monkeypatch.delenv("FERROGRAPH_TEST_POSTGRES_URL", raising=False)
    monkeypatch.setattr(plugin, "_testcontainers_unavailable", lambda image: "no Docker engine answers (test)")
    pytester.makeini(INI)
    pytester.makepyfile("def test_sync(saver): pass\nasync def test_async(async_saver): pass\n")
    result = run(pytester, "-rs", "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=4, skipped=2)
    result.stdout.fnmatch_lines(["*FERROGRAPH_TEST_POSTGRES_URL, or testcontainers with a Docker engine: no Docker engine answers (test)*"])


def test_the_marker_restricts_the_kinds(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.ferrograph_savers("memory", "sqlite")

        def test_module(saver): pass

        @pytest.mark.ferrograph_savers("sqlite", "postgres")
        def test_function(saver): pass

        @pytest.mark.ferrograph_savers("postgres")
        class TestClass:
            def test_method(self, saver): pass
        """
    )
    assert collected(pytester) == [
        "test_module[memory]",
        "test_module[sqlite]",
        "test_function[sqlite]",
        "test_function[postgres]",
        "TestClass::test_method[postgres]",
    ]


def test_the_ini_option_restricts_the_kinds_and_the_marker_narrows_it(pytester):
    pytester.makeini(INI + NO_POSTGRES)
    pytester.makepyfile(
        """
        import pytest

        def test_all(saver): pass

        @pytest.mark.ferrograph_savers("sqlite", "postgres")
        def test_sql(saver): pass

        @pytest.mark.ferrograph_savers("postgres")
        def test_postgres_only(saver): pass
        """
    )
    assert collected(pytester) == ["test_all[memory]", "test_all[sqlite]", "test_sql[sqlite]", "test_postgres_only[no-saver]"]
    result = run(pytester, "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*ferrograph_savers asks for postgres, but the ini option ferrograph_savers allows only memory, sqlite*"])
    # -o overrides the ini file, as for any ini option.
    assert collected(pytester, "-o", "ferrograph_savers=memory", "-k", "test_all") == ["test_all[memory]"]


def test_an_unknown_kind_in_the_ini_option_is_a_usage_error(pytester):
    pytester.makeini(INI + "ferrograph_savers = memory mysql\n")
    pytester.makepyfile("def test_plain(): pass\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*the ini option ferrograph_savers names unknown saver kind(s) 'mysql'; choose among: memory, sqlite, postgres*"]
    )


def test_an_unknown_or_missing_kind_in_the_marker_is_a_usage_error(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(
        test_unknown="""
        import pytest

        @pytest.mark.ferrograph_savers("sqlite", "mysql")
        def test_unknown(saver): pass
        """,
        test_empty="""
        import pytest

        @pytest.mark.ferrograph_savers()
        def test_empty(saver): pass
        """,
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    for line in (
        "@pytest.mark.ferrograph_savers on test_unknown.py::test_unknown names unknown saver kind(s) 'mysql'; "
        "choose among: memory, sqlite, postgres",
        "@pytest.mark.ferrograph_savers on test_empty.py::test_empty names no saver kind; "
        "choose among: memory, sqlite, postgres",
    ):
        assert line in out, out
    assert "_manager.py" not in out, out  # the message, not a traceback through the hooks


def test_the_marker_is_registered(pytester):
    pytester.makeini(INI + "addopts = --strict-markers\n" + NO_POSTGRES)
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.ferrograph_savers('memory')\ndef test_m(saver): pass\n"
    )
    run(pytester).assert_outcomes(passed=1)
    assert "ferrograph_savers(*kinds)" in run(pytester, "--markers").stdout.str()


def test_a_projects_own_saver_fixture_or_parametrization_wins(pytester):
    pytester.makeini(INI)
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(params=["mine-a", "mine-b"])
        def saver(request):
            return request.param
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_own_fixture(saver):
            assert saver.startswith("mine-")

        @pytest.mark.parametrize("async_saver", ["direct"])
        def test_direct(async_saver):
            assert async_saver == "direct"
        """
    )
    assert collected(pytester) == ["test_own_fixture[mine-a]", "test_own_fixture[mine-b]", "test_direct[direct]"]
    run(pytester).assert_outcomes(passed=3)


def test_asking_through_getfixturevalue_fails_clearly(pytester):
    pytester.makeini(INI)
    pytester.makepyfile("def test_dynamic(request):\n    request.getfixturevalue('saver')\n")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the `saver` fixture is parametrized by ferrograph's plugin*"])


def test_the_postgres_url_comes_from_the_environment(pytester, monkeypatch, ferrograph_postgres_server):
    from ferrograph.testing.plugin import with_database

    server = with_database(ferrograph_postgres_server, "postgres")
    monkeypatch.setenv("FERROGRAPH_TEST_POSTGRES_URL", server)
    pytester.makeini(INI)
    pytester.makepyfile(
        f"""
        def test_url(ferrograph_postgres_url):
            assert ferrograph_postgres_url.startswith({server.rsplit("/", 1)[0] + "/ferrograph_test_"!r})

        def test_saver(saver, ferrograph_postgres_url):
            if type(saver).__name__ == "PostgresSaver":
                assert saver.conn.info.dbname == ferrograph_postgres_url.rsplit("/", 1)[1]
        """
    )
    run(pytester).assert_outcomes(passed=4)
