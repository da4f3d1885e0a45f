"""The unify stage's tables: the identity graph (nodes, identifiers, merges and the
pairs never to merge again) and the identifiers low-trust sources claim. Part of
:mod:`surmesure.store.schema`, which re-exports them."""

from __future__ import annotations

import sqlalchemy as sa

from surmesure.store.meta import Json, metadata

person_id_seq = sa.Sequence("person_id_seq", metadata=metadata)
merge_id_seq = sa.Sequence("merge_id_seq", metadata=metadata)

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
    # indexed alone too: DuckDB probes no index of several columns, so a lookup by the primary
    # key read every identifier; the blind index names its kind, so the value alone finds it
    sa.Column("value", sa.String(320), primary_key=True, index=True),
    sa.Column("person_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("node_id", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("first_seen_at", sa.DateTime, nullable=False),
    sa.Column(
        "claimed",
        sa.Boolean,
        nullable=True,
        comment="true: held by a low-trust claim only; a vouched record naming it takes it over",
    ),
    sa.Column("sealed", sa.LargeBinary, nullable=True, comment="the value, sealed under node_id"),
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

TABLES = (
    people,
    identifiers,
    merges,
    merge_blocks,
    identity_claims,
)
"""The tables this stage owns: no other stage's module defines them."""
