"""Channel choice by expected value (appetence x value of a response - cost), explained by
``campaign preview``; paper letters addressed from the postal traits and call tasks ranked by
expected value, planned and sent as campaign channels."""

from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa
from campaign_world import HOUR, T0, add_people, document
from cascade_world import metrics, send_offline

from surmesure.config import Settings
from surmesure.deliver import channels, documents, gsm, plan, service
from surmesure.deliver.calls import CallChannel
from surmesure.deliver.paper import PaperChannel
from surmesure.deliver.value import cost_of
from surmesure.store import Store, schema

ADDRESS = {"street": "3 rue de la Paix", "postcode": "69002", "city": "Lyon"}
LETTER = {"text": "Madame, Monsieur, nos soldes commencent."}
CALL = {"text": "Proposer la carte fidélité."}


def _rows(store: Store) -> dict[int, tuple[str, str, str | None]]:
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(sa.select(m.c.person_id, m.c.channel, m.c.status, m.c.reason))
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}


def _plan(store: Store, **change: object) -> dict[int, tuple[str, str, str | None]]:
    documents.save(store, documents.parse(document(**change)), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    return _rows(store)


def test_best_takes_the_channel_of_highest_expected_value(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 5, phones={1, 2, 3, 4})
    metrics(store, ids[1], T0, 500.0, email=0.30, sms=0.10)  # e-mail pays
    metrics(store, ids[2], T0, 500.0, email=0.01, sms=0.20)  # SMS pays
    metrics(store, ids[3], T0, 0.01, email=0.02, sms=0.90)  # worth nothing: the cheapest
    metrics(store, ids[4], T0, None, email=0.01, sms=0.40)  # no CLV: the mean CLV
    costs = {"email": 0.001, "sms": 0.05}
    rows = _plan(store, policy={"choose": "best", "order": ["email", "sms"]}, costs=costs)
    assert rows[ids[1]] == ("email", "planned", None)
    assert rows[ids[2]] == ("sms", "planned", None)
    assert rows[ids[3]] == ("email", "planned", None)
    assert rows[ids[4]] == ("sms", "planned", None)
    assert rows[ids[5]] == ("email", "planned", None)  # no phone: e-mail only
    why = service.preview(store, "spring", "customer_id:C2", T0)["why_channel"]
    assert why.startswith("sms: highest expected value")
    assert "sms: appetence 0.200 x value 500.00 - cost 0.050 = 99.95" in why
    why = service.preview(store, "spring", "customer_id:C5", T0)["why_channel"]
    assert "channel mean: never exposed" in why


def test_an_offer_value_replaces_the_clv(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 1, phones={1})
    metrics(store, ids[1], T0, 5000.0, email=0.05, sms=0.06)
    costs = {"email": 0.0, "sms": 0.5}
    # with the CLV the SMS's extra reach pays its cost; with an offer of 10 it does not
    policy = {"choose": "best"}
    assert _plan(store, policy=policy, costs=costs)[ids[1]][0] == "sms"
    with store.begin() as conn:
        conn.execute(schema.messages.delete())
    assert _plan(store, policy=policy, costs=costs, value=10.0)[ids[1]][0] == "email"


def test_paper_and_call_tasks_are_planned_and_sent(store: Store, tmp_path: Path) -> None:
    extra = {1: ADDRESS, 3: ADDRESS}
    ids = add_people(store, tmp_path, 3, no_email={1, 2, 3}, phones={2, 3}, extra=extra)
    metrics(store, ids[2], T0, 300.0, phone=0.2)
    metrics(store, ids[3], T0, 300.0, phone=0.1)
    doc = {
        "channels": {"paper": LETTER, "phone": CALL},
        "policy": {"order": ["paper", "phone"]},
        "costs": {"paper": 0.9, "phone": 0.5},
        "call_minutes": 4,
    }
    rows = _plan(store, **doc)
    assert rows == {
        ids[1]: ("paper", "planned", None),
        ids[2]: ("phone", "planned", None),  # no address: the call centre
        ids[3]: ("paper", "planned", None),
    }
    report = send_offline(store, tmp_path, T0 + HOUR)
    assert report.sent is not None and report.sent.counts == {"sent": 3}
    assert {r[1] for r in _rows(store).values()} == {"sent"}
    printed = []
    for manifest in (tmp_path / "print").glob("*.csv"):
        with manifest.open() as f:
            printed += list(csv.DictReader(f))
    assert sorted(int(r["person_id"]) for r in printed) == sorted([ids[1], ids[3]])
    assert {r["postcode"] for r in printed} == {"69002"}
    with next((tmp_path / "calls").glob("*.csv")).open() as f:
        called = list(csv.DictReader(f))
    assert [int(r["person_id"]) for r in called] == [ids[2]]
    assert float(called[0]["expected_value"]) == 0.2 * 300.0 - 0.5 * 4
    status = service.status(store, "spring")
    assert status["cost"] == round(2 * 0.9 + 0.5 * 4, 4)


def test_paper_and_calls_are_configured_by_url(tmp_path: Path) -> None:
    settings = Settings(paper_url=f"paper://{tmp_path}/p", calls_url=f"calls://{tmp_path}/c")
    found = channels.configured(settings)
    try:
        assert sorted(found) == ["paper", "phone", "video", "web"]
        assert isinstance(found["paper"], PaperChannel) and isinstance(found["phone"], CallChannel)
    finally:
        for channel in found.values():
            channel.close()


def test_an_sms_costs_its_segments() -> None:
    long_text = "Les soldes de printemps commencent demain dans votre boutique. " * 3
    doc = document(costs={"sms": 0.05, "phone": 0.5}, call_minutes=4)
    assert cost_of(documents.parse(doc), "sms") == 0.05
    doc["channels"]["sms"] = {"text": long_text}
    assert cost_of(documents.parse(doc), "sms") == 0.05 * gsm.segments(long_text) == 0.1
    assert cost_of(documents.parse(doc), "phone") == 2.0
