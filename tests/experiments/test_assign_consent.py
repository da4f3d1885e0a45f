"""Assignment honours marketing consent: who refused marketing on the experiment's channel is
never assigned (counted as opted out); a refusal on another channel, a refusal overturned by a
later grant, or one recorded after the assignment time leaves a person in. Preferences hold
back too: a person who paused marketing, or left the experiment's topic, is not assigned."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from surmesure.errors import InvalidInput
from surmesure.experiments import assign, save
from surmesure.experiments.definitions import parse
from surmesure.protect import marketing
from surmesure.protect.consent import consent_row, record_consents
from surmesure.store import Store
from surmesure.store.schema import experiment_assignments
from world import DAY, T0, add_people, definition


def _refuse(store: Store, rows: list[tuple[int, str, bool, int]]) -> None:
    """(person, channel, granted, days after T0)."""
    with store.begin() as conn:
        record_consents(
            conn,
            [
                consent_row(
                    p, "marketing", ch, g, source="crm", evidence=None, recorded_at=T0 + d * DAY
                )
                for p, ch, g, d in rows
            ],
        )


def _assigned(store: Store, name: str) -> set[int]:
    t = experiment_assignments
    with store.connect() as conn:
        rows = conn.execute(sa.select(t.c.person_id).where(t.c.experiment == name))
        return {int(r[0]) for r in rows}


def test_email_marketing_opt_outs_are_not_assigned_to_an_email_experiment(store: Store) -> None:
    ids = list(range(1, 401))
    add_people(store, ids)
    refused_email = list(range(1, 101))  # refused e-mail marketing
    _refuse(store, [(p, "email", False, -5) for p in refused_email])
    _refuse(store, [(p, "any", False, -5) for p in range(101, 121)])  # refused every channel
    _refuse(store, [(p, "sms", False, -5) for p in range(121, 141)])  # refused sms only
    _refuse(store, [(p, "email", True, -1) for p in range(1, 11)])  # re-admitted e-mail later
    _refuse(store, [(p, "email", False, 3) for p in range(141, 161)])  # refuses after T0
    everyone = {"variants": [{"name": "control", "weight": 0.5}, {"name": "offer", "weight": 0.5}]}
    mail = definition(name="mail_test", holdout=0.0, **everyone)
    assert mail.channel == "email"  # the default
    sms = definition(name="sms_test", holdout=0.0, channel="sms", **everyone)
    save(store, mail)
    save(store, sms)

    report = assign(store, "mail_test", now=T0)
    left_out = set(range(11, 121))
    assert report.opted_out == len(left_out) and report.audience == len(ids)
    assert _assigned(store, "mail_test") == set(ids) - left_out
    assert report.newly_assigned == len(ids) - len(left_out)

    by_sms = assign(store, "sms_test", now=T0)
    assert _assigned(store, "sms_test") == set(ids) - set(range(101, 141))
    assert by_sms.opted_out == 40

    later = assign(store, "mail_test", now=T0 + 5 * DAY)  # 141..160 refused meanwhile
    assert later.opted_out == len(left_out) + 20
    assert later.newly_assigned == 0  # nobody new; those assigned before keep their variant
    assert _assigned(store, "mail_test") == set(ids) - left_out


def test_an_unknown_channel_is_refused_with_the_field() -> None:
    document = definition().document() | {"channel": "pigeon"}
    with pytest.raises(InvalidInput) as caught:
        parse(document)
    assert caught.value.field == "channel" and "email" in str(caught.value.hint)


def _prefer(store: Store, rows: list[tuple[int, str, str, str, int, int | None]]) -> None:
    """(person, kind, name, value, days after T0, pause ends days after T0)."""
    with store.begin() as conn:
        marketing.record(
            conn,
            [
                marketing.preference_row(
                    p, kind, value, name=name, source="call_centre", evidence="call",
                    recorded_at=T0 + d * DAY, until=None if end is None else T0 + end * DAY,
                    pause_max_days=store.settings.preference_pause_max_days,
                )
                for p, kind, name, value, d, end in rows
            ],
        )  # fmt: skip


def test_paused_people_and_those_who_left_the_topic_are_not_assigned(store: Store) -> None:
    ids = list(range(1, 201))
    add_people(store, ids)
    _prefer(store, [(p, "pause", "", "on", -5, 30) for p in range(1, 21)])  # paused at T0
    _prefer(store, [(p, "pause", "", "on", -40, -10) for p in range(21, 31)])  # pause over
    _prefer(store, [(p, "pause", "", "off", -1, None) for p in range(11, 21)])  # pause lifted
    _prefer(store, [(p, "topic", "offers", "out", -5, None) for p in range(31, 51)])
    _prefer(store, [(p, "topic", "offers", "in", -2, None) for p in range(31, 36)])  # back in
    _prefer(store, [(p, "topic", "news", "out", -5, None) for p in range(51, 61)])  # other topic
    everyone = {"variants": [{"name": "control", "weight": 0.5}, {"name": "offer", "weight": 0.5}]}
    save(store, definition(name="offers_test", holdout=0.0, topic="offers", **everyone))
    save(store, definition(name="plain_test", holdout=0.0, **everyone))
    save(store, definition(name="odd_test", holdout=0.0, topic="pigeons", **everyone))

    offers = assign(store, "offers_test", now=T0)
    plain = assign(store, "plain_test", now=T0)

    left_out = set(range(1, 11)) | set(range(36, 51))
    assert offers.held_back == len(left_out) and offers.opted_out == 0
    assert _assigned(store, "offers_test") == set(ids) - left_out
    assert plain.held_back == 10  # only the pause holds back an experiment without a topic
    assert _assigned(store, "plain_test") == set(ids) - set(range(1, 11))
    with pytest.raises(InvalidInput) as caught:
        assign(store, "odd_test", now=T0)
    assert caught.value.field == "topic" and "offers" in str(caught.value.hint)
