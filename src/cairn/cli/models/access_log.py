"""`cairn models access-log read MODEL`: one row per prediction request of the model."""

from __future__ import annotations

import click

from cairn.cli.options import (
    CairnCommand,
    CairnGroup,
    Session,
    common_options,
    order_option,
)
from cairn.cli.output import Column, field


@click.group("access-log", cls=CairnGroup)
def access_log() -> None:
    """Read a model's access log (models created with --enable-logging)."""


@access_log.command(cls=CairnCommand)
@click.argument("model")
@click.option("--version", "version", help="Only this version's requests.")
@click.option("--since", help="Only requests at or after this RFC 3339 time.")
@click.option("--until", help="Only requests before this RFC 3339 time.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@order_option
@common_options
def read(
    model: str,
    version: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    order: str,
    session: Session,
) -> None:
    """Print model MODEL's prediction requests: time, version, status, latency, sizes.

    \b
    Examples:
      cairn models create census --enable-logging
      cairn models access-log read census --limit 20
      cairn models access-log read census --version v2 --since 2026-11-30T14:00:00Z
    """
    entries = session.client.prediction_log_entries(
        "accessLogs",
        model,
        version=version,
        since=since,
        until=until,
        newest_first=order == "desc",
        limit=limit,
    )
    columns = [
        Column("TIME", field("time")),
        Column("VERSION", field("model_version")),
        Column("STATUS", field("status")),
        Column("LATENCY_MS", lambda e: f"{float(e.get('latency_seconds') or 0) * 1e3:.2f}"),
        Column("REQUEST_BYTES", field("request_bytes")),
        Column("RESPONSE_BYTES", field("response_bytes")),
    ]
    session.printer.resources(entries, columns)
