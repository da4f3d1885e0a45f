"""A campaign's next best action: who the saved model gives "do nothing" gets no message
(suppressed, reason ``next_best_action``), who it gives an action or whose features cannot be
read is planned, the control group stays held out whatever the model says, and a document
mapping no source to a feature of the model is refused naming the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from campaign_world import T0, add_people, document

from action_model_world import kept, recency
from surmesure.collect import sink
from surmesure.deliver import documents, plan
from surmesure.errors import InvalidInput
from surmesure.experiments.assign import variants_of
from surmesure.store import Store, schema

NBA = {
    "model": "offer",
    "min_reliability": 0,
    "features": {"recency": {"metric": "recency_days"}, "zip": {"trait": "zip_code"}},
}


def _zip(store: Store, person_id: int, value: str) -> None:
    with store.begin() as conn:
        sink.write_traits(
            store,
            conn,
            record_keys=[f"{person_id}:zip_code"],
            person_ids=[person_id],
            node_ids=[person_id],
            traits=[{"zip_code": value}],
            sources=["crm"],
            observed_at=[T0 - timedelta(days=1)],
            reliabilities=[0.9],
        )


def _rows(store: Store) -> dict[int, tuple[str, str | None]]:
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(sa.select(m.c.person_id, m.c.status, m.c.reason))
        return {int(r[0]): (r[1], r[2]) for r in rows}


def test_who_the_model_gives_nothing_gets_no_message(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept(monkeypatch, store, tmp_path)
    zips = {1: "Rural", 2: "Urban", 3: "Rural", 4: "Urban"}
    ids = add_people(store, tmp_path, 4)
    for i, z in zips.items():
        _zip(store, ids[i], z)
    for i, days in ((1, 2), (2, 11), (3, 6)):  # men's mail, women's mail, nothing; 4: missing
        recency(store, ids[i], days, T0)
    documents.save(store, documents.parse(document(next_best_action=NBA)), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    rows = _rows(store)
    assert rows[ids[1]] == ("planned", None)
    assert rows[ids[2]] == ("planned", None)
    assert rows[ids[3]] == ("suppressed", "next_best_action")
    assert rows[ids[4]] == ("planned", None)  # recency missing: the campaign's content


def test_the_control_group_stays_held_out_whatever_the_model_says(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept(monkeypatch, store, tmp_path)
    n = 40
    ids = add_people(store, tmp_path, n)
    for i in range(1, n + 1):
        _zip(store, ids[i], "Rural")
        recency(store, ids[i], 2 if i % 2 else 6, T0)  # odd: an action; even: nothing
    doc = documents.parse(document(next_best_action=NBA, control=0.5))
    documents.save(store, doc, T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        result = plan.plan(store, conn, definition, version, T0)
        plan.record(store, conn, result, T0)
        experiment_ = plan.experiment_of(definition)
    rows = _rows(store)
    people = [ids[i] for i in range(1, n + 1)]
    assert experiment_ is not None
    variant = variants_of(experiment_, np.asarray(people, dtype=np.int64))
    control = {p for p, v in zip(people, variant.tolist(), strict=True) if v == 0}
    assert control and len(control) < n
    for i in range(1, n + 1):
        p = ids[i]
        if p in control:
            assert rows[p] == ("held_out", "control")
        elif i % 2:
            assert rows[p] == ("planned", None)
        else:
            assert rows[p] == ("suppressed", "next_best_action")


def test_a_feature_the_document_does_not_map_is_refused_naming_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept(monkeypatch, store, tmp_path)
    short = {**NBA, "features": {"recency": {"metric": "recency_days"}}}
    with store.connect() as conn, pytest.raises(InvalidInput) as refused:
        documents.check_references(
            conn, documents.parse(document(next_best_action=short)), tmp_path
        )
    assert refused.value.field == "next_best_action.features.zip"
    with pytest.raises(InvalidInput) as bad:
        documents.parse(
            document(next_best_action={**NBA, "features": {"zip": {"metric": "zipcode"}}})
        )
    assert bad.value.field.startswith("next_best_action.features.zip")
