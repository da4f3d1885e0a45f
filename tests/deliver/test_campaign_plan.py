"""Planning a campaign: each guardrail suppresses with its reason, the control group and the
global holdout are held out through the experiment engine, a dry run writes nothing, and
planning again adds only newcomers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa
from campaign_world import HOUR, T0, add_people, consent, document, prefer, refuse

from surmesure.deliver import documents, plan, service
from surmesure.errors import Conflict
from surmesure.experiments.assign import variants_of
from surmesure.store import Store, schema


def _rows(store: Store) -> dict[int, tuple[str, str, str | None]]:
    """The campaign's rows, by person (those of the earlier campaigns left out)."""
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.person_id, m.c.channel, m.c.status, m.c.reason).where(
                m.c.campaign != "earlier"
            )
        )
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}


def _save(store: Store, **change: object) -> None:
    documents.save(store, documents.parse(document(**change)), T0)


def _sent_before(store: Store, person_id: int, channel: str = "email", hours: int = 1) -> None:
    """A message of another campaign sent to ``person_id`` on ``channel`` ``hours`` before
    T0."""
    row = {
        "message_id": f"{person_id}-{channel}".ljust(32, "x"),
        "campaign": "earlier",
        "version": 1,
        "person_id": person_id,
        "channel": channel,
        "step": 0,
        "status": "sent",
        "attempts": 1,
        "planned_at": T0 - (hours + 1) * HOUR,
        "updated_at": T0 - hours * HOUR,
        "sent_at": T0 - hours * HOUR,
    }
    with store.begin() as conn:
        store.bulk_insert(conn, schema.messages, pa.Table.from_pylist([row]))


def test_each_guardrail_suppresses_with_its_reason(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 10, no_email={4, 5}, phones={5, 6})
    refuse(store, ids[1], "email")  # refused e-mail, no phone: nowhere to go
    prefer(store, ids[2], "pause", "on", until=T0 + 240 * HOUR)
    prefer(store, ids[3], "topic", "out", name="offers")
    refuse(store, ids[6], "email")  # refused e-mail, has a phone: SMS
    refuse(store, ids[8], "any")
    _sent_before(store, ids[7])
    _sent_before(store, ids[5], "sms", hours=72)  # one SMS a week at most
    _sent_before(store, ids[9], "sms", hours=72)  # ...which does not hold e-mail back
    _save(store, caps={"per_day": 1, "channels": {"sms": {"per_week": 1}}})

    dry = service.send(store, "spring", T0, dry_run=True)
    assert _rows(store) == {}  # a dry run writes nothing
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    rows = _rows(store)
    expected = {
        ids[1]: ("email", "suppressed", "opted_out_marketing"),
        ids[2]: ("email", "suppressed", "paused"),
        ids[3]: ("email", "suppressed", "topic_refused"),
        ids[4]: ("email", "suppressed", "unreachable"),
        ids[5]: ("sms", "suppressed", "frequency_cap"),  # no e-mail, a phone: capped
        ids[6]: ("sms", "planned", None),
        ids[7]: ("email", "suppressed", "frequency_cap"),
        ids[8]: ("email", "suppressed", "opted_out_marketing"),
        ids[9]: ("email", "planned", None),
        ids[10]: ("email", "planned", None),
    }
    assert {p: rows[p] for p in expected} == expected
    assert dry.plan.counts == {
        "planned": 3,
        "suppressed:frequency_cap": 2,
        "suppressed:opted_out_marketing": 2,
        "suppressed:paused": 1,
        "suppressed:topic_refused": 1,
        "suppressed:unreachable": 1,
    }
    assert dry.plan.by_channel == {"email": 2, "sms": 1}


def test_a_channel_at_its_cap_gives_way_to_the_next_one(store: Store, tmp_path: Path) -> None:
    """A person at their SMS cap gets the policy's next channel they can be reached on; the
    cap suppresses only where none is left."""
    ids = add_people(store, tmp_path, 3, no_email={3}, phones={1, 2, 3})
    for person in ids.values():
        _sent_before(store, person, "sms", hours=72)
    _sent_before(store, ids[2], "email", hours=72)
    _save(
        store,
        policy={"order": ["sms", "email"]},
        caps={"channels": {"sms": {"per_week": 1}, "email": {"per_week": 1}}},
    )
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        result = plan.plan(store, conn, definition, version, T0)
        plan.record(store, conn, result, T0)
    rows = _rows(store)
    assert rows[ids[1]] == ("email", "planned", None)  # SMS capped: e-mail instead
    assert rows[ids[2]][1:] == ("suppressed", "frequency_cap")  # both capped
    assert rows[ids[3]][1:] == ("suppressed", "frequency_cap")  # no e-mail to fall back on
    assert result.by_channel == {"sms": 0, "email": 1}


