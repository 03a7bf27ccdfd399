"""Runs the saver conformance suite (conformance.py): every check against every saver, the
in-memory ones registered in conformance.py and each SQL saver (SQLite and Postgres, sync,
async and pooled), through the sync methods and through their async twins. An async-only
saver is run through its async twins only: its sync methods are for other threads."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from conformance import CHECKS, SAVER_FACTORIES, Driver, SaverFactory
from sql_savers import SQL_SAVERS, open_saver, postgres_url_for

SAVERS = [f.name for f in SAVER_FACTORIES] + SQL_SAVERS
_FACTORIES = {f.name: f for f in SAVER_FACTORIES}
# (saver, mode) pairs: an async-only saver's sync methods serve other threads, not its own event
# loop, so it runs through its async twins only.
CASES = [
    pytest.param(kind, mode, id=f"{kind}-{mode}")
    for kind in SAVERS
    for mode in (["async"] if "async" in kind else ["sync", "async"])
]


@pytest.fixture
async def saver(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Any]:
    kind = request.param
    factory: SaverFactory | None = _FACTORIES.get(kind)
    if factory is not None:
        with factory.make() as s:
            yield s
        return
    url = postgres_url_for(request, kind)
    async with open_saver(kind, sqlite_path=str(tmp_path / "conformance.db"), postgres_url=url) as s:
        yield s


@pytest.mark.parametrize("saver, mode", CASES, indirect=["saver"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_conformance(saver: Any, mode: str, check: Any) -> None:
    await check(Driver(saver, mode))
