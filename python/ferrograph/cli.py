"""The `ferrograph` command. `ferrograph db ...` manages the schema of the SQL savers' databases
with Alembic: `upgrade`, `downgrade`, `current`, `history`. Each command group is a subparser
with a handler, so new groups slot in beside `db`.

A URL is a SQLite file path, `sqlite:///path`, or `postgresql://...`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional, Sequence

from ferrograph.errors import FerrographError

__all__ = ["main"]


def _current_revision(url: str) -> Optional[str]:
    """The database's revision; None when it has no ferrograph schema (or, for SQLite, when the
    file does not exist: reading must not create it)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, make_url, pool

    from ferrograph.migrations import VERSION_TABLE, sqlalchemy_url

    sa_url = make_url(sqlalchemy_url(url))
    if sa_url.get_backend_name() == "sqlite" and (not sa_url.database or not os.path.exists(sa_url.database)):
        return None
    engine = create_engine(sa_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()


def _db_upgrade(args: argparse.Namespace) -> None:
    from alembic import command

    from ferrograph.migrations import alembic_config, check_revision

    try:
        current = _current_revision(args.url)
    except Exception:
        if not args.sql:
            raise
        current = None  # printing SQL for a database we cannot reach: start from the base
    check_revision(current)
    revision = args.revision
    if args.sql and current and ":" not in revision:
        revision = f"{current}:{revision}"
    command.upgrade(alembic_config(args.url), revision, sql=args.sql)


def _db_downgrade(args: argparse.Namespace) -> None:
    from alembic import command

    from ferrograph.migrations import alembic_config, check_revision

    revision = args.revision
    if args.sql and ":" in revision:
        command.downgrade(alembic_config(args.url), revision, sql=True)
        return
    current = _current_revision(args.url)
    check_revision(current)
    if args.sql:
        if current is None:
            raise FerrographError("the database has no ferrograph schema: nothing to downgrade")
        revision = f"{current}:{revision}"
    command.downgrade(alembic_config(args.url), revision, sql=args.sql)


def _db_current(args: argparse.Namespace) -> None:
    from ferrograph.migrations import check_revision, head_revision

    current = _current_revision(args.url)
    if current is None:
        print("none (no ferrograph schema)")
        return
    check_revision(current)
    print(f"{current} (head)" if current == head_revision() else current)


def _db_history(args: argparse.Namespace) -> None:
    from ferrograph.migrations import script_directory

    current = _current_revision(args.url) if args.url else None
    for script in script_directory().walk_revisions():
        marks = []
        if script.is_head:
            marks.append("head")
        if script.revision == current:
            marks.append("current")
        down = script.down_revision or "<base>"
        suffix = f" ({', '.join(marks)})" if marks else ""
        summary = (script.doc or "").strip().splitlines()[0] if script.doc else ""
        print(f"{down} -> {script.revision}{suffix}, {summary}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferrograph", description="ferrograph's command line.")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)

    db = groups.add_parser("db", help="manage the schema of a SQL saver's database (Alembic)")
    commands = db.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    url_help = "a SQLite file path, sqlite:///path, or postgresql://..."

    upgrade = commands.add_parser("upgrade", help="upgrade the schema (to the latest revision by default)")
    upgrade.add_argument("url", help=url_help)
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    upgrade.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL instead of running it (from the database's revision when it can be read)",
    )
    upgrade.set_defaults(handler=_db_upgrade)

    downgrade = commands.add_parser("downgrade", help="downgrade the schema to REVISION (e.g. 0001, -1, base)")
    downgrade.add_argument("url", help=url_help)
    downgrade.add_argument("revision", help="target revision, or FROM:TO with --sql")
    downgrade.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    downgrade.set_defaults(handler=_db_downgrade)

    current = commands.add_parser("current", help="show the database's schema revision")
    current.add_argument("url", help=url_help)
    current.set_defaults(handler=_db_current)

    history = commands.add_parser("history", help="list the schema revisions (marking the database's)")
    history.add_argument("url", nargs="?", help=url_help)
    history.set_defaults(handler=_db_history)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except FerrographError as e:
        print(f"ferrograph: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # Alembic and driver errors: one line, not a traceback
        print(f"ferrograph: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
