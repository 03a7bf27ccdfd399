"""Alembic's environment for ferrograph's schema history: online through a SQLAlchemy engine
(one transaction for the whole command, under a lock), offline to render SQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, event, exc, pool

from ferrograph.checkpointers.sql import MIGRATION_LOCK_KEY
from ferrograph.migrations import VERSION_TABLE

config = context.config


def run_offline() -> None:
    dialect_name = config.attributes.get("dialect_name")
    url = None if dialect_name else config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        dialect_name=dialect_name,
        literal_binds=True,
        version_table=VERSION_TABLE,
        transactional_ddl=config.attributes.get("transactional_ddl", True),
        output_buffer=config.attributes.get("output_buffer"),
    )
    with context.begin_transaction():
        context.run_migrations()


def _engine(url: str):
    engine = create_engine(url, poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        # pysqlite's own transaction handling does not cover DDL: take it over, and take the
        # write lock up front so that two upgrades queue instead of failing half way.
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def run_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        # The error create_engine(None) would raise, with what is missing.
        raise exc.ArgumentError("an online migration needs a database URL: alembic_config(url)")
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                version_table=VERSION_TABLE,
                transactional_ddl=True,
                transaction_per_migration=False,
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
