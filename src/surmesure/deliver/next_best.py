"""A campaign's next best actions: who of the people planned its saved model gives "do
nothing" (no message: status ``suppressed``, reason ``next_best_action``), and which variant a
channel's template gives each person when the template's own ``next_best_action`` picks it.

Read set-wise: the features of every planned person (the traits and derived metrics the
document maps them to) in one read, the uplift of every action predicted in one batch, by the
code a decision uses (:func:`surmesure.decide.next_best.picks`). For a campaign's own model, a
person whose features cannot be read, or who opted out of personalization, keeps their message
(the campaign's content is the neutral choice); the control group and the holdout, drawn
before, stay as they are. For a template's model, the rule is the decision's: the variant of the
best action, the neutral default variant for "do nothing", a feature missing, unreliable or
never seen by the model, or a person opted out of personalization on the channel. The action is
chosen for the control group and the holdout too (they receive nothing), so that results compare
the people given an action with the control people the model gave the same action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Connection

from surmesure.decide import action_models, next_best
from surmesure.decide.content import Audience, Chosen
from surmesure.decide.library import library_for
from surmesure.deliver.audiences import load_audiences
from surmesure.domain.campaigns import CampaignDefinition
from surmesure.domain.next_best_action import ModelFeatures
from surmesure.domain.traits import DEFAULT_MIN_RELIABILITY
from surmesure.protect.consent import ANY
from surmesure.store.engine import Store

REASON = next_best.REASON
Ids = npt.NDArray[np.int64]


def _audiences(
    conn: Connection, spec: ModelFeatures, ids: list[int], now: datetime, channel: str
) -> dict[int, Audience]:
    sources = spec.features.values()
    return load_audiences(
        conn,
        ids,
        now,
        Store.of(conn).settings.trait_half_life_days,
        channel=channel,
        traits={str(s.trait) for s in sources if s.trait is not None},
        metrics=frozenset(s.metric for s in sources if s.metric is not None),
    )


def given_nothing(
    conn: Connection, definition: CampaignDefinition, ids: Ids, now: datetime
) -> npt.NDArray[np.bool_]:
    """Per person of ``ids``: whether the campaign's model gives them nothing."""
    spec = definition.next_best_action
    if spec is None or ids.size == 0:
        return np.zeros(ids.size, dtype=bool)
    model = action_models.load(conn, spec.model)
    audiences = _audiences(conn, spec, ids.tolist(), now, ANY)
    nothing = next_best.nothing_for(spec, model, audiences, DEFAULT_MIN_RELIABILITY)
    return np.isin(ids, np.fromiter(nothing, dtype=np.int64, count=len(nothing)))


@dataclass
class Actions:
    """Per person planned: the action chosen (``None``: none could be, or no model picks the
    channel's variant), the variant that carries it, and the explanations by position."""

    action: npt.NDArray[np.object_]
    variant: npt.NDArray[np.object_]
    explanations: dict[int, dict[str, Any]] = field(default_factory=dict)


def template_actions(
    conn: Connection,
    definition: CampaignDefinition,
    ids: Ids,
    channels: npt.NDArray[np.object_],
    now: datetime,
) -> Actions:
    """The action and variant of each person of ``ids`` on their channel (see the module)."""
    out = Actions(np.full(ids.size, None, dtype=object), np.full(ids.size, None, dtype=object))
    library = None
    for channel in sorted({str(c) for c in channels.tolist()}):
        content = definition.channels.get(channel)  # type: ignore[call-overload]
        if content is None or content.template is None:
            continue
        library = library or library_for(Store.of(conn).settings)
        template = library.named(content.template).definition
        spec = template.next_best_action
        if spec is None:
            continue
        at = np.flatnonzero(channels == channel)
        model = action_models.load(conn, spec.model)
        audiences = _audiences(conn, spec, ids[at].tolist(), now, channel)
        found = next_best.picks(spec, model, audiences, template.min_reliability)
        default = template.variants[-1].name
        for i in at.tolist():
            pick = found[int(ids[i])]
            out.action[i] = pick.action
            out.variant[i] = pick.variant or default
            out.explanations[i] = pick.explanation
    return out


def chosen(action: str | None, variant: str | None) -> Chosen | None:
    """The variant recorded for a message, as the renderer takes it (``None``: no model
    picks it, the template's own rules apply)."""
    if variant is None:
        return None
    if action is None:
        reason = "next best action not used: the neutral default variant"
    else:
        reason = f"next best action: {action}"
    return Chosen(variant, reason, {"action": action, "variant": variant, "reason": reason})


PLACEMENT = "campaign:{name}"
"""The decision log's placement of a campaign's choices of variant."""


def log(
    store: Store,
    conn: Connection,
    campaign: str,
    rows: pa.Table,
    explanations: Mapping[str, dict[str, Any]],
    now: datetime,
) -> None:
    """Write each recorded message's choice to the decision log (its id the message's, its
    explanation every option's arithmetic), sealed under the person's data key."""
    from surmesure.decide.decision_log import encoded, insert

    wanted = rows.filter(pc.is_in(rows.column("message_id"), pa.array(list(explanations))))
    decisions = [
        encoded(
            {
                "decision_id": row["message_id"],
                "person_id": row["person_id"],
                "placement": PLACEMENT.format(name=campaign)[:64],
                "context": {"campaign": campaign, "channel": row["channel"], "step": row["step"]},
                "result": {
                    "message_id": row["message_id"],
                    "status": row["status"],
                    "action": row["action"],
                    "variant": row["variant"],
                },
                "explanation": {"next_best_action": explanations[row["message_id"]]},
                "decided_at": now,
            }
        )
        for row in wanted.to_pylist()
    ]
    if decisions:
        insert(store, conn, decisions)
