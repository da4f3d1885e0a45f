"""video films of campaigns

Adds ``video_films``: per campaign and person, the film their video page plays (the content
hash of its files in ``SURMESURE_VIDEO_DIR``, whether it is the neutral film, its length), so
a page finds its film from the server's record, never from its address.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-05 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "video_films",
        sa.Column(
            "film_id",
            sa.String(64),
            primary_key=True,
            comment="SHA-256 of the campaign and node id",
        ),
        sa.Column("person_id", sa.BigInteger, nullable=True),
        sa.Column("node_id", sa.BigInteger, nullable=True),
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
        comment="The film each person's video page of a campaign plays: the page finds its "
        "files here, never from its address.",
    )
    op.create_index("ix_video_films_person_id", "video_films", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_video_films_person_id", "video_films")
    op.drop_table("video_films")
