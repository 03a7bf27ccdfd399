from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """An empty database of each kind: a SQLite file path, or a fresh Postgres database URL."""
    if request.param == "postgres":
        return request.getfixturevalue("ferrograph_postgres_url")
    return str(tmp_path / "checkpoints.db")
