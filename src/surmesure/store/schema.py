"""The relational schema, in SQLAlchemy Core: one module per stage, ``schema_<stage>``, each
defining the tables that stage writes on the one shared metadata (:mod:`surmesure.store.meta`)
and listing them in ``TABLES``. This module re-exports every table, so ``schema.people`` reads
the same wherever it is used, and :data:`STAGES` names each stage's module.

Conventions:
- every timestamp is naive UTC;
- every table says in ``info["personal"]`` how it reaches a person: the name of its person
  column, ``"via:<table>"`` when it reaches one through a parent row, ``"payload"`` when
  personal data may sit in free-form payloads, or ``None`` when it holds no personal data.
  Export and erasure are driven by this tag, and a test refuses a table without one;
- rows that hang off a person carry ``person_id`` (the person now, after merges) and
  ``node_id`` (the identity node the row first attached to, so a merge can be undone);
- a table whose rows may hold personal values says in ``info["sealed"]`` which node column
  its ``sealed`` column is sealed under and which plain columns it stands for (see
  :mod:`surmesure.protect.atrest`): those are then NULL and their values live in ``sealed``.
  A node column written ``-column`` names a key of the row's own (minus the column's value).
"""

from __future__ import annotations

from types import ModuleType

import sqlalchemy as sa

from surmesure.store import (
    schema_collect,
    schema_decide,
    schema_deliver,
    schema_derive,
    schema_dispatch,
    schema_experiments,
    schema_identity,
    schema_journeys,
    schema_ops,
    schema_protect,
    schema_segment,
)
from surmesure.store.meta import Json as Json
from surmesure.store.meta import Money as Money
from surmesure.store.meta import metadata as metadata
from surmesure.store.schema_collect import channel_activity as channel_activity
from surmesure.store.schema_collect import event_counts as event_counts
from surmesure.store.schema_collect import events as events
from surmesure.store.schema_collect import import_run_id_seq as import_run_id_seq
from surmesure.store.schema_collect import import_runs as import_runs
from surmesure.store.schema_collect import order_lines as order_lines
from surmesure.store.schema_collect import orders as orders
from surmesure.store.schema_collect import products as products
from surmesure.store.schema_collect import quarantine as quarantine
from surmesure.store.schema_collect import quarantine_id_seq as quarantine_id_seq
from surmesure.store.schema_collect import quarantine_marks as quarantine_marks
from surmesure.store.schema_collect import stock as stock
from surmesure.store.schema_collect import stores as stores
from surmesure.store.schema_collect import survey_answers as survey_answers
from surmesure.store.schema_collect import traits as traits
from surmesure.store.schema_decide import action_models as action_models
from surmesure.store.schema_decide import decisions as decisions
from surmesure.store.schema_decide import exposures as exposures
from surmesure.store.schema_decide import recommendation_models as recommendation_models
from surmesure.store.schema_deliver import address_flags as address_flags
from surmesure.store.schema_deliver import campaign_versions as campaign_versions
from surmesure.store.schema_deliver import campaigns as campaigns
from surmesure.store.schema_deliver import delivery_reports as delivery_reports
from surmesure.store.schema_deliver import message_files as message_files
from surmesure.store.schema_deliver import messages as messages
from surmesure.store.schema_deliver import page_views as page_views
from surmesure.store.schema_deliver import video_films as video_films
from surmesure.store.schema_derive import derived_metrics as derived_metrics
from surmesure.store.schema_dispatch import change_cursors as change_cursors
from surmesure.store.schema_dispatch import change_failures as change_failures
from surmesure.store.schema_dispatch import change_id_seq as change_id_seq
from surmesure.store.schema_dispatch import changes as changes
from surmesure.store.schema_experiments import experiment_assignments as experiment_assignments
from surmesure.store.schema_experiments import experiments as experiments
from surmesure.store.schema_identity import identifiers as identifiers
from surmesure.store.schema_identity import identity_claims as identity_claims
from surmesure.store.schema_identity import merge_blocks as merge_blocks
from surmesure.store.schema_identity import merge_id_seq as merge_id_seq
from surmesure.store.schema_identity import merges as merges
from surmesure.store.schema_identity import people as people
from surmesure.store.schema_identity import person_id_seq as person_id_seq
from surmesure.store.schema_journeys import journey_log as journey_log
from surmesure.store.schema_journeys import journey_people as journey_people
from surmesure.store.schema_journeys import journey_versions as journey_versions
from surmesure.store.schema_journeys import journeys as journeys
from surmesure.store.schema_ops import job_runs as job_runs
from surmesure.store.schema_protect import api_key_origins as api_key_origins
from surmesure.store.schema_protect import api_keys as api_keys
from surmesure.store.schema_protect import audit_log as audit_log
from surmesure.store.schema_protect import consents as consents
from surmesure.store.schema_protect import console_sessions as console_sessions
from surmesure.store.schema_protect import console_users as console_users
from surmesure.store.schema_protect import person_keys as person_keys
from surmesure.store.schema_protect import preferences as preferences
from surmesure.store.schema_protect import suppression_state as suppression_state
from surmesure.store.schema_protect import suppressions as suppressions
from surmesure.store.schema_segment import segment_changes as segment_changes
from surmesure.store.schema_segment import segment_members as segment_members
from surmesure.store.schema_segment import segment_versions as segment_versions
from surmesure.store.schema_segment import segments as segments

STAGES: dict[str, ModuleType] = {
    "identity": schema_identity,
    "collect": schema_collect,
    "protect": schema_protect,
    "derive": schema_derive,
    "segment": schema_segment,
    "experiments": schema_experiments,
    "decide": schema_decide,
    "ops": schema_ops,
    "deliver": schema_deliver,
    "journeys": schema_journeys,
    "dispatch": schema_dispatch,
}
"""Each stage's schema module, by stage; each table is in exactly one module's ``TABLES``."""


def personal_tables() -> list[sa.Table]:
    """Tables that hold personal data, in an order safe for deleting."""
    return [t for t in metadata.sorted_tables if t.info.get("personal")]
