"""The offer blocks of one decision: which of a template's blocks hold for the person, which
of those the exposure ledger picks (:mod:`surmesure.decide.exposure`), and each rendered.

A block of a topic the person left (:mod:`surmesure.protect.marketing`) or whose rule does not
hold is not offered; each block is noted in the decision's explanation, picked or not, and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from surmesure.decide.content import Audience, CompiledTemplate, rule_holds
from surmesure.decide.exposure import choose_blocks, pick_blocks
from surmesure.decide.sandbox import DEFAULT_TIME_LIMIT_S, render_text
from surmesure.protect import marketing
from surmesure.store.engine import Store


def offers(
    store: Store,
    conn: Connection | None,
    compiled: CompiledTemplate,
    audience: Audience,
    now: datetime,
    catalog: Mapping[str, Any],
    values: dict[str, Any],
    locale: str,
    ledger_rows: tuple[dict[str, datetime], set[str]] | None = None,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The offers picked, rendered with ``values``, and the notes on every block. The ledger
    is ``ledger_rows`` (the blocks the person saw, and those anybody saw before) when given,
    else read from the store (in ``conn``)."""
    eligible, notes = [], []
    for block in compiled.definition.blocks:
        if block.topic is not None and marketing.topic_refused(
            audience.preferences, block.topic, now
        ):
            notes.append(
                {"content_id": block.content_id, "picked": False, "reason": marketing.TOPIC_REFUSED}
            )
            continue
        if block.segment is None and block.when is None:
            eligible.append(block)
            continue
        why = rule_holds(block.segment, block.when, audience, now, catalog)
        if why is None:
            notes.append({"content_id": block.content_id, "picked": False, "reason": "rule"})
        else:
            eligible.append(block)
    if ledger_rows is None:
        picks = pick_blocks(
            store, audience.person_id, eligible, now, compiled.definition.max_blocks, conn=conn
        )
    else:
        seen, before = ledger_rows
        picks = choose_blocks(eligible, seen, before, now, compiled.definition.max_blocks)
    found = []
    for pick in picks:
        title, text = compiled.blocks[pick.block.content_id]
        found.append(
            {
                "content_id": pick.block.content_id,
                "title": render_text(title, values, locale=locale, time_limit_s=time_limit_s),
                "text": render_text(text, values, locale=locale, time_limit_s=time_limit_s),
                "expires_at": pick.block.expires_at,
            }
        )
        notes.append({"content_id": pick.block.content_id, "picked": True, "reason": pick.reason})
    return found, notes
