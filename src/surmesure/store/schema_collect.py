"""The collect stage's tables: events, observed traits, the catalogue, stock and orders,
surveys and channel activity as imported, and what was quarantined on the way in. Part of
:mod:`surmesure.store.schema`, which re-exports them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Json, Money, metadata, person_columns

quarantine_id_seq = sa.Sequence("quarantine_id_seq", metadata=metadata)
import_run_id_seq = sa.Sequence("import_run_id_seq", metadata=metadata)

traits = sa.Table(
    "traits",
    metadata,
    sa.Column("record_key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    *person_columns(),
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
    *person_columns(),
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
sa.Index(
    "ix_events_person_id_occurred_at",
    events.c.person_id,
    events.c.occurred_at,
    postgresql_include=["type", "event"],
    info={"only_on": "postgresql"},
).ddl_if(dialect="postgresql")
"""A person's events in a window, by type and name, read from the index alone: PostgreSQL
only (migration 0038), as DuckDB's indexes include no columns and its scans are faster."""

event_counts = sa.Table(
    "event_counts",
    metadata,
    sa.Column("node_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(16), primary_key=True),
    sa.Column("event", sa.String(256), primary_key=True, comment="'' for an event unnamed"),
    sa.Column("person_id", sa.BigInteger, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("last_at", sa.DateTime, nullable=False, comment="the latest occurred_at counted"),
    info={"personal": "person_id"},
    comment="How many events each identity node has of each type and name, kept with events: "
    "real-time segment membership reads it rather than every event (migration 0046).",
)
sa.Index(
    "ix_event_counts_person_id",
    event_counts.c.person_id,
    info={"only_on": "postgresql"},
).ddl_if(dialect="postgresql")
"""A person's counts through the index on PostgreSQL. DuckDB scans this small table for them
and keeps no such index, which would cost each new count one more insert."""

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
    *person_columns(),
    sa.Column("customer_ref", sa.String(256), nullable=True),
    sa.Column("store_id", sa.String(64), nullable=True),
    sa.Column("channel", sa.String(32), nullable=True),
    sa.Column("country", sa.String(64), nullable=True),
    sa.Column("ordered_at", sa.DateTime, nullable=False, index=True),
    sa.Column("is_return", sa.Boolean, nullable=False),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("total_amount", Money, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column(
        "original_currency",
        sa.String(3),
        nullable=True,
        comment="the currency the order was sent in",
    ),
    sa.Column(
        "original_amount", Money, nullable=True, comment="the amount as sent, before conversion"
    ),
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
    *person_columns(),
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
    *person_columns(),
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

TABLES = (
    traits,
    events,
    event_counts,
    stores,
    products,
    stock,
    orders,
    order_lines,
    survey_answers,
    channel_activity,
    quarantine,
    quarantine_marks,
    import_runs,
)
"""The tables this stage owns: no other stage's module defines them."""
