"""What a person's console page shows, gathered from the services ``surmesure person show``,
the API's ``/v1/people/{id}/why``, ``/consents`` and ``/segments`` call: the profile and its
merge history, the consents and their history, the contact preferences, the segments, the
latest derived metrics, the timeline, the decisions with their explanation and the journeys.
Layout only: no rule is decided here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from surmesure.collect.currency import stored_currency
from surmesure.decide.decisions import why
from surmesure.decide.metrics import read_latest
from surmesure.domain.traits import DEFAULT_MIN_RELIABILITY
from surmesure.journeys.service import journeys_of
from surmesure.protect import consent, marketing
from surmesure.segment.person import segments_of
from surmesure.store.engine import Store
from surmesure.unify.profile import Profile, show
from surmesure.unify.timeline import PAGE, moments

#: the derived metrics shown, by group: (column, how it reads)
METRIC_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "rfm": (
        ("rfm_segment", "text"),
        ("recency_days", "number"),
        ("frequency", "number"),
        ("monetary", "money"),
        ("r_score", "number"),
        ("f_score", "number"),
        ("m_score", "number"),
    ),
    "clv": (
        ("expected_value", "money"),
        ("expected_purchases", "decimal"),
        ("p_alive", "percent"),
        ("p_purchase_30d", "percent"),
        ("p_purchase_90d", "percent"),
    ),
    "engagement": (
        ("engagement_score", "decimal"),
        ("relational_engagement", "decimal"),
        ("transactional_engagement", "decimal"),
        ("open_rate", "percent"),
        ("click_rate", "percent"),
        ("upsell_potential", "decimal"),
    ),
    "appetence": (
        ("best_channel", "text"),
        ("appetence_email", "decimal"),
        ("appetence_sms", "decimal"),
        ("appetence_phone", "decimal"),
        ("appetence_paper", "decimal"),
        ("appetence_web", "decimal"),
    ),
    "satisfaction": (
        ("nps_last", "number"),
        ("nps_group", "text"),
        ("csat_satisfied_share", "percent"),
        ("ces_mean", "decimal"),
    ),
    "affinity": (
        ("top_category_1", "text"),
        ("top_category_2", "text"),
        ("top_category_3", "text"),
        ("preferred_store_id", "text"),
        ("preferred_store_km", "decimal"),
    ),
}
DECISIONS_SHOWN = 10


@dataclass
class PersonView:
    """Everything the person page shows; times naive UTC."""

    profile: Profile
    currency: str | None
    consents: dict[str, Any]
    segments: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    computed_at: datetime | None
    moments: list[dict[str, Any]]
    more: bool
    decisions: list[dict[str, Any]]
    journeys: list[dict[str, Any]]
    traits: list[dict[str, Any]] = field(default_factory=list)
    preferences: dict[str, Any] = field(default_factory=dict)


def person_view(
    store: Store, person_id: int, now: datetime, *, decision_days: int, offset: int = 0
) -> PersonView:
    """The page of ``person_id`` (an absorbed id: the person it was merged into) at ``now``;
    the timeline from its ``offset``-th moment. :class:`NotFound` when nobody has that id."""
    profile = show(store, str(person_id), now=now)
    root = profile.person_id
    with store.connect() as conn:
        consents = consent.consents_of(conn, str(root), now)
        latest = read_latest(conn, [root], _metric_columns(), now).get(root, {})
        currency = stored_currency(conn)
        found, more = moments(conn, root, offset=offset, limit=PAGE)
        preferences = marketing.preferences_of(conn, root, now, store.settings.preference_topics)
    segments = segments_of(store, str(root), now)["segments"]
    decisions = why(store, root, now=now, days=decision_days, limit=DECISIONS_SHOWN)
    return PersonView(
        profile=profile,
        currency=currency,
        consents=consents,
        segments=segments,
        metrics=_metric_groups(latest),
        computed_at=max((at for _, at in latest.values()), default=None),
        moments=found,
        more=more,
        decisions=[_decision(d) for d in decisions],
        journeys=journeys_of(store, root),
        traits=[_trait(t) for t in profile.traits],
        preferences=preferences,
    )


def _metric_columns() -> list[str]:
    return [column for group in METRIC_GROUPS.values() for column, _ in group]


def _metric_groups(latest: dict[str, tuple[Any, datetime]]) -> list[dict[str, Any]]:
    """Each group with its metrics that have a value (a group with none is left out)."""
    groups = []
    for name, columns in METRIC_GROUPS.items():
        rows = [
            {"name": column, "kind": kind, "value": latest[column][0]}
            for column, kind in columns
            if column in latest and latest[column][0] is not None
        ]
        if rows:
            groups.append({"name": name, "metrics": rows})
    return groups


def _trait(trait: dict[str, Any]) -> dict[str, Any]:
    """A resolved trait, with whether templates use it at their default threshold."""
    usable = (
        trait["usable_until"] is not None
        and trait["effective_reliability"] >= DEFAULT_MIN_RELIABILITY
    )
    return {**trait, "usable": usable, "shown": _shown(trait["value"])}


def _shown(value: Any) -> str:
    """A stored value as text (a list or mapping as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def _decision(found: dict[str, Any]) -> dict[str, Any]:
    """A decision as ``why`` reads it, with the reasons its explanation gives in short
    (``reasons``: ``(what, reason)`` pairs) and the whole explanation as indented JSON."""
    explanation = found.get("explanation") or {}
    result = found.get("result") or {}
    reasons: list[tuple[str, str]] = []
    content = explanation.get("content") if isinstance(explanation, dict) else None
    if isinstance(content, dict):
        variant = content.get("variant") or {}
        what = f"{content.get('template', '')} / {variant.get('name', '')}".strip(" /")
        reasons.append((what, str(variant.get("reason", ""))))
        for f in content.get("fields") or []:
            if isinstance(f, dict) and not f.get("used", True):
                reasons.append((str(f.get("field", "")), str(f.get("reason", "fallback"))))
    for offer in (explanation.get("offers") if isinstance(explanation, dict) else None) or []:
        if isinstance(offer, dict) and offer.get("picked"):
            reasons.append((str(offer.get("content_id", "")), str(offer.get("reason", ""))))
    products = result.get("products") if isinstance(result, dict) else None
    for product in products or []:
        if isinstance(product, dict):
            name = product.get("name") or product.get("product_code") or ""
            reasons.append((str(name), str(product.get("reason", ""))))
    return {
        "decision_id": found.get("decision_id"),
        "placement": found.get("placement"),
        "decided_at": found.get("decided_at"),
        "reasons": reasons,
        "explanation": orjson.dumps(
            explanation, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        ).decode(),
    }
