"""The protect stage's tables: consent and marketing preferences, erasure that sticks
(suppressions and the data keys crypto-shredding deletes), API keys and the audit log. Part of
:mod:`surmesure.store.schema`, which re-exports them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Json, metadata, person_columns

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("consent_id", sa.String(64), primary_key=True),
    *person_columns(),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("granted", sa.Boolean, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("evidence", sa.String(512), nullable=True),
    info={"personal": "person_id"},
    comment="Consent history: the latest row per (person, purpose, channel) is in force.",
)

preferences = sa.Table(
    "preferences",
    metadata,
    sa.Column("preference_id", sa.String(64), primary_key=True),
    *person_columns(),
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

api_key_origins = sa.Table(
    "api_key_origins",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column(
        "origin", sa.String(256), primary_key=True, comment="scheme://host[:port], lower case"
    ),
    info={"personal": None},
    comment="Page origins a web key may be used from (CORS answers them alone).",
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

console_users = sa.Table(
    "console_users",
    metadata,
    sa.Column("user_id", sa.String(32), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True, comment="lower case"),
    sa.Column("password_hash", sa.String(256), nullable=False, comment="argon2id, PHC string"),
    sa.Column("role", sa.String(16), nullable=False, comment="viewer, analyst, marketer, admin"),
    sa.Column("language", sa.String(8), nullable=False, comment="the console's language: en, fr"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_login_at", sa.DateTime, nullable=True),
    sa.Column("disabled_at", sa.DateTime, nullable=True),
    # the shop's own staff, not its customers: not part of a customer's export or erasure
    info={"personal": None},
    comment="People who sign in to the console: a password hash and a role, never a password.",
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True, comment="SHA-256 of the token"),
    sa.Column("user_id", sa.String(32), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime, nullable=True, comment="signed out or user disabled"),
    info={"personal": None},
    comment="Console sessions: the cookie carries a signed random token; only its hash is kept.",
)

TABLES = (
    consents,
    preferences,
    suppressions,
    suppression_state,
    person_keys,
    api_keys,
    api_key_origins,
    audit_log,
    console_users,
    console_sessions,
)
"""The tables this stage owns: no other stage's module defines them."""
