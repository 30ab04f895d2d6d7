"""pair_state.not_before: a rate-limited pair's earliest next scheduled run

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 01:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("pair_state") as batch:
        batch.add_column(sa.Column("not_before", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("pair_state") as batch:
        batch.drop_column("not_before")
