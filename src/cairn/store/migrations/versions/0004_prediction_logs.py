"""Online-prediction logs: sampled requests and responses, and the per-request access log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_logs",
        sa.Column("seq", _SEQ_TYPE, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),  # microseconds since the epoch
        sa.Column("raw_data", sa.Text(), nullable=False),
        sa.Column("raw_prediction", sa.Text(), nullable=True),
        sa.Column("groundtruth", sa.Text(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_request_logs_model_time",
        "request_logs",
        ["project", "model", "model_version", "time"],
    )
    # Trimming finds each project's table name's newest rows, and the oldest rows of all,
    # through these without scanning.
    op.create_index("ix_request_logs_table_time", "request_logs", ["project", "table_name", "time"])
    op.create_index("ix_request_logs_time", "request_logs", ["time", "seq"])
    op.create_table(
        "access_logs",
        sa.Column("seq", _SEQ_TYPE, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("latency_seconds", sa.Float(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("request_bytes", sa.BigInteger(), nullable=False),
        sa.Column("response_bytes", sa.BigInteger(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_access_logs_model_time",
        "access_logs",
        ["project", "model", "model_version", "time"],
    )
    op.create_index("ix_access_logs_group_time", "access_logs", ["project", "model", "time"])
    op.create_index("ix_access_logs_time", "access_logs", ["time", "seq"])


def downgrade() -> None:
    op.drop_index("ix_access_logs_time", table_name="access_logs")
    op.drop_index("ix_access_logs_group_time", table_name="access_logs")
    op.drop_index("ix_access_logs_model_time", table_name="access_logs")
    op.drop_table("access_logs")
    op.drop_index("ix_request_logs_time", table_name="request_logs")
    op.drop_index("ix_request_logs_table_time", table_name="request_logs")
    op.drop_index("ix_request_logs_model_time", table_name="request_logs")
    op.drop_table("request_logs")
