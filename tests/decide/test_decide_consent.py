"""Marketing consent in decisions: a person who refused marketing on a channel gets no marketing
decision there (suppressed, with the reason), on every path a decision takes (one statement,
the serving view, the full snapshot reader), and nothing is shown, offered or recorded as
exposed; other channels and other people are decided as before."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from decide_world import DAY, NOW, FakeRecommender, add_person, set_consent

from surmesure.decide.content import CompiledTemplate
from surmesure.decide.library import EXAMPLES, Library
from surmesure.decide.service import DecideRequest, decide
from surmesure.decide.serving import Serving
from surmesure.domain.templates import TemplateDefinition
from surmesure.store import Store, schema

LIBRARY = Library(EXAMPLES)
SUPPRESSED = {"reason": "opted_out_marketing", "purpose": "marketing", "channel": "email"}
TRAITS = {"first_name": ("Anna", "crm", 0.9, NOW - 2 * DAY)}


def _world(store: Store) -> None:
    add_person(store, 1, TRAITS, identifiers={"customer_id": "C1"}, segments=["loyal_customers"])
    set_consent(store, 1, True, NOW - 30 * DAY, purpose="marketing", channel="email")
    set_consent(store, 1, False, NOW - 3 * DAY, purpose="marketing", channel="email")
    add_person(store, 2, TRAITS, identifiers={"customer_id": "C2"})
    set_consent(store, 2, False, NOW - 9 * DAY, purpose="marketing", channel="any")
    set_consent(store, 2, True, NOW - 3 * DAY, purpose="marketing", channel="email")
    add_person(store, 3, TRAITS, identifiers={"customer_id": "C3"})  # no record: not refused
    add_person(store, 4, TRAITS, identifiers={"customer_id": "C4"})
    set_consent(store, 4, False, NOW + DAY, purpose="marketing", channel="email")  # not yet


REQUESTS = [
    DecideRequest("email_weekly", customer_id="C1"),  # refused e-mail
    DecideRequest("home_banner", customer_id="C1"),  # e-mail only: the web is still open
    DecideRequest("email_weekly", customer_id="C2"),  # refused all, then re-admitted e-mail
    DecideRequest("home_banner", customer_id="C2"),  # ...but not the web
    DecideRequest("email_weekly", customer_id="C3"),
    DecideRequest("email_weekly", customer_id="C4"),  # a refusal recorded later: not in force
    DecideRequest("home_banner", customer_id="C1", context={"channel": "email"}),
]


def _run(store: Store, serving: Serving | None) -> list[dict[str, Any]]:
    out = []
    for i, request in enumerate(REQUESTS):
        compiled = LIBRARY.for_placement(request.placement)
        result = decide(
            store,
            request,
            compiled,
            now=NOW + i * DAY / 86_400,
            recommender=FakeRecommender(),
            serving=serving,
        )
        out.append({k: v for k, v in result.items() if k != "decision_id"})
    return out


def _exposed(store: Store) -> list[int]:
    e = schema.exposures
    with store.connect() as conn:
        return sorted({int(r[0]) for r in conn.execute(sa.select(e.c.person_id))})


def test_an_opted_out_person_gets_no_marketing_decision_on_that_channel(store: Store) -> None:
    _world(store)
    direct = _run(store, None)
    suppressed = [r.get("suppressed") for r in direct]
    web = dict(SUPPRESSED, channel="web")
    assert suppressed == [SUPPRESSED, None, None, web, None, None, SUPPRESSED]
    for result in (direct[0], direct[3], direct[6]):
        assert result["content"] is None
        assert result["offers"] == [] and result["products"] == []
        assert "Anna" not in str(result)
    assert direct[1]["content"]["variant"] and direct[1]["products"]
    assert direct[2]["content"]["body"].startswith("Bonjour Anna")
    # decisions are recorded (``why`` shows them); exposures only for what was shown
    with store.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(schema.decisions))
        assert count.scalar_one() == len(REQUESTS)
        e = schema.exposures
        channels = {
            (int(p), str(c))
            for p, c in conn.execute(sa.select(e.c.person_id, e.c.placement).distinct())
        }
    assert (1, "email_weekly") not in channels and (2, "home_banner") not in channels
    assert (1, "home_banner") in channels and (2, "email_weekly") in channels
    assert _exposed(store) == [1, 2, 3, 4]


def test_the_serving_view_suppresses_as_the_store_does(store: Store) -> None:
    _world(store)
    direct = _run(store, None)
    with store.begin() as conn:
        conn.execute(schema.exposures.delete())
        conn.execute(schema.decisions.delete())
    served = _run(store, Serving(store))
    assert served == direct
    assert [r.get("suppressed") is not None for r in served] == [
        True, False, False, True, False, False, True
    ]  # fmt: skip


def test_the_snapshot_reader_suppresses_too(store: Store) -> None:
    """A rule reading events takes the full reader (one query per part): same refusal."""
    _world(store)
    definition = TemplateDefinition.model_validate(
        {
            "name": "events_mail",
            "placement": "events_mail",
            "channel": "email",
            "variants": [
                {"name": "active", "when": {"event": {"within_days": 30}}, "body": "Hello"},
                {"name": "default", "body": "Bonjour"},
            ],
        }
    )
    compiled = CompiledTemplate(definition)
    assert "event" in compiled.needs
    refused = decide(store, DecideRequest("events_mail", customer_id="C1"), compiled, now=NOW,
                     use_default_recommender=False)  # fmt: skip
    kept = decide(store, DecideRequest("events_mail", customer_id="C3"), compiled, now=NOW,
                  use_default_recommender=False)  # fmt: skip
    assert refused["suppressed"] == SUPPRESSED and refused["content"] is None
    assert "suppressed" not in kept and kept["content"]["body"] == "Bonjour"
    service = TemplateDefinition.model_validate({**definition.document(), "purpose": "service"})
    receipt = decide(store, DecideRequest("events_mail", customer_id="C1"),
                     CompiledTemplate(service), now=NOW, use_default_recommender=False)  # fmt: skip
    assert "suppressed" not in receipt and receipt["content"]["body"] == "Bonjour"


def test_an_email_template_asked_for_the_web_is_still_an_email(store: Store) -> None:
    """The context's channel cannot launder a refusal: a marketing e-mail decided 'for the web'
    is suppressed for a person who refused marketing e-mail (both channels are checked)."""
    add_person(store, 1, TRAITS, identifiers={"customer_id": "C1"})
    set_consent(store, 1, False, NOW - 3 * DAY, purpose="marketing", channel="email")
    results = [
        decide(
            store,
            DecideRequest("email_weekly", customer_id="C1", context=context),
            LIBRARY.for_placement("email_weekly"),
            now=NOW,
            recommender=FakeRecommender(),
        )
        for context in ({}, {"channel": "web"}, {"channel": "sms"})
    ]
    assert [r["content"] for r in results] == [None, None, None]
    assert all("Anna" not in str(r) for r in results)
    assert [r["suppressed"]["channel"] for r in results] == ["email", "email", "email"]


def test_an_email_template_asked_for_the_web_keeps_a_personalization_refusal(
    store: Store,
) -> None:
    """Likewise for personalization: refused on e-mail, an e-mail decided 'for the web' is
    neutral, on every path a decision takes."""
    add_person(store, 1, TRAITS, identifiers={"customer_id": "C1"})
    set_consent(store, 1, False, NOW - 3 * DAY, purpose="personalization", channel="email")
    for serving in (None, Serving(store)):
        results = [
            decide(
                store,
                DecideRequest("email_weekly", customer_id="C1", context=context),
                LIBRARY.for_placement("email_weekly"),
                now=NOW,
                recommender=FakeRecommender(),
                serving=serving,
            )
            for context in ({}, {"channel": "web"})
        ]
        assert [r["explanation"]["content"]["opted_out"] for r in results] == [True, True]
        assert all("Anna" not in str(r["content"]) for r in results)
