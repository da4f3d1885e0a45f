"""The batch reader of a send gives each person the audience the one-person reader of a
decision gives (consents, traits limited to those asked for, memberships, opt-out)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from campaign_world import T0, add_people, consent

from surmesure.decide.audience import load_audience
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
