"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 15:36:14.407518
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


SEQUENCES = ("person_id_seq", "merge_id_seq", "quarantine_id_seq", "import_run_id_seq")


def upgrade() -> None:
    for name in SEQUENCES:
        op.execute(sa.schema.CreateSequence(sa.Sequence(name)))
    op.create_table(
        "channel_activity",
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column(
            "kind",
            sa.String(length=16),
            nullable=False,
            comment="sent, delivered, opened, clicked, bounced, unsubscribed, complained",
        ),
        sa.Column("campaign", sa.String(length=256), nullable=True),
        sa.Column("url", sa.String(length=1024), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("activity_id", name=op.f("pk_channel_activity")),
        comment="What happened to messages sent on a channel (e-mail activity and the like).",
        info={"personal": "person_id"},
    )
    op.create_index(
        op.f("ix_channel_activity_occurred_at"), "channel_activity", ["occurred_at"], unique=False
    )
    op.create_index(
        op.f("ix_channel_activity_person_id"), "channel_activity", ["person_id"], unique=False
    )
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("evidence", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("consent_id", name=op.f("pk_consents")),
        comment="Consent history: the latest row per (person, purpose, channel) is in force.",
        info={"personal": "person_id"},
    )
    op.create_index(op.f("ix_consents_person_id"), "consents", ["person_id"], unique=False)
    op.create_table(
        "events",
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=256), nullable=True),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=True),
        sa.Column("anonymous_id", sa.String(length=256), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_events")),
        comment="Segment-spec events (identify, track, page, screen, alias, group), one per messageId.",
        info={"personal": "person_id"},
    )
    op.create_index(op.f("ix_events_occurred_at"), "events", ["occurred_at"], unique=False)
    op.create_index(op.f("ix_events_person_id"), "events", ["person_id"], unique=False)
    op.create_table(
        "identifiers",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", name=op.f("pk_identifiers")),
        comment="Normalized identifiers (customer_id, email, phone, anonymous_id, loyalty_card).",
        info={"personal": "person_id"},
    )
    op.create_index(op.f("ix_identifiers_person_id"), "identifiers", ["person_id"], unique=False)
    op.create_table(
        "import_runs",
        sa.Column("run_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "mapping",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_accepted", sa.BigInteger(), nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=False),
        sa.Column("rows_duplicate", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_import_runs")),
        info={"personal": None},
    )
    op.create_table(
        "merge_blocks",
        sa.Column("node_a", sa.BigInteger(), nullable=False),
        sa.Column("node_b", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("node_a", "node_b", name=op.f("pk_merge_blocks")),
        comment="Pairs of nodes a user has unmerged: they are never merged again automatically.",
        info={"personal": "node_a,node_b"},
    )
    op.create_table(
        "merges",
        sa.Column("merge_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("survivor_id", sa.BigInteger(), nullable=False),
        sa.Column("absorbed_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("merged_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("merge_id", name=op.f("pk_merges")),
        comment="Every merge of two identity nodes, with the identifiers that linked them.",
        info={"personal": "survivor_id,absorbed_id"},
    )
    op.create_index(op.f("ix_merges_absorbed_id"), "merges", ["absorbed_id"], unique=False)
    op.create_index(op.f("ix_merges_survivor_id"), "merges", ["survivor_id"], unique=False)
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Float(precision=53), nullable=False),
        sa.Column("amount", sa.Float(precision=53), nullable=False),
        sa.Column("is_fee", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_no", name=op.f("pk_order_lines")),
        info={"personal": "via:orders"},
    )
    op.create_index(
        op.f("ix_order_lines_product_code"), "order_lines", ["product_code"], unique=False
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("customer_ref", sa.String(length=256), nullable=True),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("ordered_at", sa.DateTime(), nullable=False),
        sa.Column("is_return", sa.Boolean(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("total_amount", sa.Float(precision=53), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
        comment="Orders and returns. On erasure an order is kept for sales totals, detached from the person (person_id, node_id and customer_ref cleared).",
        info={"personal": "person_id", "erase": "detach"},
    )
    op.create_index(op.f("ix_orders_ordered_at"), "orders", ["ordered_at"], unique=False)
    op.create_index(op.f("ix_orders_person_id"), "orders", ["person_id"], unique=False)
    op.create_table(
        "people",
        sa.Column("person_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("merged_into", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_people")),
        comment="Identity nodes. A person is a node with merged_into NULL; absorbed nodes point to the node they were merged into.",
        info={"personal": "person_id"},
    )
    op.create_index(op.f("ix_people_merged_into"), "people", ["merged_into"], unique=False)
    op.create_table(
        "products",
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=True),
        sa.Column("category", sa.String(length=128), nullable=True),
        sa.Column("price", sa.Float(precision=53), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("product_code", name=op.f("pk_products")),
        info={"personal": None},
    )
    op.create_table(
        "quarantine",
        sa.Column("quarantine_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False, comment="import or api"),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source_name", sa.String(length=1024), nullable=False),
        sa.Column("location", sa.String(length=256), nullable=False, comment="row N or messageId"),
        sa.Column("field", sa.String(length=256), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False, comment="open, replayed"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("replayed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("quarantine_id", name=op.f("pk_quarantine")),
        comment="Rejected records with the reason; replayable after the mapping is fixed.",
        info={"personal": "payload"},
    )
    op.create_index(op.f("ix_quarantine_run_id"), "quarantine", ["run_id"], unique=False)
    op.create_table(
        "stock",
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column(
            "store_id", sa.String(length=64), nullable=False, comment="'online' for web stock"
        ),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("product_code", "store_id", name=op.f("pk_stock")),
        info={"personal": None},
    )
    op.create_table(
        "stores",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("city", sa.String(length=128), nullable=True),
        sa.Column("postcode", sa.String(length=32), nullable=True),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("latitude", sa.Float(precision=53), nullable=True),
        sa.Column("longitude", sa.Float(precision=53), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_stores")),
        info={"personal": None},
    )
    op.create_table(
        "survey_answers",
        sa.Column("answer_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("survey", sa.String(length=128), nullable=True),
        sa.Column(
            "metric",
            sa.String(length=8),
            nullable=False,
            comment="nps (0-10), csat (1-5), ces (1-7)",
        ),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("answer_id", name=op.f("pk_survey_answers")),
        info={"personal": "person_id"},
    )
    op.create_index(
        op.f("ix_survey_answers_person_id"), "survey_answers", ["person_id"], unique=False
    )
    op.create_table(
        "traits",
        sa.Column("record_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("reliability", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("record_key", "name", name=op.f("pk_traits")),
        comment="Every observed trait value with its provenance; resolution picks one per name.",
        info={"personal": "person_id"},
    )
    op.create_index(op.f("ix_traits_person_id"), "traits", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_traits_person_id"), table_name="traits")
    op.drop_table("traits")
    op.drop_index(op.f("ix_survey_answers_person_id"), table_name="survey_answers")
    op.drop_table("survey_answers")
    op.drop_table("stores")
    op.drop_table("stock")
    op.drop_index(op.f("ix_quarantine_run_id"), table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_table("products")
    op.drop_index(op.f("ix_people_merged_into"), table_name="people")
    op.drop_table("people")
    op.drop_index(op.f("ix_orders_person_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_ordered_at"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_order_lines_product_code"), table_name="order_lines")
    op.drop_table("order_lines")
    op.drop_index(op.f("ix_merges_survivor_id"), table_name="merges")
    op.drop_index(op.f("ix_merges_absorbed_id"), table_name="merges")
    op.drop_table("merges")
    op.drop_table("merge_blocks")
    op.drop_table("import_runs")
    op.drop_index(op.f("ix_identifiers_person_id"), table_name="identifiers")
    op.drop_table("identifiers")
    op.drop_index(op.f("ix_events_person_id"), table_name="events")
    op.drop_index(op.f("ix_events_occurred_at"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_consents_person_id"), table_name="consents")
    op.drop_table("consents")
    op.drop_index(op.f("ix_channel_activity_person_id"), table_name="channel_activity")
    op.drop_index(op.f("ix_channel_activity_occurred_at"), table_name="channel_activity")
    op.drop_table("channel_activity")
    for name in SEQUENCES:
        op.execute(sa.schema.DropSequence(sa.Sequence(name)))
