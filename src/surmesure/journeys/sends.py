"""The deliver outbox rows of a journey's send steps, planned for many people at once.

A send is a row of ``messages`` (campaign ``j_<journey>_<step>``, step = the entry number),
whose id is a keyed hash of that key: a batch replayed after a crash writes the same rows again
and conflicts on them, so a person is never sent a step twice, and the deliver worker sends each
row once (:mod:`surmesure.deliver.outbox`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import numpy as np
from sqlalchemy.engine import Connection

from surmesure.deliver.choice import choose
from surmesure.domain.campaigns import CampaignDefinition, Policy
from surmesure.journeys.document import JourneyDefinition
from surmesure.journeys.steps import SendStep
from surmesure.store import schema
from surmesure.store.engine import Store
from surmesure.store.update import as_arrow


def campaign_key(journey: str, step: str) -> str:
    """The outbox's campaign of a journey's send step."""
    return f"j_{journey}_{step}"


def journey_message_id(key: bytes, campaign: str, person_id: int, channel: str, entry: int) -> str:
    """The outbox's id of a journey message: keyed BLAKE2b of its idempotency key (the same
    on every run and worker; the person's id cannot be read back from it). ``key``: 32 bytes
    derived from the secret key."""
    text = f"{campaign}:{person_id}:{channel}:{entry}".encode()
    return hashlib.blake2b(text, key=key, digest_size=16).hexdigest()


def message_key(secret_key: str) -> bytes:
    """The key of :func:`journey_message_id`, from the secret key."""
    return hashlib.blake2b(secret_key.encode(), digest_size=32).digest()


def campaign_of(definition: JourneyDefinition, step: SendStep) -> CampaignDefinition:
    """A send step as the campaign the deliver worker sends: its channels and their choice."""
    channels = dict(step.send.channels)
    policy = Policy(order=list(channels), choose=step.send.choose) if len(channels) > 1 else None
    return CampaignDefinition(
        name=campaign_key(definition.name, step.id),
        audience="everyone",
        purpose=step.send.purpose,
        channels=channels,
        policy=policy,
    )


def plan_sends(
    store: Store,
    conn: Connection,
    journey: JourneyDefinition,
    version: int,
    step: SendStep,
    people: tuple[np.ndarray, np.ndarray, np.ndarray],
    now: datetime,
) -> int:
    """The outbox rows of one send step for ``people`` (ids, entries, held out), the held
    out ones ``held_out``; returns how many were new."""
    ids, entries, held = people
    campaign = campaign_of(journey, step)
    order = [str(c) for c in step.send.channels]
    n = int(ids.size)
    channel = np.full(n, order[0], dtype=object)
    reason = np.full(n, "", dtype=object)
    if len(order) > 1:
        chosen = choose(conn, campaign, ids, order, now, best=step.send.choose == "best")
        channel, reason = chosen.channel, chosen.reason
    suppressed = reason.astype(bool)
    status = np.where(held, "held_out", np.where(suppressed, "suppressed", "planned"))
    why = np.full(n, None, dtype=object)
    why[suppressed] = reason[suppressed]
    why[held] = "journey_control"
    key = message_key(store.settings.secret_key)
    rows = outbox_rows(
        key, campaign.name, version, ids, entries, channel, status.astype(object), now
    )
    rows["reason"] = why
    m = schema.messages
    return store.bulk_insert(conn, m, as_arrow(m, rows))


def outbox_rows(
    key: bytes,
    campaign: str,
    version: int,
    ids: np.ndarray,
    entries: np.ndarray,
    channel: np.ndarray,
    status: np.ndarray,
    now: datetime,
) -> dict[str, np.ndarray]:
    """The ``messages`` columns of one journey step's rows (ids keyed by
    :func:`journey_message_id` under ``key``, :func:`message_key`); those ``planned`` are due
    ``now``."""
    n = int(ids.size)
    due = np.full(n, None, dtype=object)
    due[status == "planned"] = now
    return {
        "message_id": np.asarray(
            [
                journey_message_id(key, campaign, p, c, e)
                for p, c, e in zip(ids.tolist(), channel.tolist(), entries.tolist(), strict=True)
            ],
            dtype=object,
        ),
        "campaign": np.full(n, campaign, dtype=object),
        "version": np.full(n, version),
        "person_id": ids,
        "channel": channel,
        "step": entries,
        "status": status,
        "reason": np.full(n, None, dtype=object),
        "attempts": np.zeros(n, dtype=np.int16),
        "next_attempt_at": due,
        "planned_at": np.full(n, now, dtype=object),
        "updated_at": np.full(n, now, dtype=object),
    }
