"""Open a checkpoint saver from a URL: what the `ferrograph` command (and any script) uses to
reach a database without knowing which saver class serves it.

    from ferrograph.checkpointers import open_saver

    with open_saver("checkpoints.db") as saver:              # SQLite file (created if missing)
        ...
    with open_saver("postgresql://user@host/db", create=False) as saver:   # must exist already
        ...

A URL is a SQLite file path, `sqlite:///path`, `postgresql://...` (or `postgres://...`), or
`memory://` (a fresh, empty `MemorySaver`, handy in tests).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Literal, Optional
from urllib.parse import urlsplit, urlunsplit

from ferrograph.checkpointers.base import BaseCheckpointSaver
from ferrograph.errors import FerrographError, SchemaVersionError

if TYPE_CHECKING:
    from ferrograph.checkpointers.encryption import Encryption

__all__ = ["open_saver", "url_kind", "display_url"]

Kind = Literal["sqlite", "postgres", "memory"]


def url_kind(url: str) -> Kind:
    """Which backend a URL names: "sqlite", "postgres" or "memory". Raises `FerrographError`
    for a scheme ferrograph has no saver for."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgres"
    if url in ("memory://", "memory:"):
        return "memory"
    if url.startswith("sqlite:") or "://" not in url:
        return "sqlite"
    raise FerrographError(
        f"unsupported saver URL {display_url(url)!r}: use a SQLite file path, sqlite:///path or postgresql://..."
    )


def display_url(url: str) -> str:
    """`url` with any password hidden, for messages."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=netloc[0].split(":", 1)[0] + ":***@" + netloc[1]))


def _sqlite_file(url: str) -> str:
    from ferrograph.checkpointers.sql import sqlite_path

    return sqlite_path(url)


def _schema_revision(saver: BaseCheckpointSaver, kind: Kind) -> Optional[str]:
    """The database's ferrograph schema revision, read on the saver's own connection (None: the
    database has no ferrograph tables)."""
    from ferrograph.migrations import VERSION_TABLE

    conn = saver.conn  # type: ignore[attr-defined]
    if kind == "sqlite":
        with saver.lock:  # type: ignore[attr-defined]
            if not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
            ).fetchall():
                return None
            rows = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    else:
        with saver._connection() as c:  # type: ignore[attr-defined]
            if not c.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,)).fetchone()[0]:
                return None
            rows = c.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    return rows[0][0] if rows else None


def _check_schema(saver: BaseCheckpointSaver, kind: Kind, url: str) -> None:
    from ferrograph.migrations import check_revision, head_revision

    current = _schema_revision(saver, kind)
    shown = display_url(url)
    if current is None:
        raise FerrographError(f"{shown} has no ferrograph checkpoint tables (create them with `ferrograph db upgrade URL`)")
    check_revision(current)
    if current != head_revision():
        raise SchemaVersionError(
            f"{shown} has the ferrograph schema at revision {current!r}, older than this version's "
            f"{head_revision()!r}: run `ferrograph db upgrade URL` first"
        )


@contextmanager
def open_saver(url: str, *, create: bool = True, encryption: Optional["Encryption"] = None) -> Iterator[BaseCheckpointSaver]:
    """A sync saver on `url`, closed when the block ends.

    `create=True` (for writing): a missing SQLite file is created and `setup()` brings the schema
    to the latest revision. `create=False` (for reading, deleting): nothing is created or
    migrated; a missing SQLite file, a database without ferrograph tables, or one at another
    schema revision is a `FerrographError` naming what to run. `encryption`: the saver's
    `encryption=` (see checkpointers/encryption.py).
    """
    kind = url_kind(url)
    if kind == "memory":
        from ferrograph.checkpointers.memory import MemorySaver

        yield MemorySaver(encryption=encryption)
        return
    if kind == "sqlite":
        from ferrograph.checkpointers.sqlite import SqliteSaver

        path = _sqlite_file(url)
        if path != ":memory:":
            if not create and not os.path.exists(path):
                raise FerrographError(f"no such SQLite database: {path}")
            parent = os.path.dirname(os.path.abspath(path))
            if create and not os.path.isdir(parent):
                raise FerrographError(f"cannot create {path}: no such directory {parent}")
        with SqliteSaver.from_conn_string(url, encryption=encryption) as saver:
            if create:
                saver.setup()
            else:
                _check_schema(saver, kind, url)
            yield saver
        return
    try:
        from ferrograph.checkpointers.postgres import PostgresSaver
    except ImportError as e:  # psycopg is an extra
        raise FerrographError(
            f"Postgres URLs need psycopg ({e.name} is not installed): pip install 'ferrograph[postgres]'"
        ) from e
    pg_url = "postgresql://" + url.split("://", 1)[1]
    with PostgresSaver.from_conn_string(pg_url, encryption=encryption) as saver:
        if create:
            saver.setup()
        else:
            _check_schema(saver, kind, url)
        yield saver
