"""Topics and pauses in decisions: a person who paused marketing gets no marketing decision until
the pause ends (suppressed, reason ``paused``), then gets them again; a template of a topic the
person left is suppressed (reason ``topic_refused``) and an offer block of that topic is not
offered; service content is not held back; the one-statement path, the serving view and the
full snapshot reader agree. A template naming a topic the preference centre does not offer is
refused."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from decide_world import DAY, NOW, FakeRecommender, add_person

from surmesure.decide.content import CompiledTemplate
from surmesure.decide.library import parse_template
from surmesure.decide.service import DecideRequest, decide
from surmesure.decide.serving import Serving
from surmesure.domain.templates import TemplateDefinition
from surmesure.errors import InvalidInput
from surmesure.store import Store, schema

TRAITS = {"first_name": ("Anna", "crm", 0.9, NOW - 2 * DAY)}

OFFERS = CompiledTemplate(
    TemplateDefinition.model_validate(
        {
            "name": "offers_mail",
            "placement": "offers_mail",
            "channel": "email",
            "topic": "offers",
            "variants": [{"name": "default", "body": "Bonjour {{ person.first_name }}"}],
            "fields": {"first_name": {"trait": "first_name"}},
        }
    )
)
NEWS = CompiledTemplate(
    TemplateDefinition.model_validate(
        {
            "name": "news_banner",
            "placement": "news_banner",
            "channel": "web",
            "topic": "news",
            "variants": [{"name": "default", "body": "Les nouvelles"}],
            "blocks": [
                {"content_id": "sale", "title": "Soldes", "topic": "offers"},
                {"content_id": "story", "title": "Notre histoire"},
            ],
        }
    )
)
RECEIPT = CompiledTemplate(
    TemplateDefinition.model_validate(
        {
            "name": "receipt",
            "placement": "receipt",
            "channel": "email",
            "purpose": "service",
            "variants": [{"name": "default", "body": "Votre commande"}],
        }
    )
)
TEMPLATES = {t.definition.placement: t for t in (OFFERS, NEWS, RECEIPT)}


def _prefer(
    store: Store, person_id: int, kind: str, value: str, at: datetime, *,
    name: str = "", until: datetime | None = None,
) -> None:  # fmt: skip
    with store.begin() as conn:
        conn.execute(
            schema.preferences.insert().values(
                preference_id=uuid.uuid4().hex, person_id=person_id, node_id=person_id,
                kind=kind, name=name, value=value, until=until, recorded_at=at,
                source="preference_centre", evidence="preference centre link abc (fr)",
            )
        )  # fmt: skip


def _world(store: Store) -> None:
    for pid in (1, 2, 3, 4):
        add_person(store, pid, TRAITS, identifiers={"customer_id": f"C{pid}"})
    _prefer(store, 1, "pause", "on", NOW - 2 * DAY, until=NOW + 5 * DAY)
    _prefer(store, 2, "topic", "out", NOW - 3 * DAY, name="offers")
    _prefer(store, 3, "pause", "on", NOW - 9 * DAY, until=NOW - DAY)  # over by itself
    _prefer(store, 3, "topic", "out", NOW - 9 * DAY, name="news")
    _prefer(store, 3, "topic", "in", NOW - 4 * DAY, name="news")  # came back
    _prefer(store, 4, "pause", "on", NOW + DAY, until=NOW + 9 * DAY)  # not yet chosen


# (customer, placement, days after NOW)
REQUESTS = [
    ("C1", "offers_mail", 0),  # paused
    ("C1", "news_banner", 0),  # paused: every channel, every topic
    ("C1", "receipt", 0),  # service: not held back
    ("C1", "offers_mail", 6),  # the pause is over
    ("C2", "offers_mail", 0),  # left offers
    ("C2", "news_banner", 0),  # still reads news, but not the offers block
    ("C3", "news_banner", 0),
    ("C4", "offers_mail", 0),
]


def _run(store: Store, serving: Serving | None) -> list[dict[str, Any]]:
    out = []
    for i, (customer, placement, days) in enumerate(REQUESTS):
        result = decide(
            store,
            DecideRequest(placement, customer_id=customer),
            TEMPLATES[placement],
            now=NOW + days * DAY + i * DAY / 86_400,
            recommender=FakeRecommender(),
            serving=serving,
        )
        out.append({k: v for k, v in result.items() if k != "decision_id"})
    return out


def _reasons(results: list[dict[str, Any]]) -> list[str | None]:
    return [(r.get("suppressed") or {}).get("reason") for r in results]


def test_a_pause_and_a_left_topic_hold_marketing_back(store: Store) -> None:
    _world(store)
    direct = _run(store, None)
    assert _reasons(direct) == [
        "paused", "paused", None, None, "topic_refused", None, None, None
    ]  # fmt: skip
    assert direct[0]["suppressed"] == {"reason": "paused", "purpose": "marketing",
                                       "channel": "email"}  # fmt: skip
    assert direct[0]["content"] is None and "Anna" not in str(direct[0])
    assert "paused marketing" in direct[0]["explanation"]["person"]
    assert direct[2]["content"]["body"] == "Votre commande"
    assert direct[3]["content"]["body"] == "Bonjour Anna"  # after the pause
    assert direct[4]["explanation"]["content"]["suppressed"] == "topic_refused"
    assert [o["content_id"] for o in direct[5]["offers"]] == ["story"]
    assert {"content_id": "sale", "picked": False, "reason": "topic_refused"} in direct[5][
        "explanation"
    ]["offers"]
    assert [o["content_id"] for o in direct[6]["offers"]] == ["sale", "story"]
    assert direct[7]["content"]["body"] == "Bonjour Anna"


def test_the_serving_view_holds_back_as_the_store_does(store: Store) -> None:
    _world(store)
    direct = _run(store, None)
    with store.begin() as conn:
        conn.execute(schema.exposures.delete())
        conn.execute(schema.decisions.delete())
    served = _run(store, Serving(store))
    assert served == direct
    assert _reasons(served)[:2] == ["paused", "paused"]


def test_the_snapshot_reader_holds_back_too(store: Store) -> None:
    """A rule reading events takes the full reader (one query per part): same reasons."""
    _world(store)
    document = OFFERS.definition.document()
    document["variants"] = [
        {"name": "active", "when": {"event": {"within_days": 30}}, "body": "Hello"},
        {"name": "default", "body": "Bonjour"},
    ]
    compiled = CompiledTemplate(TemplateDefinition.model_validate(document))
    assert "event" in compiled.needs
    results = [
        decide(
            store,
            DecideRequest("offers_mail", customer_id=c),
            compiled,
            now=at,
            use_default_recommender=False,
        )
        for c, at in (("C1", NOW), ("C1", NOW + 6 * DAY), ("C2", NOW), ("C3", NOW))
    ]
    assert _reasons(results) == ["paused", None, "topic_refused", None]


def test_a_topic_must_be_one_the_preference_centre_offers() -> None:
    text = "name: t\nplacement: p\ntopic: {topic}\nvariants:\n  - name: default\n    body: x\n"
    assert parse_template(text.format(topic="offers"), "t.yaml").topic == "offers"
    with pytest.raises(InvalidInput, match="'ofers' is not a preference centre topic") as bad:
        parse_template(text.format(topic="ofers"), "t.yaml")
    assert bad.value.field == "topic" and "new_products" in (bad.value.hint or "")
    block = text.format(topic="news") + "blocks:\n  - content_id: b\n    topic: nope\n"
    with pytest.raises(InvalidInput) as bad_block:
        parse_template(block, "t.yaml")
    assert bad_block.value.field == "blocks.0.topic"
