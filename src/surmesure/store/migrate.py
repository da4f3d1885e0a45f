"""Alembic, driven from code: ``surmesure db upgrade`` and every command that opens the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from surmesure.store.engine import Store

MIGRATIONS = Path(__file__).parent / "migrations"


class DuckDBImpl(DefaultImpl):
    """Lets Alembic drive DuckDB as it drives PostgreSQL."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def alembic_config(store: Store) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", store.url)
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    config = alembic_config(store)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        config.attributes["store"] = store
        command.upgrade(config, revision)


def migrating_store(conn: Connection) -> Store:
    """The store a running migration works on, whose settings (keys, sealed traits) it
    follows: the one :func:`upgrade` handed Alembic, else the store ``conn`` is a connection
    of, else one opened on ``conn``'s URL under the configured settings (the ``alembic``
    command line)."""
    from alembic import op

    from surmesure.store.engine import Store

    config = op.get_context().config
    given = config.attributes.get("store") if config is not None else None
    if given is not None:
        return given  # type: ignore[no-any-return]
    try:
        return Store.of(conn)
    except KeyError:
        return Store(conn.engine.url.render_as_string(hide_password=False))


def current(store: Store) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
