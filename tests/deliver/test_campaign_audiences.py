"""The batch reader of a send gives each person the audience the one-person reader of a
decision gives (consents, traits limited to those asked for, memberships, opt-out)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
from campaign_world import T0, add_people, consent

from surmesure.decide.audience import field_metrics, load_audience
from surmesure.deliver.audiences import load_audiences
from surmesure.store import Store, schema


def test_the_batch_reader_agrees_with_the_decision_reader(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 4)
    consent(store, ids[2], "personalization", "email", False, T0)
    consent(store, ids[3], "personalization", "sms", False, T0)
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            schema.segment_members,
            pa.Table.from_pylist([{"segment": "loyal", "person_id": ids[1], "entered_at": T0}]),
        )
    people = list(ids.values())
    with store.connect() as conn:
        batch = load_audiences(conn, people, T0, 365.0, channel="email", traits={"first_name"})
        for p in people:
            one = load_audience(conn, p, T0, 365.0, channel="email")
            assert batch[p].opted_out == one.opted_out
            assert set(batch[p].consents) == set(one.consents)
            assert batch[p].segments == one.segments
            assert batch[p].traits == {k: v for k, v in one.traits.items() if k == "first_name"}
    assert batch[ids[1]].traits["first_name"].value == "Name1"
    assert batch[ids[1]].segments == {"loyal"}
    assert batch[ids[2]].opted_out and not batch[ids[2]].traits  # neutral: traits not read
    assert not batch[ids[3]].opted_out  # refused personalization on SMS only


def test_the_batch_reader_gives_the_metrics_the_fields_read_as_of_the_send(
    store: Store, tmp_path: Path
) -> None:
    """Each field metric of a batch is the one ``field_metrics`` reads: the latest derived row
    of the send's day or before (a row computed for a later day is not read yet), aged from
    when it was computed; a person without a derived row has none."""
    ids = list(add_people(store, tmp_path, 3).values())
    day = T0.date()
    rows = [
        (ids[0], day - timedelta(days=2), 120.0, 800.0),
        (ids[0], day - timedelta(days=1), 150.5, 2500.0),
        (ids[0], day + timedelta(days=1), 999.0, 9999.0),  # not yet the send's
        (ids[1], day - timedelta(days=5), 40.0, None),
    ]
    with store.begin() as conn:
        store.bulk_insert(
            conn,
            schema.derived_metrics,
            pa.table(
                {
                    "person_id": [r[0] for r in rows],
                    "computed_on": [r[1] for r in rows],
                    "computed_at": pa.array(
                        [datetime.combine(r[1], time(3)) for r in rows], pa.timestamp("us")
                    ),
                    "as_of": [r[1] for r in rows],
                    "monetary": [r[2] for r in rows],
                    "expected_value": pa.array([r[3] for r in rows], pa.float64()),
                    "horizon_days": [365] * len(rows),
                    "discount_rate": [0.1] * len(rows),
                    "window_days": [365] * len(rows),
                }
            ),
        )
    names = frozenset({"points", "clv_tier", "monetary"})
    with store.connect() as conn:
        batch = load_audiences(conn, ids, T0, 365.0, channel="email", traits=(), metrics=names)
        expected = field_metrics(conn, ids, names, T0)
    assert {p: batch[p].metrics for p in ids} == {p: expected.get(p, {}) for p in ids}
    assert batch[ids[0]].metrics["points"].value == 150
    assert batch[ids[2]].metrics == {}
