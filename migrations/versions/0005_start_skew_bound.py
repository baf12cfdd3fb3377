"""start skew bound: each recording's clock error bound and reference, each session's bound

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-15 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_error_bound_ns", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("clock_reference", sa.String(length=255), nullable=True))
    with op.batch_alter_table("recording_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skew_bound_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recording_session", schema=None) as batch_op:
        batch_op.drop_column("skew_bound_ms")
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.drop_column("clock_reference")
        batch_op.drop_column("clock_error_bound_ns")
