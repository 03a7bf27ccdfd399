"""Runs the saver conformance suite (conformance.py): every check against every registered
saver factory, through the sync methods and through their async twins."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from conformance import CHECKS, SAVER_FACTORIES, Driver, SaverFactory


@pytest.fixture(params=SAVER_FACTORIES, ids=lambda f: f.name)
def saver(request: pytest.FixtureRequest) -> Iterator[Any]:
    factory: SaverFactory = request.param
    with factory.make() as s:
        yield s


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_conformance(saver: Any, mode: str, check: Any) -> None:
    await check(Driver(saver, mode))
