"""The guardrails that read what came back and what was bought: a hard bounce or a complaint
suppresses the e-mail address (``bounced`` / ``complained``), a recent complaint holds back
every channel, who just bought the featured products is not chased (``just_bought``), and who
reached a cap gets no more (``frequency_cap``); each at planning and again at send time."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from campaign_world import HOUR, T0, add_people, document
from cascade_world import bought, reported, send_offline, sent

from surmesure.deliver import documents, plan, service
from surmesure.store import Store, schema

DAY = 24 * HOUR


def _rows(store: Store) -> dict[int, tuple[str, str, str | None]]:
    m = schema.messages
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.person_id, m.c.channel, m.c.status, m.c.reason).where(
                m.c.campaign == "spring"
            )
        )
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}


def _plan(store: Store, **change: object) -> dict[int, tuple[str, str, str | None]]:
    documents.save(store, documents.parse(document(**change)), T0)
    with store.begin() as conn:
        definition, version = documents.get(conn, "spring")
        plan.record(store, conn, plan.plan(store, conn, definition, version, T0), T0)
    return _rows(store)


def test_bounces_and_complaints_suppress_the_address(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 6, phones={2, 4})
    reported(store, ids[1], "bounced", T0 - 30 * DAY)  # no phone: nowhere else to go
    reported(store, ids[2], "bounced", T0 - 30 * DAY)  # has a phone: the SMS
    reported(store, ids[3], "complained", T0 - 30 * DAY)  # long ago: still no e-mail
    reported(store, ids[4], "complained", T0 - 30 * DAY)
    reported(store, ids[5], "delayed", T0 - 30 * DAY)  # a soft bounce suppresses nothing
    rows = _plan(store)
    assert rows == {
        ids[1]: ("email", "suppressed", "bounced"),
        ids[2]: ("sms", "planned", None),
        ids[3]: ("email", "suppressed", "complained"),
        ids[4]: ("sms", "planned", None),
        ids[5]: ("email", "planned", None),
        ids[6]: ("email", "planned", None),
    }


def test_no_marketing_on_any_channel_soon_after_a_complaint(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 3, phones={1, 2, 3})
    reported(store, ids[1], "complained", T0 - 10 * HOUR)  # within 72 hours: nothing at all
    reported(store, ids[2], "complained", T0 - 100 * HOUR)  # after: the SMS
    rows = _plan(store)
    # the row names the channel it would have taken: e-mail is closed to a complainer
    assert rows[ids[1]] == ("sms", "suppressed", "complained")
    assert rows[ids[2]] == ("sms", "planned", None)
    assert rows[ids[3]] == ("email", "planned", None)
    status = service.status(store, "spring")
    assert status["reasons"] == {"suppressed:complained": 1}


def test_who_just_bought_the_featured_category_is_not_chased(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 4)
    bought(store, ids[1], "SHOE1", "shoes", T0 - 3 * DAY)  # the featured category, lately
    bought(store, ids[2], "SHOE2", "shoes", T0 - 40 * DAY)  # too long ago
    bought(store, ids[3], "HAT1", "hats", T0 - 2 * DAY)  # another category
    bought(store, ids[4], "BAG9", "bags", T0 - 1 * DAY)  # a featured product
    rows = _plan(store, featured={"categories": ["shoes"], "products": ["BAG9"], "days": 14})
    assert rows == {
        ids[1]: ("email", "suppressed", "just_bought"),
        ids[2]: ("email", "planned", None),
        ids[3]: ("email", "planned", None),
        ids[4]: ("email", "suppressed", "just_bought"),
    }


def test_the_guardrails_are_read_again_at_send_time(store: Store, tmp_path: Path) -> None:
    ids = add_people(store, tmp_path, 5, no_email={1, 2, 3, 4, 5}, phones={1, 2, 3, 4, 5})
    sent(store, ids[5], T0 - 2 * HOUR)  # one of the two a day the campaign allows
    change = {
        "channels": {"phone": {"text": "Bonjour, -20% sur les chaussures cette semaine."}},
        "policy": {"order": ["phone"]},
        "featured": {"categories": ["shoes"]},
        "caps": {"per_day": 2, "channels": {"phone": {"per_week": 1}}},
    }
    rows = _plan(store, **change)
    assert {r[1] for r in rows.values()} == {"planned"}
    # after planning: a purchase, a complaint, an old bounce that matters only for e-mail, and
    # another campaign's message that reached the cap (those of the reports count one each)
    bought(store, ids[1], "SHOE1", "shoes", T0 + HOUR)
    reported(store, ids[2], "complained", T0 + HOUR)
    reported(store, ids[3], "bounced", T0 + HOUR)
    sent(store, ids[5], T0 + HOUR, campaign="autumn")
    sent(store, ids[4], T0 + HOUR, campaign="autumn", channel="phone")  # once a week by phone
    send_offline(store, tmp_path, T0 + 2 * HOUR)
    rows = _rows(store)
    assert rows[ids[1]] == ("phone", "suppressed", "just_bought")
    assert rows[ids[2]] == ("phone", "suppressed", "complained")
    assert rows[ids[3]] == ("phone", "sent", None)
    assert rows[ids[4]] == ("phone", "suppressed", "frequency_cap")
    assert rows[ids[5]] == ("phone", "suppressed", "frequency_cap")
    reasons = service.status(store, "spring")["reasons"]
    assert reasons["suppressed:frequency_cap"] == 2
