"""`cairn predict`: send instances to a deployed version and print its predictions.

Input files follow gcloud: `--json-request` is a whole request body, `--json-instances` one
JSON instance per line, `--text-instances` one string instance per line; `-` reads stdin.
"""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.instances import chosen_input, read_instances
from cairn.cli.options import CairnCommand, Session, common_options
from cairn.cli.output import Column, field


@click.command(cls=CairnCommand)
@click.option("--model", required=True, help="Model to ask (its default version unless --version).")
@click.option("--version", help="Version to ask instead of the model's default.")
@click.option(
    "--json-request",
    metavar="FILE",
    help='File holding a whole request body {"instances": [...]} (- for stdin).',
)
@click.option(
    "--json-instances",
    metavar="FILE",
    help="File with one JSON instance per line (- for stdin).",
)
@click.option(
    "--text-instances",
    metavar="FILE",
    help="File with one text instance per line (- for stdin).",
)
@click.option("--signature-name", help="SavedModel signature to call (TensorFlow).")
@common_options
def predict(
    model: str,
    version: str | None,
    json_request: str | None,
    json_instances: str | None,
    text_instances: str | None,
    signature_name: str | None,
    session: Session,
) -> None:
    """Get online predictions for up to 100 instances from MODEL (or one VERSION of it).

    \b
    Example:
      echo '[1.0, 2.0, 3.0, 4.0]' | cairn predict --model census --json-instances -
    """
    flag, source = chosen_input(
        json_request=json_request, json_instances=json_instances, text_instances=text_instances
    )
    instances, request_signature = read_instances(flag, source)
    body: dict[str, Any] = {"instances": instances}
    if signature_name or request_signature:
        body["signature_name"] = signature_name or request_signature
    client = session.client
    name = client.version_name(model, version) if version else client.model_name(model)
    answer = client.predict(name, body)
    printer = session.printer
    if printer.format in ("json", "yaml"):
        printer.value(answer)
        return
    predictions = answer.get("predictions", [])
    printer.value(predictions, _columns_for(predictions))


def _columns_for(predictions: list[Any]) -> list[Column] | None:
    """A table when every prediction is a scalar, or an object of scalars; else JSON."""
    if not predictions:
        return None
    if all(_is_scalar(p) for p in predictions):
        return [Column("PREDICTIONS", lambda value: value)]
    if all(isinstance(p, dict) and all(_is_scalar(v) for v in p.values()) for p in predictions):
        keys = sorted({key for p in predictions for key in p})
        return [Column(key.upper(), field(key)) for key in keys]
    return None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
