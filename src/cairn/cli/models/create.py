"""`cairn models create MODEL`."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.options import CairnCommand, Session, common_options, parse_labels, parse_list


@click.command(cls=CairnCommand)
@click.argument("model")
@click.option("--regions", help="The model's region (exactly one), e.g. us-central1.")
@click.option("--description", help="Free-text description.")
@click.option(
    "--enable-logging", is_flag=True, help="Log online prediction access (onlinePredictionLogging)."
)
@click.option(
    "--enable-console-logging",
    is_flag=True,
    help="Keep the nodes' stdout/stderr readable (onlinePredictionConsoleLogging).",
)
@click.option("--labels", help="Labels as KEY=VALUE,KEY=VALUE.")
@common_options
def create(
    model: str,
    regions: str | None,
    description: str | None,
    enable_logging: bool,
    enable_console_logging: bool,
    labels: str | None,
    session: Session,
) -> None:
    """Create model MODEL (letters, digits and underscores, starting with a letter)."""
    body: dict[str, Any] = {"name": model}
    chosen = parse_list(regions) or ([session.region] if session.region else [])
    if chosen:
        body["regions"] = chosen
    if description is not None:
        body["description"] = description
    if enable_logging:
        body["onlinePredictionLogging"] = True
    if enable_console_logging:
        body["onlinePredictionConsoleLogging"] = True
    if labels is not None:
        body["labels"] = parse_labels(labels)
    created = session.client.create_model(body)
    session.printer.status(f"Created model [{created.get('name', model)}].")
    if session.printer.format:
        session.printer.resource(created)
