"""Vizier studies, their trials, and operations named under a location.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_RESOURCES: dict[str, tuple[str, ...]] = {
    "studies": ("project", "location", "study"),
    "study_trials": ("project", "location", "study", "trial"),
    "location_operations": ("project", "location", "operation_id"),
}


def upgrade() -> None:
    for name, key_columns in _RESOURCES.items():
        op.create_table(
            name,
            sa.Column("seq", _SEQ_TYPE, primary_key=True, autoincrement=True),
            *(sa.Column(column, sa.String(), nullable=False) for column in key_columns),
            sa.Column("state", sa.String(), nullable=True),
            sa.Column("doc", sa.Text(), nullable=False),
            sa.UniqueConstraint(*key_columns, name=f"uq_{name}_key"),
            sqlite_autoincrement=True,
        )
        op.create_index(f"ix_{name}_parent_seq", name, [*key_columns[:-1], "seq"])
        op.create_index(f"ix_{name}_state", name, ["state"])


def downgrade() -> None:
    for name in reversed(_RESOURCES):
        op.drop_index(f"ix_{name}_state", table_name=name)
        op.drop_index(f"ix_{name}_parent_seq", table_name=name)
        op.drop_table(name)
