"""The relational schema, in SQLAlchemy Core.

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

import sqlalchemy as sa

from surmesure.store.meta import Json as Json
from surmesure.store.meta import metadata as metadata

Money = sa.Float(precision=53)

person_id_seq = sa.Sequence("person_id_seq", metadata=metadata)
merge_id_seq = sa.Sequence("merge_id_seq", metadata=metadata)
quarantine_id_seq = sa.Sequence("quarantine_id_seq", metadata=metadata)
import_run_id_seq = sa.Sequence("import_run_id_seq", metadata=metadata)
change_id_seq = sa.Sequence("change_id_seq", metadata=metadata)


def _person_columns() -> list[sa.Column[int]]:
    return [
        sa.Column("person_id", sa.BigInteger, nullable=True, index=True),
        sa.Column("node_id", sa.BigInteger, nullable=True),
    ]


people = sa.Table(
    "people",
    metadata,
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("merged_into", sa.BigInteger, nullable=True, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Identity nodes. A person is a node with merged_into NULL; absorbed nodes point to "
    "the node they were merged into.",
)

identifiers = sa.Table(
    "identifiers",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(320), primary_key=True),
    sa.Column("person_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("node_id", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("first_seen_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Normalized identifiers (customer_id, email, phone, anonymous_id, loyalty_card): "
    "value holds the blind index of kind and value, sealed the value (protect.blind).",
)

merges = sa.Table(
    "merges",
    metadata,
    sa.Column("merge_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("survivor_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("absorbed_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("evidence", Json, nullable=False),
    sa.Column("merged_at", sa.DateTime, nullable=False),
    sa.Column("undone_at", sa.DateTime, nullable=True),
    info={"personal": "survivor_id,absorbed_id"},
    comment="Every merge of two identity nodes, with the identifiers that linked them.",
)

merge_blocks = sa.Table(
    "merge_blocks",
    metadata,
    sa.Column("node_a", sa.BigInteger, primary_key=True),
    sa.Column("node_b", sa.BigInteger, primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    info={"personal": "node_a,node_b"},
    comment="Pairs of nodes a user has unmerged: they are never merged again automatically.",
)

traits = sa.Table(
    "traits",
    metadata,
    sa.Column("record_key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    *_person_columns(),
    sa.Column("value", Json, nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("observed_at", sa.DateTime, nullable=False),
    sa.Column("reliability", sa.Float(precision=53), nullable=False),
    sa.Column(
        "sealed", sa.LargeBinary, nullable=True, comment="the value of a sealed trait, sealed"
    ),
    info={"personal": "person_id", "sealed": ("node_id", ("value",))},
    comment="Every observed trait value with its provenance; resolution picks one per name.",
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("message_id", sa.String(128), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("event", sa.String(256), nullable=True),
    *_person_columns(),
    sa.Column("user_id", sa.String(256), nullable=True),
    sa.Column("anonymous_id", sa.String(256), nullable=True),
    sa.Column("occurred_at", sa.DateTime, nullable=False, index=True),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("properties", Json, nullable=True),
    sa.Column("context", Json, nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column(
        "sealed",
        sa.LargeBinary,
        nullable=True,
        comment="the context and an identify's traits, sealed",
    ),
    info={"personal": "person_id", "sealed": ("node_id", ("context", "properties"))},
    comment="Segment-spec events (identify, track, page, screen, alias, group), one per messageId.",
)

stores = sa.Table(
    "stores",
    metadata,
    sa.Column("store_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("city", sa.String(128), nullable=True),
    sa.Column("postcode", sa.String(32), nullable=True),
    sa.Column("country", sa.String(64), nullable=True),
    sa.Column("latitude", sa.Float(precision=53), nullable=True),
    sa.Column("longitude", sa.Float(precision=53), nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": None},
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("product_code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(512), nullable=True),
    sa.Column("category", sa.String(128), nullable=True),
    sa.Column("price", Money, nullable=True),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": None},
)

stock = sa.Table(
    "stock",
    metadata,
    sa.Column("product_code", sa.String(64), primary_key=True),
    sa.Column("store_id", sa.String(64), primary_key=True, comment="'online' for web stock"),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": None},
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    *_person_columns(),
    sa.Column("customer_ref", sa.String(256), nullable=True),
    sa.Column("store_id", sa.String(64), nullable=True),
    sa.Column("channel", sa.String(32), nullable=True),
    sa.Column("country", sa.String(64), nullable=True),
    sa.Column("ordered_at", sa.DateTime, nullable=False, index=True),
    sa.Column("is_return", sa.Boolean, nullable=False),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("total_amount", Money, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    info={"personal": "person_id", "erase": "detach", "erase_clear": ["customer_ref"]},
    comment="Orders and returns. On erasure an order is kept for sales totals, detached from "
    "the person (person_id, node_id and customer_ref cleared).",
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("product_code", sa.String(64), nullable=False, index=True),
    sa.Column("description", sa.String(512), nullable=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("is_fee", sa.Boolean, nullable=False),
    info={"personal": "via:orders"},
)

survey_answers = sa.Table(
    "survey_answers",
    metadata,
    sa.Column("answer_id", sa.String(64), primary_key=True),
    *_person_columns(),
    sa.Column("survey", sa.String(128), nullable=True),
    sa.Column("metric", sa.String(8), nullable=False, comment="nps (0-10), csat (1-5), ces (1-7)"),
    sa.Column("score", sa.SmallInteger, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("channel", sa.String(32), nullable=True),
    sa.Column("store_id", sa.String(64), nullable=True),
    sa.Column("answered_at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    info={"personal": "person_id"},
)

channel_activity = sa.Table(
    "channel_activity",
    metadata,
    sa.Column("activity_id", sa.String(64), primary_key=True),
    *_person_columns(),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column(
        "kind",
        sa.String(16),
        nullable=False,
        comment="sent, delivered, opened, clicked, bounced, unsubscribed, complained",
    ),
    sa.Column("campaign", sa.String(256), nullable=True),
    sa.Column("url", sa.String(1024), nullable=True),
    sa.Column("occurred_at", sa.DateTime, nullable=False, index=True),
    sa.Column("source", sa.String(64), nullable=False),
    info={"personal": "person_id"},
    comment="What happened to messages sent on a channel (e-mail activity and the like).",
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("consent_id", sa.String(64), primary_key=True),
    *_person_columns(),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("granted", sa.Boolean, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("evidence", sa.String(512), nullable=True),
    info={"personal": "person_id"},
    comment="Consent history: the latest row per (person, purpose, channel) is in force.",
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("quarantine_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("origin", sa.String(16), nullable=False, comment="import or api"),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("source_name", sa.String(1024), nullable=False),
    sa.Column("location", sa.String(256), nullable=False, comment="row N or messageId"),
    sa.Column("field", sa.String(256), nullable=True),
    sa.Column("value", sa.Text, nullable=True, comment="empty: sealed"),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", Json, nullable=True, comment="empty: sealed"),
    sa.Column("status", sa.String(16), nullable=False, comment="open, replayed"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("replayed_at", sa.DateTime, nullable=True),
    sa.Column(
        "sealed", sa.LargeBinary, nullable=True, comment="value and payload, sealed, a key per row"
    ),
    sa.Column(
        "digest", sa.String(64), nullable=True, comment="keyed hash of the payload, for dedupe"
    ),
    # each record is sealed under a key of its own, node -quarantine_id (protect.quarantined)
    info={"personal": "payload", "sealed": ("-quarantine_id", ("value", "payload"))},
    comment="Rejected records with the reason; replayable after the mapping is fixed.",
)

quarantine_marks = sa.Table(
    "quarantine_marks",
    metadata,
    sa.Column("mark", sa.String(16), primary_key=True, comment="keyed hash of a value, cut"),
    sa.Column("quarantine_id", sa.BigInteger, primary_key=True, autoincrement=False, index=True),
    # keyed hashes of the values a record holds (protect.quarantined.marks): an erasure opens
    # only the records marked with one of the person's identifiers
    info={"personal": None},
    comment="Which quarantined records hold a value: keyed hashes, never a value.",
)

import_runs = sa.Table(
    "import_runs",
    metadata,
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("mapping", Json, nullable=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_accepted", sa.BigInteger, nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
    sa.Column("rows_duplicate", sa.BigInteger, nullable=False),
    info={"personal": None},
)


derived_metrics = sa.Table(
    "derived_metrics",
    metadata,
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("computed_on", sa.Date, primary_key=True, comment="UTC day of the run"),
    sa.Column("computed_at", sa.DateTime, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False, comment="reference date of the metrics"),
    sa.Column("customer_id", sa.String(320), nullable=True),
    sa.Column("recency_days", sa.Integer, nullable=True),
    sa.Column("frequency", sa.Integer, nullable=True),
    sa.Column("monetary", Money, nullable=True),
    sa.Column("r_score", sa.SmallInteger, nullable=True),
    sa.Column("f_score", sa.SmallInteger, nullable=True),
    sa.Column("m_score", sa.SmallInteger, nullable=True),
    sa.Column("fm_score", sa.SmallInteger, nullable=True),
    sa.Column("rfm_segment", sa.String(32), nullable=True),
    sa.Column("repeat_purchases", sa.Integer, nullable=True),
    sa.Column("purchase_span_days", sa.Integer, nullable=True),
    sa.Column("customer_age_days", sa.Integer, nullable=True),
    sa.Column("mean_repeat_value", Money, nullable=True),
    sa.Column("expected_purchases", sa.Float(precision=53), nullable=True),
    sa.Column("p_alive", sa.Float(precision=53), nullable=True),
    sa.Column("expected_value", Money, nullable=True),
    sa.Column("email_sent", sa.Integer, nullable=True),
    sa.Column("email_opens", sa.Integer, nullable=True),
    sa.Column("email_clicks", sa.Integer, nullable=True),
    sa.Column("open_rate", sa.Float(precision=53), nullable=True),
    sa.Column("click_rate", sa.Float(precision=53), nullable=True),
    sa.Column("purchases_per_month", sa.Float(precision=53), nullable=True),
    sa.Column("days_since_interaction", sa.Integer, nullable=True),
    sa.Column("gap_regularity", sa.Float(precision=53), nullable=True),
    sa.Column("nps_last", sa.SmallInteger, nullable=True),
    sa.Column("nps_group", sa.String(16), nullable=True),
    sa.Column("csat_satisfied_share", sa.Float(precision=53), nullable=True),
    sa.Column("ces_mean", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_email", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_sms", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_phone", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_paper", sa.Float(precision=53), nullable=True),
    sa.Column("appetence_web", sa.Float(precision=53), nullable=True),
    sa.Column("best_channel", sa.String(16), nullable=True),
    sa.Column("preferred_store_id", sa.String(64), nullable=True),
    sa.Column("preferred_store_basis", sa.String(16), nullable=True, comment="orders, home_store"),
    sa.Column("preferred_store_km", sa.Float(precision=53), nullable=True),
    sa.Column("top_category_1", sa.String(128), nullable=True),
    sa.Column("top_category_2", sa.String(128), nullable=True),
    sa.Column("top_category_3", sa.String(128), nullable=True),
    sa.Column("top_category_share", sa.Float(precision=53), nullable=True),
    sa.Column("top_product_code", sa.String(64), nullable=True),
    sa.Column("category_breadth", sa.Integer, nullable=True),
    sa.Column("upsell_potential", sa.Float(precision=53), nullable=True),
    sa.Column("relational_engagement", sa.Float(precision=53), nullable=True),
    sa.Column("transactional_engagement", sa.Float(precision=53), nullable=True),
    sa.Column("engagement_score", sa.Float(precision=53), nullable=True),
    sa.Column("horizon_days", sa.Integer, nullable=False),
    sa.Column("discount_rate", sa.Float(precision=53), nullable=False),
    sa.Column("window_days", sa.Integer, nullable=False),
    info={"personal": "person_id"},
    comment="Derived metrics (RFM, CLV, engagement, satisfaction) per person, one row per "
    "person and day of computation; a second run the same day replaces that day's rows.",
)


def personal_tables() -> list[sa.Table]:
    """Tables that hold personal data, in an order safe for deleting."""
    return [t for t in metadata.sorted_tables if t.info.get("personal")]


segments = sa.Table(
    "segments",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, comment="current version"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="Segments by name, with the version in force.",
)

segment_versions = sa.Table(
    "segment_versions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", Json, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="Every saved definition of every segment; a changed definition adds a version.",
)

segment_members = sa.Table(
    "segment_members",
    metadata,
    sa.Column("segment", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entered_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Who is in each segment since its last refresh (or real-time update).",
)

segment_changes = sa.Table(
    "segment_changes",
    metadata,
    sa.Column("segment", sa.String(64), nullable=False, index=True),
    sa.Column("person_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("change", sa.String(8), nullable=False, comment="entered or exited"),
    sa.Column("changed_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Who entered and who left each segment, and when.",
)


experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("definition", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, comment="created, running or stopped"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=True, comment="first assignment"),
    sa.Column("stopped_at", sa.DateTime, nullable=True),
    info={"personal": None},
    comment="Experiments by name with their definition (variants, metrics, window).",
)

experiment_assignments = sa.Table(
    "experiment_assignments",
    metadata,
    sa.Column("experiment", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("variant", sa.String(64), nullable=False),
    sa.Column("assigned_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Who is in which variant of each experiment, and since when; never reassigned.",
)


exposures = sa.Table(
    "exposures",
    metadata,
    sa.Column("exposure_id", sa.String(64), primary_key=True),
    *_person_columns(),
    sa.Column("content_id", sa.String(128), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=True),
    sa.Column("placement", sa.String(64), nullable=True),
    sa.Column("shown_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=True, comment="the content's own expiry"),
    info={"personal": "person_id"},
    comment="Every content block shown to a person, on any channel: the exposure ledger.",
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("placement", sa.String(64), nullable=False),
    sa.Column("context", Json, nullable=True),
    sa.Column("result", Json, nullable=True),
    sa.Column("explanation", Json, nullable=True),
    sa.Column("decided_at", sa.DateTime, nullable=False, index=True),
    sa.Column(
        "sealed",
        sa.LargeBinary,
        nullable=True,
        comment="context, result and explanation of a person's decision, sealed",
    ),
    info={"personal": "person_id", "sealed": ("person_id", ("context", "result", "explanation"))},
    comment="Every decision made (content, offers, products) with its context and explanation.",
)


api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True, comment="public id, shown in lists"),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True, comment="SHA-256, hex"),
    sa.Column("scopes", sa.String(128), nullable=False, comment="comma list: collect,decide..."),
    sa.Column("source", sa.String(64), nullable=False, comment="source of what it collects"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_used_at", sa.DateTime, nullable=True),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
    info={"personal": None},
    comment="API keys: named, scoped, stored as hashes, revocable.",
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.String(32), primary_key=True),
    sa.Column("occurred_at", sa.DateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(160), nullable=False, comment="key:<name> or cli:<user>"),
    sa.Column("action", sa.String(64), nullable=False, comment="e.g. person.show, key.revoke"),
    sa.Column("person_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("detail", Json, nullable=True, comment="what was asked; never identifier values"),
    info={"personal": "person_id", "erase": "detach"},
    comment="Every read of personal data and every administrative change: who, what, when. "
    "Kept after an erasure, detached from the person.",
)


# -- identity trust: claims of low-trust sources -----------------------------------------------

identifiers.append_column(
    sa.Column(
        "claimed",
        sa.Boolean,
        nullable=True,
        comment="true: held by a low-trust claim only; a vouched record naming it takes it over",
    )
)
identifiers.append_column(
    sa.Column("sealed", sa.LargeBinary, nullable=True, comment="the value, sealed under node_id")
)

identity_claims = sa.Table(
    "identity_claims",
    metadata,
    sa.Column("node_id", sa.BigInteger, primary_key=True, comment="the claimant's node"),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(320), primary_key=True),
    sa.Column("person_id", sa.BigInteger, nullable=False, index=True, comment="claimant now"),
    sa.Column("holder_id", sa.BigInteger, nullable=False, comment="holder when claimed"),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
    sa.Column("evidence", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, comment="pending or confirmed"),
    sa.Column("confirmed_at", sa.DateTime, nullable=True),
    sa.Column("merge_id", sa.BigInteger, nullable=True, comment="the merge that confirmed it"),
    sa.Column("sealed", sa.LargeBinary, nullable=True, comment="the value, sealed under holder_id"),
    info={"personal": "person_id,holder_id"},
    comment="Identifiers a low-trust source claimed for a person who does not hold them: never "
    "merged on their own; confirmed when trusted evidence puts both in one person.",
)


# -- erasure that sticks -----------------------------------------------------------------------

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column(
        "identifier_hash",
        sa.String(64),
        primary_key=True,
        comment="hex HMAC-SHA256 of 'kind:value' (normalized) under the suppression key",
    ),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("erased_at", sa.DateTime, nullable=False),
    sa.Column("reason", sa.String(256), nullable=False),
    sa.Column("lifted_at", sa.DateTime, nullable=True, comment="a later consent re-admitted it"),
    # keyed hashes only, never a value: the list must outlive the erasure it records
    info={"personal": None},
    comment="Identifiers of erased people, as keyed hashes: records carrying one are refused "
    "(reason erased) until a consent granted after the erasure re-admits that identifier.",
)

suppression_state = sa.Table(
    "suppression_state",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("version", sa.String(32), nullable=False),
    info={"personal": None},
    comment="One row: a token every change of the suppression list renews, so that a process "
    "keeps the list in memory and reloads it only when it changed.",
)

person_keys = sa.Table(
    "person_keys",
    metadata,
    sa.Column("node_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column(
        "wrapped", sa.LargeBinary, nullable=False, comment="nonce || AES-GCM(wrapping key, key)"
    ),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # erasure destroys these itself (protect.crypto); an export never carries a key
    info={"personal": None},
    comment="The data key of each identity node, wrapped; erasure deletes it (crypto-shredding).",
)


# -- preference centre: topics, frequency, pause -------------------------------------------------

preferences = sa.Table(
    "preferences",
    metadata,
    sa.Column("preference_id", sa.String(64), primary_key=True),
    *_person_columns(),
    sa.Column("kind", sa.String(16), nullable=False, comment="topic, frequency or pause"),
    sa.Column("name", sa.String(64), nullable=False, comment="the topic; empty for the others"),
    sa.Column("value", sa.String(32), nullable=False),
    sa.Column("until", sa.DateTime, nullable=True, comment="the end of a pause"),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("evidence", sa.String(512), nullable=True),
    info={"personal": "person_id"},
    comment="Marketing preferences history (topics, frequency, pause): the latest row per "
    "(person, kind, name) is in force.",
)


# -- operations: runs of the scheduled jobs ------------------------------------------------------

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("job", sa.String(32), nullable=False, comment="derive, segment_refresh, retention"),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True, comment="empty while it runs"),
    sa.Column("ok", sa.Boolean, nullable=True, comment="empty while it runs"),
    sa.Column("summary", sa.String(512), nullable=True, comment="one line, no personal value"),
    sa.Column("actor", sa.String(64), nullable=False, comment="scheduler or cli:<user>"),
    sa.Index(None, "job", "started_at"),
    info={"personal": None},
    comment="Runs of derive, segment refresh and retention, by the scheduler or by hand.",
)


# -- later stages: their tables live in modules of their own, on the same metadata ------------

from surmesure.store.schema_deliver import address_flags as address_flags  # noqa: E402
from surmesure.store.schema_deliver import campaign_versions as campaign_versions  # noqa: E402
from surmesure.store.schema_deliver import campaigns as campaigns  # noqa: E402
from surmesure.store.schema_deliver import delivery_reports as delivery_reports  # noqa: E402
from surmesure.store.schema_deliver import message_files as message_files  # noqa: E402
from surmesure.store.schema_deliver import messages as messages  # noqa: E402
from surmesure.store.schema_deliver import page_views as page_views  # noqa: E402
from surmesure.store.schema_dispatch import change_cursors as change_cursors  # noqa: E402
from surmesure.store.schema_dispatch import change_failures as change_failures  # noqa: E402
from surmesure.store.schema_dispatch import changes as changes  # noqa: E402
from surmesure.store.schema_journeys import journey_log as journey_log  # noqa: E402
from surmesure.store.schema_journeys import journey_people as journey_people  # noqa: E402
from surmesure.store.schema_journeys import journey_versions as journey_versions  # noqa: E402
from surmesure.store.schema_journeys import journeys as journeys  # noqa: E402
