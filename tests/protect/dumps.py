"""``pg_dump`` of a PostgreSQL store, as text: what a backup of it would hold."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from surmesure.store import Store


def pg_dump(store: Store, out: Path, *tables: str) -> str:
    """The plain-SQL dump of ``store`` (of ``tables`` only, when given), written to ``out``."""
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
            url.database or "",
        ],
        check=True,
    )
    return out.read_text()
