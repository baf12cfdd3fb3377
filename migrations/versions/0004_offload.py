"""offload: the archive's state on each recording, offload jobs and their files

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("archive_state", sa.String(length=16), nullable=False, server_default="none")
        )
        batch_op.add_column(sa.Column("archive_path", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("archive_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("archived_at_ns", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("confirmed_at_ns", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("corrupt_copies", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )

    op.create_table(
        "offload_job",
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("request_json", sa.Text(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("finished_at_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("job_id"),
    )
    with op.batch_alter_table("offload_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offload_job_state"), ["state"], unique=False)

    op.create_table(
        "offload_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("resume_offsets", sa.String(length=2000), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["offload_job.job_id"]),
        sa.ForeignKeyConstraint(["recording_id"], ["recording.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("offload_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offload_file_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_offload_file_recording_id"), ["recording_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("offload_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offload_file_recording_id"))
        batch_op.drop_index(batch_op.f("ix_offload_file_job_id"))
    op.drop_table("offload_file")
    with op.batch_alter_table("offload_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offload_job_state"))
    op.drop_table("offload_job")
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.drop_column("corrupt_copies")
        batch_op.drop_column("confirmed_at_ns")
        batch_op.drop_column("archived_at_ns")
        batch_op.drop_column("archive_sha256")
        batch_op.drop_column("archive_path")
        batch_op.drop_column("archive_state")
