"""`cairn logging read`: every log Cairn keeps, in Cloud Logging's filter language.

As `gcloud logging read`: newest first, entries of the last day unless the filter names a
timestamp (`--freshness`, only when reading newest first), `--limit`, `--order`. The entries
are Cloud Logging LogEntry objects (docs/logging.md); `--format json|yaml` prints them whole.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from cairn.cli.options import (
    CairnCommand,
    CairnGroup,
    Session,
    common_options,
    order_option,
)
from cairn.cli.output import Column, field

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MESSAGE_CHARS = 160


class Freshness(click.ParamType):
    """gcloud's durations: 1d, 2h, 30m, 45s, 1w, or combined (1h30m)."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        parts = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration such as 1d, 12h, 30m or 1h30m.", param, ctx)
        return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


@click.group(cls=CairnGroup)
def logging() -> None:
    """Read Cairn's logs: jobs' replicas, prediction nodes, requests, audit, the server."""


class _FilterArgument(click.Argument):
    """FILTER, with a line of its own under Options (click gives an argument none)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str]:
        return "[FILTER]", "A filter as above; none lists every entry of the scope."


@logging.command(cls=CairnCommand)
@click.argument("log_filter", cls=_FilterArgument, required=False, metavar="[FILTER]")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Print at most this many entries.",
)
@click.option(
    "--freshness",
    type=Freshness(),
    default="1d",
    show_default=True,
    help="Only entries this recent (1d, 6h, 30m, 1w). Applies when reading newest first and "
    "the filter names no timestamp, as in gcloud.",
)
@order_option
@click.option(
    "--organization",
    is_flag=True,
    help="Read the instance's entries instead of the project's: sign-ins, changes to people "
    "and groups, and Cairn's own service log (for the instance's administrators).",
)
@common_options
def read(
    log_filter: str | None,
    limit: int,
    freshness: timedelta,
    order: str,
    organization: bool,
    session: Session,
) -> None:
    """Print log entries matching FILTER, newest first.

    FILTER is Cloud Logging's filter language. Comparisons: = != > >= < <=,
    : (contains; FIELD:* is "present"), =~ and !~ (RE2 regular expressions, as
    Cloud Logging's: searched, not anchored); FIELD=(a OR b); AND, OR, NOT or -,
    parentheses; terms side by side are ANDed; a bare word searches every field.
    Strings compare ignoring case (regular expressions do not); severity compares
    by rank, timestamp as a time.

    \b
    The entries (docs/logging.md):
      resource.type=ml_job                 replica and service lines of jobs
        resource.labels.job_id, resource.labels.task_name (master-replica-0, service)
      resource.type=cloudml_model_version  prediction node output, access and request logs
        resource.labels.model_id, resource.labels.version_id
      resource.type=audited_resource       the audit log (protoPayload.methodName, ...)
      resource.type=cairn_server           Cairn's own log (with --organization)

    \b
    Examples:
      cairn logging read
      cairn logging read 'resource.labels.job_id=my_job severity>=ERROR'
      cairn logging read 'resource.type=ml_job resource.labels.task_name="worker-replica-1"'
      cairn logging read 'textPayload:"loss" timestamp>="2026-11-30T10:00:00Z"' --order asc
      cairn logging read 'resource.labels.model_id=census logName:console' --freshness 1h
      cairn logging read 'protoPayload.authenticationInfo.principalEmail="ada@example.com"'
      cairn logging read 'resource.type=cairn_server severity>=WARNING' --organization
      cairn logging read 'resource.labels.job_id=my_job' --format json
    """
    scope = "organizations/cairn" if organization else session.client.project_name
    combined = log_filter
    if order == "desc" and (not log_filter or "timestamp" not in log_filter):
        since = datetime.now(UTC) - freshness
        bound = f'timestamp>="{since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}"'
        combined = f"({log_filter}) AND {bound}" if log_filter else bound
    entries = session.client.read_log_entries(
        scope, combined, newest_first=order == "desc", limit=limit
    )
    columns = [
        Column("TIMESTAMP", field("timestamp")),
        Column("SEVERITY", field("severity")),
        Column("RESOURCE", resource_of),
        Column("MESSAGE", message_of),
    ]
    session.printer.resources(entries, columns)


def resource_of(entry: dict[str, Any]) -> str:
    """The entry's resource in a few words: `ml_job job/task`, `cloudml_model_version m/v`."""
    resource = entry.get("resource") or {}
    labels = resource.get("labels") or {}
    kind = str(resource.get("type", ""))
    if kind == "ml_job":
        trial = (entry.get("labels") or {}).get("ml.googleapis.com/trial_id")
        task = f"trial-{trial}/{labels.get('task_name', '')}" if trial else labels.get("task_name")
        return f"{kind} {labels.get('job_id', '')}/{task}"
    if kind == "cloudml_model_version":
        return f"{kind} {labels.get('model_id', '')}/{labels.get('version_id', '')}"
    return kind


def message_of(entry: dict[str, Any]) -> str:
    """What happened, on one line."""
    text: str
    if "textPayload" in entry:
        text = str(entry["textPayload"])
    elif "protoPayload" in entry:
        audit = entry["protoPayload"]
        who = (audit.get("authenticationInfo") or {}).get("principalEmail") or "anonymous"
        status = audit.get("status") or {}
        outcome = status.get("message") or "OK"
        text = f"{audit.get('methodName', '')} by {who} on {audit.get('resourceName', '')}: "
        text += outcome
    elif "httpRequest" in entry:
        request = entry["httpRequest"]
        text = (
            f"{request.get('requestMethod', '')} {request.get('status', '')} "
            f"{request.get('latency', '')} {request.get('requestSize', '')}B in, "
            f"{request.get('responseSize', '')}B out"
        )
    else:
        payload = entry.get("jsonPayload") or {}
        text = str(payload.get("message") or payload.get("raw_data") or payload)
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"
