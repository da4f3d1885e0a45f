"""Cascades: e-mail, then SMS for who did not open within 48 hours, then a call task where the
expected value exceeds the call's cost; each step records why it ran or was skipped, and a
``campaign send`` run advances the steps that are due."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from campaign_world import HOUR, T0, add_people, document
from cascade_world import bought, metrics, responded, send_offline

from conftest import invoke
from surmesure.config import get_settings
from surmesure.deliver import cascade, documents, plan, service
from surmesure.errors import InvalidInput
from surmesure.ops import runs
from surmesure.store import Store, schema

STEPS = [
    {"channel": "email"},
    {"channel": "sms", "after_hours": 48, "unless": ["opened", "clicked", "converted"]},
    {"channel": "phone", "after_hours": 72, "above_cost": True},
]
CALL = {"text": "Rappeler pour l'offre de printemps."}


def _steps(store: Store) -> dict[tuple[int, int], tuple[str, str, str | None]]:
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(sa.select(m.c.person_id, m.c.step, m.c.channel, m.c.status, m.c.reason))
        return {(int(r[0]), int(r[1])): (r[2], r[3], r[4]) for r in rows}


def _send_planned(store: Store, at: datetime) -> None:
    """What a worker would do: every planned row leaves at ``at``."""
    m = schema.messages
    with store.begin() as conn:
        conn.execute(m.update().where(m.c.status == "planned").values(status="sent", sent_at=at))


def test_each_step_runs_or_records_why_not(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 7, no_email={6}, phones=set(range(1, 8)))
    costs = {"email": 0.001, "sms": 0.05, "phone": 0.5}
    metrics(store, ids[4], T0, 800.0, phone=0.3)  # a call is worth 240 - 1.5
    metrics(store, ids[5], T0, 2.0, phone=0.1)  # worth 0.2, costs 1.5
    metrics(store, ids[7], T0, 3.0, phone=0.2)
    doc = document(channels={**document()["channels"], "phone": CALL}, cascade=STEPS)
    del doc["policy"]
    documents.save(store, documents.parse({**doc, "costs": costs}), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    steps = _steps(store)
    assert steps[(ids[1], 0)] == ("email", "planned", None)
    assert steps[(ids[6], 0)] == ("email", "suppressed", "unreachable")
    _send_planned(store, T0)

    # an hour later: only who e-mail could not reach goes on, at once
    cascade.advance(store, definition, version, T0 + HOUR)
    steps = _steps(store)
    assert steps[(ids[6], 1)] == ("sms", "planned", None)
    assert (ids[1], 1) not in steps and (ids[4], 1) not in steps
    responded(store, ids[1], "spring", "opened", T0 + 2 * HOUR)
    responded(store, ids[2], "spring", "clicked", T0 + 2 * HOUR)
    responded(store, ids[2], "other", "opened", T0 + 2 * HOUR)  # another campaign's: no matter
    bought(store, ids[3], "SKU1", "shoes", T0 + 3 * HOUR)  # converted
    bought(store, ids[7], "SKU1", "shoes", T0 - 24 * HOUR)  # bought before: not a conversion

    at = T0 + 49 * HOUR
    cascade.advance(store, definition, version, at)
    steps = _steps(store)
    assert steps[(ids[1], 1)] == ("sms", "skipped", "opened")
    assert steps[(ids[2], 1)] == ("sms", "skipped", "clicked")
    assert steps[(ids[3], 1)] == ("sms", "skipped", "converted")
    for i in (4, 5, 7):
        assert steps[(ids[i], 1)] == ("sms", "planned", None)
    for i in (1, 2, 3):  # a skipped step skips the next ones, for the same reason
        assert steps[(ids[i], 2)][1:] == steps[(ids[i], 1)][1:]
    _send_planned(store, at)

    cascade.advance(store, definition, version, at + 71 * HOUR)
    assert (ids[4], 2) not in _steps(store)  # the call waits 72 hours
    cascade.advance(store, definition, version, at + 72 * HOUR)
    steps = _steps(store)
    assert steps[(ids[4], 2)] == ("phone", "planned", None)
    assert steps[(ids[5], 2)] == ("phone", "skipped", "value_below_cost")
    assert steps[(ids[7], 2)] == ("phone", "skipped", "value_below_cost")
    assert steps[(ids[6], 2)] == ("phone", "planned", None)  # no metrics: the channel mean
    status = service.status(store, "spring")
    assert status["reasons"]["skipped:value_below_cost"] == 2
    assert status["reasons"]["skipped:opened"] == 2
    assert status["by_step"]["2: phone"] == {"planned": 2, "skipped": 5}
    # the scheduler's job advances every cascade, and plans nobody twice
    before = len(steps)
    run = runs.run_job(store, get_settings(), "cascades")
    assert run is not None and run.summary == "0 cascade rows planned"
    assert cascade.advance_all(store, at + 100 * HOUR) == 0
    assert len(_steps(store)) == before


def test_a_send_run_advances_the_cascade(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = {"street": "1 quai Perrache", "postcode": "69002", "city": "Lyon"}
    ids = add_people(store, tmp_path, 2, phones={1, 2}, extra={1: address, 2: address})
    responded(store, ids[2], "spring", "opened", T0)  # as soon as the call went out
    doc = document(
        channels={"phone": CALL, "paper": {"text": "Notre offre de printemps."}},
        cascade=[{"channel": "phone"}, {"channel": "paper", "unless": ["opened"]}],
    )
    del doc["policy"]
    documents.save(store, documents.parse(doc), T0)
    report = send_offline(store, tmp_path, T0)
    steps = _steps(store)
    assert steps[(ids[1], 0)] == ("phone", "sent", None)
    assert steps[(ids[1], 1)] == ("paper", "sent", None)
    assert steps[(ids[2], 1)] == ("paper", "skipped", "opened")
    assert report.sent is not None and report.sent.counts == {"sent": 3}
    shown = invoke(monkeypatch, store.url, "campaign", "status", "spring")
    assert shown.exit_code == 0, shown.output
    assert "by cascade step" in shown.output and "skipped 1" in shown.output


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"policy": {"order": ["email"]}}, "policy"),
        ({"cascade": [{"channel": "email"}, {"channel": "paper"}]}, "cascade[1].channel"),
        ({"cascade": [{"channel": "email", "after_hours": 2}]}, "cascade[0].after_hours"),
        ({"cascade": [{"channel": "email"}, {"channel": "sms", "unless": ["read"]}]}, None),
    ],
)
def test_a_bad_cascade_is_refused_with_its_place(change: dict[str, object], field: str) -> None:
    doc = document(**change)
    if "policy" not in change:
        del doc["policy"]
    else:
        doc["cascade"] = [{"channel": "email"}]
    with pytest.raises(InvalidInput) as caught:
        documents.parse(doc)
    assert caught.value.field == (field or "cascade[1].unless[0]")
