"""session metadata: the operator's notes on each session and when they were last edited

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recording_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("metadata_json", sa.Text(), nullable=False, server_default="{}")
        )
        batch_op.add_column(sa.Column("edited_at_ns", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recording_session", schema=None) as batch_op:
        batch_op.drop_column("edited_at_ns")
        batch_op.drop_column("metadata_json")
