"""session mode: best_effort or all_or_nothing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recording_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=16), nullable=False, server_default="best_effort")
        )


def downgrade() -> None:
    with op.batch_alter_table("recording_session", schema=None) as batch_op:
        batch_op.drop_column("mode")
