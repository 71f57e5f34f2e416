"""`cairn logging read`: the audit log (what Cloud Audit Logs were to AI Platform users)."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, CairnGroup, GcloudChoice, Session, common_options
from cairn.cli.output import Column, field


@click.group(cls=CairnGroup)
def logging() -> None:
    """Read the audit log: every change, every refused call, every sign-in."""


@logging.command(cls=CairnCommand)
@click.argument("log_filter", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--order", type=GcloudChoice(["desc", "asc"]), default="desc", show_default=True)
@click.option(
    "--organization",
    is_flag=True,
    help="Read the instance-wide entries (sign-ins, people, groups) instead of the project's.",
)
@common_options
def read(
    log_filter: str | None, limit: int, order: str, organization: bool, session: Session
) -> None:
    """Print audit entries, newest first, optionally matching LOG_FILTER.

    \b
    Examples:
      cairn logging read
      cairn logging read 'severity=ERROR'
      cairn logging read 'protoPayload.authenticationInfo.principalEmail="ada@example.com"'
      cairn logging read 'timestamp>="2026-11-30T00:00:00Z"' --order asc
    """
    scope = "organizations/cairn" if organization else session.client.project_name
    entries = session.client.read_audit_log(
        scope, log_filter, newest_first=order == "desc", limit=limit
    )
    columns = [
        Column("TIMESTAMP", field("timestamp")),
        Column("SEVERITY", field("severity")),
        Column("PRINCIPAL", field("protoPayload.authenticationInfo.principalEmail")),
        Column("METHOD", field("protoPayload.methodName")),
        Column("RESOURCE", field("protoPayload.resourceName")),
        Column(
            "STATUS", lambda e: (e.get("protoPayload") or {}).get("status", {}).get("message", "OK")
        ),
    ]
    session.printer.resources(entries, columns)
