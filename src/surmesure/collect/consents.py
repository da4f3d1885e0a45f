"""Consent from Segment messages: ``context.consent.categoryPreferences`` become consent records.

Segment's consent management sends, with any message, the visitor's choices as a map of
category name to true or false (``{"Advertising": false, "Analytics": true}``). Each category
is mapped to the purposes and channels it covers by the setting ``consent_categories``
(category names compared without case; default
:data:`~surmesure.config.DEFAULT_CONSENT_CATEGORIES`). A message then
records, for the person it was attached to, one consent record per purpose and channel named,
at the message's time (``timestamp``, else when it was received), from the collecting source,
with the evidence ``segment messageId <id>: <category>=<choice>, ...``. When several
categories of one message name the same purpose and channel, a refusal wins. Categories not in
the mapping and values that are not true or false are ignored; a message sent again (same
``messageId``) records nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from surmesure.collect.segment import Accepted
from surmesure.protect.consent import consent_row, record_consents


def preferences(context: Any) -> dict[str, bool]:
    """The categories of ``context.consent.categoryPreferences`` whose value is a boolean."""
    if not isinstance(context, Mapping):
        return {}
    consent = context.get("consent")
    found = consent.get("categoryPreferences") if isinstance(consent, Mapping) else None
    if not isinstance(found, Mapping):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, bool)}


def choices(
    given: Mapping[str, bool], mapping: Mapping[str, Sequence[str]]
) -> dict[tuple[str, str], tuple[bool, list[str]]]:
    """(purpose, channel) -> (granted, the categories that said so); a refusal wins."""
    out: dict[tuple[str, str], tuple[bool, list[str]]] = {}
    for category, value in sorted(given.items()):
        for pair in mapping.get(category.lower(), ()):
            purpose, channel = pair.split(":", 1)
            granted, said = out.get((purpose, channel), (True, []))
            word = "true" if value else "false"
            out[(purpose, channel)] = (granted and value, [*said, f"{category}={word}"])
    return out


def consent_id(message_id: str, purpose: str, channel: str) -> str:
    """Stable per message: a message stored again records nothing new."""
    return hashlib.sha256(f"segment\0{message_id}\0{purpose}\0{channel}".encode()).hexdigest()


def write_consents(
    conn: Connection,
    items: Sequence[Accepted],
    people: Sequence[int | None],
    nodes: Sequence[int | None],
    occurred: Sequence[datetime],
    *,
    source: str,
    mapping: Mapping[str, Sequence[str]],
) -> int:
    """Record the consent choices of ``items`` (new messages only) for their persons, in the
    caller's transaction; how many records."""
    rows = []
    for item, person, node, at in zip(items, people, nodes, occurred, strict=True):
        context = item.message.context
        if person is None or not context or "consent" not in context:
            continue  # the usual message: nothing to read, nothing to record
        given = preferences(context)
        if not given:
            continue
        message_id = item.message.message_id
        for (purpose, channel), (granted, said) in choices(given, mapping).items():
            rows.append(
                consent_row(
                    person,
                    purpose,
                    channel,
                    granted,
                    source=source,
                    evidence=f"segment messageId {message_id}: " + ", ".join(said),
                    recorded_at=at,
                    consent_id=consent_id(message_id, purpose, channel),
                    node_id=node,
                )
            )
    return record_consents(conn, rows)
