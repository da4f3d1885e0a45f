"""The call centre: a call list ranked by expected value, and its outcomes brought back as the
person's activity (an opt-out refuses phone marketing); a bad row goes to the quarantine with
its reason, the others are recorded."""

from __future__ import annotations

import csv
import stat
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from people_rows import activity_rows, add_people

from conftest import invoke, invoke_json
from surmesure.deliver.calls import CallChannel, CallSettings, import_outcomes
from surmesure.deliver.channel import Message
from surmesure.protect.consent import refused_ids
from surmesure.store import Store, schema


def call(n: int, value: str | None, phone: str = "+33612345678") -> Message:
    headers = {} if value is None else {"X-Expected-Value": value}
    script = f"Bonjour client {n}, nous vous appelons au sujet de votre fidélité."
    return Message(f"c{n}", "phone", phone, script, person_id=n, headers=headers)


def test_the_call_list_is_ranked_by_expected_value(tmp_path: Path) -> None:
    channel = CallChannel(CallSettings.from_url(f"calls://{tmp_path}/out"))
    results = channel.send([call(1, "12.5"), call(2, None), call(3, "80"), call(4, "9", "")])
    channel.close()
    assert [r.outcome for r in results] == ["sent", "sent", "sent", "failed"]
    path = channel.last_batch
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["message_id"] for r in rows] == ["c3", "c1", "c2"]
    assert [float(r["expected_value"]) for r in rows] == [80.0, 12.5, 0.0]
    assert rows[0]["script"].startswith("Bonjour client 3") and rows[0]["phone"] == "+33612345678"
    assert results[2].provider_id == f"{path.stem}#1"


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["message_id", "person_id", "outcome", "called_at"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_outcomes_become_activity_and_opt_outs(store: Store, tmp_path: Path) -> None:
    add_people(store, (1, None), (2, None), (3, 1))
    rows = [
        {
            "message_id": "c1",
            "person_id": "3",
            "outcome": "Interested",
            "called_at": "2026-03-01T10:00:00",
        },
        {
            "message_id": "c2",
            "person_id": "2",
            "outcome": "opt_out",
            "called_at": "2026-03-01T10:05:00+01:00",
        },
        {
            "message_id": "c9",
            "person_id": "99",
            "outcome": "answered",
            "called_at": "2026-03-01T10:06:00",
        },
    ]
    bad_rows = [*rows, {**rows[0], "outcome": "maybe"}, {**rows[1], "called_at": "soon"}]
    done = import_outcomes(store, _write(tmp_path / "calls.csv", bad_rows))
    # the good rows are recorded; person 99, the unknown outcome and the date go aside
    assert done.counts == {"interested": 1, "opt_out": 1}
    assert done.quarantined == 3
    q = schema.quarantine
    with store.connect() as conn:
        aside = conn.execute(
            sa.select(q.c.kind, q.c.location, q.c.field, q.c.reason).order_by(q.c.location)
        ).all()
    assert [(r[0], r[1], r[2]) for r in aside] == [
        ("call_outcomes", "row 4", "person_id"),
        ("call_outcomes", "row 5", "outcome"),
        ("call_outcomes", "row 6", "called_at"),
    ]
    assert "interested" in aside[1][3] and "ISO 8601" in aside[2][3]
    # the same file again quarantines nothing twice
    again = import_outcomes(store, _write(tmp_path / "calls.csv", bad_rows))
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(q)).scalar() == 3
    assert again.quarantined == 3 and again.counts == {} and again.again == 2
    found = activity_rows(store, "person_id", "node_id", "channel", "kind", "occurred_at")
    with store.connect() as conn:
        assert refused_ids(conn, "marketing", "phone", datetime(2100, 1, 1)) == {2}
        assert refused_ids(conn, "marketing", "email", datetime(2100, 1, 1)) == set()
    assert found == [
        (2, 2, "phone", "opt_out", datetime(2026, 3, 1, 9, 5)),
        (1, 3, "phone", "interested", datetime(2026, 3, 1, 10, 0)),
    ]


def test_quarantined_outcomes_replay_after_a_value_fix(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_people(store, (1, None), (2, None))
    rows = [
        {"message_id": "", "person_id": "1", "outcome": "call back", "called_at": "2026-03-01"},
        {"message_id": "", "person_id": "2", "outcome": "opt-out", "called_at": "soon"},
        {"message_id": "", "person_id": "99", "outcome": "answered", "called_at": "2026-03-01"},
    ]
    done = import_outcomes(store, _write(tmp_path / "calls.csv", rows))
    assert done.quarantined == 3 and done.counts == {}
    # replayed as they are, they are still refused, for the same reasons
    same = invoke_json(monkeypatch, store.url, "quarantine", "replay", "--kind", "call_outcomes")
    assert (same["considered"], same["replayed"], same["still_open"]) == (3, 0, 3)
    # a mapping naming a column the rows do not have is refused before anything is replayed
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("values:\n  gender: {f: female}\n")
    refused = invoke(monkeypatch, store.url, "quarantine", "replay", "--mapping", str(wrong))
    assert refused.exit_code == 2 and "person_id, outcome, called_at" in refused.output
    fix = tmp_path / "fix.yaml"
    fix.write_text(
        "kind: call_outcomes\nvalues:\n  outcome: {call back: answered}\n"
        "  called_at: {soon: '2026-03-02T09:00:00'}\n"
    )
    out = invoke_json(monkeypatch, store.url, "quarantine", "replay", "--mapping", str(fix))
    assert (out["considered"], out["replayed"], out["still_open"]) == (3, 2, 1)
    assert list(out["still_open_by_reason"]) == [
        "person_id: no such person; give the person_id of the call list's row"
    ]
    assert activity_rows(store, "person_id", "kind", "occurred_at") == [
        (1, "answered", datetime(2026, 3, 1)),
        (2, "opt_out", datetime(2026, 3, 2, 9)),
    ]
    with store.connect() as conn:
        assert refused_ids(conn, "marketing", "phone", datetime(2100, 1, 1)) == {2}
    q = schema.quarantine
    with store.connect() as conn:
        statuses = conn.execute(
            sa.select(q.c.location, q.c.status, q.c.field).order_by(q.c.location)
        ).all()
    assert [tuple(r) for r in statuses] == [
        ("row 2", "replayed", "outcome"),
        ("row 3", "replayed", "called_at"),
        ("row 4", "open", "person_id"),
    ]
    # nothing is recorded twice: the fixed rows are no longer open
    again = invoke_json(monkeypatch, store.url, "quarantine", "replay", "--mapping", str(fix))
    assert (again["considered"], again["replayed"]) == (1, 0)
    assert len(activity_rows(store, "person_id")) == 2
