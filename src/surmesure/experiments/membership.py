"""Whether one person is held out of an experiment: in its control group, or in the global
holdout.

A decision whose template names an ``experiment`` asks this before it personalizes: a person
whose recorded variant is the experiment's control, or who falls in the global holdout at the
experiment's share (one salt for every experiment, :func:`surmesure.experiments.assign.
holdout_mask`, so it needs no recorded row), gets the neutral content and is recorded as held
out. A person never assigned (and not in the holdout) is not held out: the assignment, not the
hash alone, says who is in a variant. An experiment that was stopped holds nobody out; an
unknown one neither (the explanation says so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.errors import NotFound
from surmesure.experiments import catalog
from surmesure.experiments.assign import holdout_mask
from surmesure.store.engine import Store
from surmesure.store.schema import experiment_assignments

CONTROL = "control"
GLOBAL_HOLDOUT = "global_holdout"


@dataclass(frozen=True, slots=True)
class Membership:
    """A person's place in an experiment: ``variant`` (``None``: not assigned) and whether
    that holds them out (``reason``: ``control`` or ``global_holdout``)."""

    experiment: str
    variant: str | None
    reason: str | None
    note: str

    @property
    def held_out(self) -> bool:
        return self.reason is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "experiment": self.experiment,
            "variant": self.variant,
            "held_out": self.held_out,
            "reason": self.reason,
            "note": self.note,
        }


def membership(
    store: Store, conn: Connection, experiment: str, person_id: int | None
) -> Membership:
    """The person's place in ``experiment`` (see the module)."""
    if person_id is None:
        return Membership(experiment, None, None, "unknown person: not in the experiment")
    try:
        saved = catalog.get(store, experiment, conn)
    except NotFound:
        return Membership(experiment, None, None, "no experiment of this name: nobody held out")
    if saved.status == "stopped":
        return Membership(experiment, None, None, "the experiment is stopped: nobody held out")
    definition = saved.definition
    a = experiment_assignments
    variant = conn.execute(
        sa.select(a.c.variant).where(a.c.experiment == experiment, a.c.person_id == person_id)
    ).scalar_one_or_none()
    if holdout_mask(np.asarray([person_id], dtype=np.int64), definition.holdout)[0]:
        return Membership(experiment, None, GLOBAL_HOLDOUT, "in the global holdout")
    if variant is not None and variant == definition.control_variant:
        return Membership(experiment, str(variant), CONTROL, "assigned to the control group")
    if variant is None:
        return Membership(experiment, None, None, "not assigned: content as usual")
    return Membership(experiment, str(variant), None, f"assigned to variant {variant!r}")
