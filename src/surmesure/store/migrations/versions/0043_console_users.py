"""console users and sessions

Adds ``console_users``: who signs in to the console, with an argon2id password hash (never a
password), a role (viewer, analyst, marketer, admin), a language and when the account was
disabled; and ``console_sessions``: the SHA-256 of each session's random token (the cookie
carries the token, signed), when it expires and when it ended. Neither holds a customer's data.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-05 15:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True, comment="lower case"),
        sa.Column("password_hash", sa.String(256), nullable=False, comment="argon2id, PHC string"),
        sa.Column(
            "role", sa.String(16), nullable=False, comment="viewer, analyst, marketer, admin"
        ),
        sa.Column(
            "language", sa.String(8), nullable=False, comment="the console's language: en, fr"
        ),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_login_at", sa.DateTime, nullable=True),
        sa.Column("disabled_at", sa.DateTime, nullable=True),
        comment="People who sign in to the console: a password hash and a role, never a password.",
    )
    op.create_table(
        "console_sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True, comment="SHA-256 of the token"),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True, comment="signed out or user disabled"),
        comment="Console sessions: the cookie carries a signed random token; only its hash is "
        "kept.",
    )
    op.create_index("ix_console_sessions_user_id", "console_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_user_id", "console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
