"""``pg_dump`` of a PostgreSQL store, as text: what a backup of it would hold."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from surmesure.store import Store


def pg_dump(store: Store, out: Path, *tables: str, options: tuple[str, ...] = ()) -> str:
    """The plain-SQL dump of ``store`` (of ``tables`` only, when given; with pg_dump's
    ``options``), written to ``out``."""
    url = make_url(store.url)
    subprocess.run(
        [
            "pg_dump",
            "--host",
            url.host or "127.0.0.1",
            "--port",
            str(url.port or 5432),
            "--username",
            url.username or "postgres",
            "--file",
            str(out),
            *(a for t in tables for a in ("-t", t)),
            *options,
            url.database or "",
        ],
        check=True,
    )
    return out.read_text()


def stored_bytes(store: Store, out: Path, *tables: str, options: tuple[str, ...] = ()) -> bytes:
    """What the store holds, as bytes: the whole DuckDB file after a checkpoint, or the
    ``pg_dump`` of :func:`pg_dump` (``tables``, ``options``) of a PostgreSQL store."""
    if store.is_duckdb:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
            conn.commit()
        return Path(make_url(store.url).database or "").read_bytes()
    return pg_dump(store, out, *tables, options=options).encode()