def test_consent_granted_requires_a_grant(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 3)
    consent(store, ids[2], "marketing", "email", True, T0 - HOUR)
    _save(store, consent="granted", channels={"email": {"text": "x"}}, policy=None)
    report = service.send(store, "spring", T0, dry_run=True)
    assert report.plan.counts == {"planned": 1, "suppressed:not_granted": 2}


def test_the_control_group_and_the_holdout_are_held_out_and_recorded(
    store: Store, tmp_path: Path
) -> None:
    ids = add_people(store, tmp_path, 60)
    _save(store, control=0.3, holdout=0.1, channels={"email": {"text": "x"}}, policy=None)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        result = plan.plan(store, conn, definition, version, T0)
    assert result.experiment is not None
    service.send(store, "spring", T0, channels={"email": _Nowhere()}, folder=tmp_path)
    people = np.asarray(sorted(ids.values()), dtype=np.int64)
    variant = variants_of(result.experiment, people)
    rows = _rows(store)
    control = {int(p) for p, v in zip(people, variant, strict=True) if v == 0}
    holdout = {int(p) for p, v in zip(people, variant, strict=True) if v == -1}
    assert control and holdout  # both groups exist at these shares
    for p in people.tolist():
        want = "control" if p in control else "global_holdout" if p in holdout else None
        assert rows[p][1:] == (("held_out", want) if want else ("failed", "no route")), p
    t = schema.experiment_assignments
    with store.connect() as conn:
        assigned = dict(
            conn.execute(
                sa.select(t.c.person_id, t.c.variant).where(t.c.experiment == "campaign_spring")
            ).all()
        )
    assert {p for p, v in assigned.items() if v == "control"} == control
    assert set(assigned) == set(people.tolist()) - holdout
    _save(store, control=0.2, holdout=0.1, channels={"email": {"text": "x"}}, policy=None)
    with pytest.raises(Conflict) as caught:
        service.send(store, "spring", T0, channels={"email": _Nowhere()}, folder=tmp_path)
    assert caught.value.field == "control" and "new name" in (caught.value.hint or "")


def test_planning_again_adds_only_newcomers(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 5)
    _save(store, channels={"email": {"text": "x"}}, policy=None)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        first = plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    refuse(store, ids[1], "email", at=T0)  # a later refusal does not rewrite the plan...
    with store.begin() as conn:
        again = plan.plan(store, conn, definition, version, T0 + HOUR)
        added = plan.record(store, conn, again, T0 + HOUR)
    assert (first, again.already, added) == (5, 5, 0)
    assert _rows(store)[ids[1]] == ("email", "planned", None)  # ...the sender checks again


def test_quiet_hours_delay_a_message_to_the_morning() -> None:
    from surmesure.domain.campaigns import QuietHours

    quiet = QuietHours(start=21, end=8, timezone="Europe/Paris")
    night = T0.replace(hour=22)  # 23:00 in Paris
    assert plan.due_at(night, quiet) == T0.replace(hour=7) + 24 * HOUR  # 08:00 next morning
    assert plan.due_at(T0, quiet) == T0


class _Nowhere:
    """A channel that refuses everything for good (to see who would have been sent)."""

    name = "email"

    def send(self, messages):  # type: ignore[no-untyped-def]
        from surmesure.deliver.channel import Delivery

        return [Delivery(m.message_id, "failed", detail="no route") for m in messages]

    def close(self) -> None:
        pass


def test_quiet_hours_are_the_persons_own(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 2)
    row = {
        "record_key": "tz1",
        "name": "time_zone",
        "value": '"America/New_York"',
        "source": "crm",
        "observed_at": T0 - HOUR,
        "reliability": 0.9,
        "person_id": ids[2],
        "node_id": ids[2],
    }
    with store.begin() as conn:
        store.bulk_insert(conn, schema.traits, pa.Table.from_pylist([row]))
    quiet = {"quiet_hours": {"start": 21, "end": 8, "timezone": "Europe/Paris"}}
    _save(store, window=quiet, channels={"email": {"text": "x"}}, policy=None)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
        m = schema.messages
        due = dict(conn.execute(sa.select(m.c.person_id, m.c.next_attempt_at)).all())
    assert due[ids[1]] == T0  # 11:00 in Paris: now
    assert due[ids[2]] == T0.replace(hour=13)  # 05:00 in New York: at 08:00 there
