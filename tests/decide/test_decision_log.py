"""The decision log written behind: queued decisions are known before they are written, one
flush writes them all, and a decision server on DuckDB lets the write-ahead log grow to its
setting before a checkpoint."""

from __future__ import annotations

import threading
from datetime import datetime

import sqlalchemy as sa
from decide_world import add_person

from surmesure.decide.decision_log import DecisionLog, encoded
from surmesure.decide.serving import Serving
from surmesure.store import Store, schema

AT = datetime(2026, 3, 10, 17, 30)


def _decision(n: int, person_id: int | None) -> dict[str, object]:
    return encoded(
        {
            "decision_id": f"d{n}",
            "person_id": person_id,
            "placement": "home_banner",
            "context": {"device": "mobile"},
            "result": {"content": {"id": "spring"}},
            "explanation": {"person": "known"},
            "decided_at": AT,
        }
    )


def _exposure(n: int, person_id: int, content_id: str) -> dict[str, object]:
    return {"exposure_id": f"x{n}", "person_id": person_id, "node_id": None,
            "content_id": content_id, "channel": "web", "placement": "home_banner",
            "shown_at": AT, "expires_at": None}  # fmt: skip


def test_queued_then_written_in_one_flush(store: Store) -> None:
    add_person(store, 1, {})
    log = DecisionLog(store, threading.RLock())
    log.queue([_exposure(1, 1, "spring"), _exposure(2, 1, "sale")], _decision(1, 1))
    log.queue([], _decision(2, None))
    assert len(log) == 2
    assert log.shown() == [(1, ["spring", "sale"], AT)]
    assert log.shown({2}) == []
    assert log.flush() == 2
    assert len(log) == 0 and log.shown() == [] and log.written == 2
    with store.connect() as conn:
        decisions = conn.execute(
            sa.select(schema.decisions.c.decision_id, schema.decisions.c.sealed).order_by(
                schema.decisions.c.decision_id
            )
        ).all()
        shown = conn.execute(sa.select(sa.func.count()).select_from(schema.exposures)).scalar()
    assert [d for d, _ in decisions] == ["d1", "d2"]
    assert decisions[0][1] is not None and decisions[1][1] is None  # a person's is sealed
    assert shown == 2
    assert log.flush() == 0


def _threshold(store: Store) -> str:
    with store.connect() as conn:
        return str(conn.execute(sa.text("SELECT current_setting('checkpoint_threshold')")).scalar())


def test_a_decision_server_holds_duckdb_checkpoints(duckdb_store: Store) -> None:
    before = _threshold(duckdb_store)
    assert before.startswith("16")  # DuckDB's own: 16 MiB
    serving = Serving(duckdb_store, checkpoint_mb=300, refresh_seconds=3600)
    serving.start()
    try:
        assert _threshold(duckdb_store).startswith("286")  # 300 MB, as DuckDB shows it in MiB
    finally:
        serving.stop()
