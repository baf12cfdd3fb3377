"""node identity and approval; why a session ended

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nodes registered before this revision have no key: their next join registers one.
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_key", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("approved", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("recording_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recording_session", schema=None) as batch_op:
        batch_op.drop_column("end_reason")
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.drop_column("approved")
        batch_op.drop_column("public_key")
