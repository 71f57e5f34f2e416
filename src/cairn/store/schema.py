"""The tables, as SQLAlchemy Core objects the repositories query.

Each resource table holds the resource's proto3-JSON document in `doc`, its key split into
indexed columns, the `state` copied out of the document so recovery queries need no JSON
scan, and `seq`, a never-reused increasing number that defines creation order for paging.

The migrations under `migrations/versions/` create these tables; they are written out there
by hand (a migration is a frozen snapshot), and `tests/store` checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

metadata = sa.MetaData()

# BIGINT identity on PostgreSQL; on SQLite it must be INTEGER to alias the rowid, and
# AUTOINCREMENT (sqlite_autoincrement) stops a deleted row's number from being reused.
_SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@dataclass(frozen=True)
class ResourceTable:
    """A resource table and which of its columns form the key, parent first."""

    table: sa.Table
    key_columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.table.name


def _resource_table(name: str, *key_columns: str) -> ResourceTable:
    table = sa.Table(
        name,
        metadata,
        sa.Column("seq", _SEQ_TYPE, primary_key=True, autoincrement=True),
        *(sa.Column(column, sa.String(), nullable=False) for column in key_columns),
        sa.Column("state", sa.String(), nullable=True),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.UniqueConstraint(*key_columns, name=f"uq_{name}_key"),
        sa.Index(f"ix_{name}_parent_seq", *key_columns[:-1], "seq"),
        sa.Index(f"ix_{name}_state", "state"),
        sqlite_autoincrement=True,
    )
    return ResourceTable(table, key_columns)


JOBS = _resource_table("jobs", "project", "job_id")
MODELS = _resource_table("models", "project", "model")
VERSIONS = _resource_table("versions", "project", "model", "version")
OPERATIONS = _resource_table("operations", "project", "operation_id")
# Users, service accounts and groups: kind is "user", "serviceAccount" or "group".
PRINCIPALS = _resource_table("principals", "kind", "email")
# IAM policies keyed by the resource they attach to (instance, project, model or job).
POLICIES = _resource_table("policies", "resource")
# The audit log: one entry per mutating, denied or sign-in call; "-" holds instance-wide ones.
AUDIT = _resource_table("audit_entries", "project", "entry_id")
# Vizier studies and their trials; trial ids are numbers given out by the study ("1", "2", …).
STUDIES = _resource_table("studies", "project", "location", "study")
STUDY_TRIALS = _resource_table("study_trials", "project", "location", "study", "trial")
# Operations named under a location (`projects/P/locations/L/operations/OP`): suggestions
# and early-stopping checks.
LOCATION_OPERATIONS = _resource_table("location_operations", "project", "location", "operation_id")

# Hashes of the secrets Cairn has handed out (access and refresh tokens, login codes) and
# the public halves of service-account keys; never a secret itself.
CREDENTIALS = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("principal", sa.String(), nullable=False),
    sa.Column("bound_to", sa.String(), nullable=True),
    sa.Column("expires_at", sa.Float(), nullable=True),
    sa.Column("doc", sa.Text(), nullable=False),
    sa.Index("ix_credentials_principal", "principal"),
    sa.Index("ix_credentials_bound_to", "bound_to"),
    sa.Index("ix_credentials_expires_at", "expires_at"),
)

RUNTIME = sa.Table(
    "runtime",
    metadata,
    sa.Column("key", sa.String(), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

# Sampled online-prediction requests and responses (a version's requestLoggingConfig), with
# AI Platform's BigQuery columns; `table_name` is the config's bigqueryTableName, so rows of
# one "table" are those carrying its name. `time` is microseconds since the epoch (UTC):
# integers, so time filters and page cursors are exact.
REQUEST_LOGS = sa.Table(
    "request_logs",
    metadata,
    sa.Column("seq", _SEQ_TYPE, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(), nullable=False),
    sa.Column("project", sa.String(), nullable=False),
    sa.Column("model", sa.String(), nullable=False),
    sa.Column("model_version", sa.String(), nullable=False),
    sa.Column("time", sa.BigInteger(), nullable=False),
    sa.Column("raw_data", sa.Text(), nullable=False),
    sa.Column("raw_prediction", sa.Text(), nullable=True),
    sa.Column("groundtruth", sa.Text(), nullable=True),
    # True when raw_data or raw_prediction was cut to the per-body bound of the writer.
    sa.Column("truncated", sa.Boolean(), nullable=False),
    sa.Index("ix_request_logs_model_time", "project", "model", "model_version", "time"),
    # Trimming: the newest rows of each project's table name, and the oldest of all.
    sa.Index("ix_request_logs_table_time", "project", "table_name", "time"),
    sa.Index("ix_request_logs_time", "time", "seq"),
    sqlite_autoincrement=True,
)

# The access log of models created with onlinePredictionLogging: one row per request.
ACCESS_LOGS = sa.Table(
    "access_logs",
    metadata,
    sa.Column("seq", _SEQ_TYPE, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(), nullable=False),
    sa.Column("model", sa.String(), nullable=False),
    sa.Column("model_version", sa.String(), nullable=False),
    sa.Column("time", sa.BigInteger(), nullable=False),
    sa.Column("latency_seconds", sa.Float(), nullable=False),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("request_bytes", sa.BigInteger(), nullable=False),
    sa.Column("response_bytes", sa.BigInteger(), nullable=False),
    sa.Index("ix_access_logs_model_time", "project", "model", "model_version", "time"),
    # Trimming (and reading a model's log over all versions), and the oldest of all.
    sa.Index("ix_access_logs_group_time", "project", "model", "time"),
    sa.Index("ix_access_logs_time", "time", "seq"),
    sqlite_autoincrement=True,
)
