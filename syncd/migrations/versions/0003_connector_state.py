"""connector_state: each connector's own durable key-value store (plugin API 2)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 01:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "connector_state",
        sa.Column("connector", AutoString(length=200), nullable=False),
        sa.Column("key", AutoString(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connector", "key"),
    )


def downgrade() -> None:
    """Undo this revision."""
    op.drop_table("connector_state")
