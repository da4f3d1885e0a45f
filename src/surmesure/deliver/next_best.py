"""A campaign's next best action: who of the people planned the saved model gives "do
nothing", so that they get no message (status ``suppressed``, reason ``next_best_action``).

Read set-wise: the features of every planned person (the traits and derived metrics the
document maps them to) in one read, the uplift of every action predicted in one batch. A
person whose features cannot be read, or who opted out of personalization, keeps their message
(the campaign's content is the neutral choice); the control group and the holdout, drawn
before, stay as they are.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy.engine import Connection

from surmesure.decide import action_models, next_best
from surmesure.deliver.audiences import load_audiences
from surmesure.domain.campaigns import CampaignDefinition
from surmesure.domain.traits import DEFAULT_MIN_RELIABILITY
from surmesure.protect.consent import ANY
from surmesure.store.engine import Store

REASON = next_best.REASON


def given_nothing(
    conn: Connection, definition: CampaignDefinition, ids: npt.NDArray[np.int64], now: datetime
) -> npt.NDArray[np.bool_]:
    """Per person of ``ids``: whether the campaign's model gives them nothing."""
    spec = definition.next_best_action
    if spec is None or ids.size == 0:
        return np.zeros(ids.size, dtype=bool)
    model = action_models.load(conn, spec.model)
    sources = spec.features.values()
    audiences = load_audiences(
        conn,
        ids.tolist(),
        now,
        Store.of(conn).settings.trait_half_life_days,
        channel=ANY,
        traits={str(s.trait) for s in sources if s.trait is not None},
        metrics=frozenset(s.metric for s in sources if s.metric is not None),
    )
    nothing = next_best.nothing_for(spec, model, audiences, DEFAULT_MIN_RELIABILITY)
    return np.isin(ids, np.fromiter(nothing, dtype=np.int64, count=len(nothing)))
