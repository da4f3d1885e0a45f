"""The one store: a SQLAlchemy Core schema on DuckDB (embedded default) or PostgreSQL."""

from surmesure.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
