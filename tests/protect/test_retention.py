"""Retention: records older than their kind's limit go, the others stay; 0 keeps for ever."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from conftest import invoke_json
from surmesure.clock import utcnow
from surmesure.collect import quarantine
from surmesure.protect import atrest, audit
from surmesure.protect.crypto import KeyDestroyed
from surmesure.protect.retention import run_retention
from surmesure.store import Store, schema

AGES = [1, 30, 100, 400, 2000]  # days


def _world(store: Store) -> None:
    now = utcnow()
    with store.begin() as conn:
        for i, age in enumerate(AGES):
            at = now - timedelta(days=age, hours=1)
            conn.execute(
                schema.events.insert().values(
                    message_id=f"m{i}", type="track", event="Viewed", occurred_at=at,
                    received_at=now, source="web",
                )
            )  # fmt: skip
            conn.execute(
                schema.decisions.insert().values(decision_id=f"d{i}", placement="p", decided_at=at)
            )
            conn.execute(
                schema.exposures.insert().values(exposure_id=f"x{i}", content_id="c", shown_at=at)
            )
            refused = quarantine.Item(f"m{i}", "email", "a@b", "bad", {"email": "a@b.c"})
            quarantine.add(
                store, conn, [refused], run_id=None, origin="api", kind="events",
                source_name="api", now=at,
            )  # fmt: skip
            audit.record_in(conn, "cli:test", "person.show", person_id=1, now=at)


def _count(store: Store, table: sa.Table) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_retention_removes_only_what_is_older_than_its_limit(store: Store) -> None:
    _world(store)
    days = {"events": 365, "decisions": 90, "quarantine": 30, "audit": 0}
    with store.connect() as conn:
        q = schema.quarantine
        stored = conn.execute(sa.select(q.c.quarantine_id, q.c.sealed))
        copies = {int(i): bytes(b) for i, b in stored}
    assert len(copies) == len(AGES)
    dry = run_retention(store, days, dry_run=True)
    older = {kind: sum(age + 1 / 24 > limit for age in AGES) for kind, limit in days.items()}
    assert dry.removed == {
        "events": older["events"],
        "decisions": older["decisions"],
        "exposures": older["decisions"],
        "quarantine": older["quarantine"],
        "audit_log": 0,
        "video_films": 0,
    }
    assert _count(store, schema.events) == len(AGES)  # a dry run deletes nothing
    done = run_retention(store, days)
    assert done.removed == dry.removed and done.cutoffs["audit"] is None
    assert _count(store, schema.events) == 3 and _count(store, schema.decisions) == 2
    assert _count(store, schema.quarantine) == 1 and _count(store, schema.audit_log) == 5
    with store.connect() as conn:
        left = conn.execute(sa.select(schema.events.c.message_id)).scalars().all()
        keys = conn.execute(sa.select(schema.person_keys.c.node_id)).scalars().all()
    assert sorted(left) == ["m0", "m1", "m2"]
    # the quarantined records removed took their keys with them: a copy no longer opens
    (kept,) = quarantine.summary(store)["recent"]
    assert sorted(keys) == [-kept["quarantine_id"]]
    assert kept["value"] == "a@b" and kept["location"] == "m0"
    with store.connect() as conn:
        for record, sealed in copies.items():
            if record != kept["quarantine_id"]:
                with pytest.raises(KeyDestroyed):
                    atrest.keyring(conn).open(conn, -record, sealed)


def test_retention_command_uses_the_settings(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _world(store)
    monkeypatch.setenv("SURMESURE_RETENTION_DAYS", '{"events": 50}')
    out = invoke_json(monkeypatch, store.url, "retention", "run")
    assert out["removed"]["events"] == 3 and out["removed"]["quarantine"] == 0
    assert audit.entries(store, action="retention.run")[0]["detail"]["events"] == 3


@pytest.mark.parametrize("days", [-1, 999_999_999])
def test_a_retention_beyond_any_date_is_refused_naming_the_setting(days: int) -> None:
    from pydantic import ValidationError

    from surmesure.config import Settings

    with pytest.raises(ValidationError) as caught:
        Settings(retention_days={"events": days})
    assert "retention_days['events']" in str(caught.value)
    assert "36500" in str(caught.value)
