"""web keys' origins

Adds ``api_key_origins``: the page origins (``https://shop.example``) from which a browser may
use a key with the ``web`` scope (:mod:`surmesure.api.web`); a key with none is refused to
every page. No customer's data.

Revision ID: 0045
Revises: 0043
Create Date: 2026-12-05 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key_origins",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column(
            "origin", sa.String(256), primary_key=True, comment="scheme://host[:port], lower case"
        ),
        comment="Page origins a web key may be used from (CORS answers them alone).",
    )


def downgrade() -> None:
    op.drop_table("api_key_origins")
