"""The schema history of the SQL savers: Alembic revisions in `versions/`, one history for SQLite
and Postgres, appended to and never edited once released.

Two ways in. The `ferrograph db` commands run Alembic online through SQLAlchemy
(`alembic_config`). A saver's `setup()` asks for the rendered SQL of the missing revisions
(`upgrade_statements`) and runs it on its own connection, so the same history serves sync and
async drivers, a connection in autocommit or inside the caller's transaction, under the saver's
lock.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Optional

from ferrograph.errors import SchemaVersionError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "SCRIPT_LOCATION",
    "VERSION_TABLE",
    "alembic_config",
    "check_revision",
    "head_revision",
    "script_directory",
    "sqlalchemy_url",
    "upgrade_statements",
]

SCRIPT_LOCATION = os.path.dirname(os.path.abspath(__file__))
#: Alembic's version table under a name of our own, so that it never meets an application's.
VERSION_TABLE = "ferrograph_alembic_version"


def sqlalchemy_url(url: str) -> str:
    """A SQLAlchemy URL for what users type: a SQLite file path, `sqlite:///...`, or
    `postgresql://...` (driven by psycopg 3)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+", "sqlite:")):
        return url
    if "://" in url:
        raise ValueError(f"unsupported database URL {url!r}: use a SQLite file path, sqlite:///... or postgresql://...")
    return "sqlite:///" + os.path.abspath(url)


def alembic_config(
    url: Optional[str] = None, *, script_location: Optional[str] = None, **attributes: Any
) -> "Config":
    """An Alembic `Config` for this history, pointed at `url` (see `sqlalchemy_url`)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location or SCRIPT_LOCATION)
    if url is not None:
        # ConfigParser interpolates '%': a password may contain one.
        config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    config.attributes.update(attributes)
    return config


@functools.lru_cache(maxsize=None)
def script_directory(script_location: Optional[str] = None) -> "ScriptDirectory":
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(script_location=script_location))


def head_revision(script_location: Optional[str] = None) -> str:
    """The newest revision this version of ferrograph knows."""
    head = script_directory(script_location).get_current_head()
    assert head is not None, "the migration history is empty"
    return head


def check_revision(current: Optional[str], script_location: Optional[str] = None) -> None:
    """Raises `SchemaVersionError` when the database is at a revision this code does not know,
    which means a newer ferrograph migrated it."""
    if current is None:
        return
    known = {rev.revision for rev in script_directory(script_location).walk_revisions()}
    if current not in known:
        raise SchemaVersionError(
            f"the database's ferrograph schema is at revision {current!r}, newer than this version of "
            f"ferrograph knows (latest {head_revision(script_location)!r}); upgrade ferrograph, or run "
            f"`ferrograph db downgrade` with the newer version first"
        )


class _StatementCollector:
    """An output buffer for Alembic's offline mode: each write is one statement."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def write(self, text: str) -> None:
        text = text.strip()
        if text and not text.startswith("--"):
            self.statements.append(text.rstrip(";").strip())

    def flush(self) -> None:
        pass


@functools.lru_cache(maxsize=64)
def upgrade_statements(dialect: str, current: Optional[str], script_location: Optional[str] = None) -> tuple[str, ...]:
    """The SQL that brings a `dialect` ("sqlite" or "postgresql") database from revision
    `current` (None: empty) to the head, version-table updates included, with no transaction
    control: the caller runs it in one transaction."""
    from alembic import command

    check_revision(current, script_location)
    head = head_revision(script_location)
    if current == head:
        return ()
    collector = _StatementCollector()
    config = alembic_config(
        script_location=script_location, dialect_name=dialect, output_buffer=collector, transactional_ddl=False
    )
    command.upgrade(config, f"{current}:head" if current else "head", sql=True)
    return tuple(collector.statements)
