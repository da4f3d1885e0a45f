"""The store's backends, one module each, picked by the URL's scheme through an alias table:
a new database is a new module and a line here, not a branch in the stages."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from surmesure.errors import ConfigError

if TYPE_CHECKING:
    from surmesure.store.ports import Backend

BACKEND_FOR_SCHEME = {
    "duckdb": "surmesure.store.backends.duckdb.DuckDBBackend",
    "postgresql": "surmesure.store.backends.postgres.PostgresBackend",
}
"""URL scheme (before any ``+driver``) -> the backend class, by dotted name."""

SUPPORTED = tuple(BACKEND_FOR_SCHEME)


def scheme_of(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def backend_class(url: str) -> type[Backend]:
    """The class of the backend for ``url``; a clear error for a scheme none serves."""
    scheme = scheme_of(url)
    if scheme not in BACKEND_FOR_SCHEME:
        raise ConfigError(
            f"Database URL {url!r} is not supported.",
            hint="use duckdb:///path/to/file.duckdb or postgresql+psycopg://user@host/db",
            field="SURMESURE_DATABASE_URL",
        )
    module, _, name = BACKEND_FOR_SCHEME[scheme].rpartition(".")
    found: type[Backend] = getattr(import_module(module), name)
    return found


def backend_for(url: str) -> Backend:
    """The backend of the database at ``url``, with its engine."""
    make: Callable[[str], Backend] = backend_class(url)
    backend = make(url)
    # on the engine itself: a connection finds its backend while it lives, whoever holds it
    setattr(backend.engine, _ATTRIBUTE, backend)
    return backend


def of(conn: Connection) -> Backend:
    """The backend ``conn`` is a connection of."""
    backend: Backend = getattr(conn.engine, _ATTRIBUTE)
    return backend


_ATTRIBUTE = "_surmesure_backend"
