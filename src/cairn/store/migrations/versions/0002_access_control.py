"""Access control: principals, IAM policies, the audit log and issued credentials.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_RESOURCES: dict[str, tuple[str, ...]] = {
    "principals": ("kind", "email"),
    "policies": ("resource",),
    "audit_entries": ("project", "entry_id"),
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
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("principal", sa.String(), nullable=False),
        sa.Column("bound_to", sa.String(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("doc", sa.Text(), nullable=False),
    )
    op.create_index("ix_credentials_principal", "credentials", ["principal"])
    op.create_index("ix_credentials_bound_to", "credentials", ["bound_to"])
    op.create_index("ix_credentials_expires_at", "credentials", ["expires_at"])


def downgrade() -> None:
    op.drop_table("credentials")
    for name in reversed(_RESOURCES):
        op.drop_index(f"ix_{name}_state", table_name=name)
        op.drop_index(f"ix_{name}_parent_seq", table_name=name)
        op.drop_table(name)
