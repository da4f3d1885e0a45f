"""The deliver stage's tables: campaigns, their versions, the message outbox, and what
providers reported of each message. Part of :mod:`surmesure.store.schema`, which re-exports
them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Json, metadata, person_columns

delivery_reports = sa.Table(
    "delivery_reports",
    metadata,
    sa.Column("report_id", sa.String(32), primary_key=True),
    sa.Column("message_id", sa.String(64), nullable=False, comment="the outbox's message id"),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column(
        "status",
        sa.String(16),
        nullable=False,
        comment="delivered, failed, buffered, accepted or rejected",
    ),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Index(None, "message_id", "received_at"),
    info={"personal": None},
    comment="What providers reported of each message after it left (an SMS delivery report), "
    "oldest first; no text of the provider's answer, which may quote the message.",
)


# -- deliver: campaigns and the outbox ------------------------------------------------------------

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, comment="current version"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="Campaigns by name, with the version in force.",
)

campaign_versions = sa.Table(
    "campaign_versions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", Json, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    info={"personal": None},
    comment="Every saved document of every campaign; a changed document adds a version.",
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("campaign", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("person_id", sa.BigInteger, nullable=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("step", sa.SmallInteger, nullable=False),
    sa.Column(
        "status",
        sa.String(16),
        nullable=False,
        comment="planned, sending, sent, failed, suppressed or held_out",
    ),
    sa.Column("reason", sa.String(200), nullable=True, comment="why suppressed, held out, failed"),
    sa.Column("attempts", sa.SmallInteger, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime, nullable=True),
    sa.Column("provider_id", sa.String(256), nullable=True),
    sa.Column("units", sa.SmallInteger, nullable=True, comment="what the provider bills"),
    sa.Column("planned_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.Column(
        "action",
        sa.String(128),
        nullable=True,
        comment="the next best action chosen for the person (do nothing included)",
    ),
    sa.Column(
        "variant",
        sa.String(64),
        nullable=True,
        comment="the template variant that carries the action",
    ),
    sa.UniqueConstraint("campaign", "person_id", "channel", "step"),
    sa.Index(None, "campaign", "status"),
    sa.Index(None, "person_id", "sent_at"),
    # the content is not stored: it is rendered when the message leaves
    info={"personal": "person_id", "erase": "detach"},
    comment="The outbox: one row per campaign, person, channel and step, recorded before the "
    "message leaves; an erased person's rows stay for the counts, detached.",
)


# -- the web channel and what came back of an address ---------------------------------------------

page_views = sa.Table(
    "page_views",
    metadata,
    sa.Column(
        "page_id", sa.String(64), primary_key=True, comment="SHA-256 of the page link's token"
    ),
    *person_columns(),
    sa.Column("campaign", sa.String(64), nullable=True, comment="the campaign whose link it is"),
    sa.Column("decision_id", sa.String(64), nullable=False, comment="what the page shows"),
    sa.Column("first_viewed_at", sa.DateTime, nullable=False),
    sa.Column("last_viewed_at", sa.DateTime, nullable=False),
    sa.Column("views", sa.Integer, nullable=False),
    info={"personal": "person_id"},
    comment="Each personal page opened, with the decision it shows: a page shows the same "
    "content and offers every time its link is opened.",
)

address_flags = sa.Table(
    "address_flags",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True, comment="email or postal"),
    sa.Column(
        "address",
        sa.String(64),
        primary_key=True,
        comment="blind index of the address (an e-mail's is its identifiers.value)",
    ),
    *person_columns(),
    sa.Column("status", sa.String(16), nullable=False, comment="bounced or undeliverable"),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="Addresses that cannot be reached: a hard bounce of an e-mail address, a letter "
    "returned undeliverable. Only that address is skipped, not the person's other ones.",
)

message_files = sa.Table(
    "message_files",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True, comment="the outbox's message id"),
    sa.Column("path", sa.String(1024), nullable=False, comment="absolute path of the file"),
    sa.Column("channel", sa.String(16), nullable=False, comment="paper or phone"),
    sa.Column("person_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("written_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="The file each message was written into (a print batch, a call list), so that "
    "erasing the person rewrites the file without them.",
)

video_films = sa.Table(
    "video_films",
    metadata,
    sa.Column(
        "film_id", sa.String(64), primary_key=True, comment="SHA-256 of the campaign and node id"
    ),
    *person_columns(),
    sa.Column("campaign", sa.String(64), nullable=False, comment="the campaign that shows it"),
    sa.Column(
        "content_hash",
        sa.String(64),
        nullable=False,
        comment="the film's files in SURMESURE_VIDEO_DIR: <hash>.mp4, .jpg, .vtt",
    ),
    sa.Column("neutral", sa.Boolean, nullable=False, comment="the film shows nothing personal"),
    sa.Column("duration_s", sa.Float(precision=53), nullable=False),
    sa.Column("rendered_at", sa.DateTime, nullable=False),
    info={"personal": "person_id"},
    comment="The film each person's video page of a campaign plays: the page finds its files "
    "here, never from its address.",
)

TABLES = (
    delivery_reports,
    campaigns,
    campaign_versions,
    messages,
    page_views,
    address_flags,
    message_files,
    video_films,
)
"""The tables this stage owns: no other stage's module defines them."""
