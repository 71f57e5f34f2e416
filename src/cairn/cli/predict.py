"""`cairn predict`: send instances to a deployed version and print its predictions.

Input files follow gcloud: `--json-request` is a whole request body, `--json-instances` one
JSON instance per line, `--text-instances` one string instance per line; `-` reads stdin.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.cli.output import Column, field
from cairn.domain.errors import invalid_field

MAX_INSTANCES = 100


@click.command(cls=CairnCommand)
@click.option("--model", required=True, help="Model to ask (its default version unless --version).")
@click.option("--version", help="Version to ask instead of the model's default.")
@click.option(
    "--json-request",
    type=click.File("r", encoding="utf-8-sig"),
    help='File holding a whole request body {"instances": [...]} (- for stdin).',
)
@click.option(
    "--json-instances",
    type=click.File("r", encoding="utf-8-sig"),
    help="File with one JSON instance per line (- for stdin).",
)
@click.option(
    "--text-instances",
    type=click.File("r", encoding="utf-8-sig"),
    help="File with one text instance per line (- for stdin).",
)
@click.option("--signature-name", help="SavedModel signature to call (TensorFlow).")
@common_options
def predict(
    model: str,
    version: str | None,
    json_request: TextIO | None,
    json_instances: TextIO | None,
    text_instances: TextIO | None,
    signature_name: str | None,
    session: Session,
) -> None:
    """Get online predictions for up to 100 instances from MODEL (or one VERSION of it).

    \b
    Example:
      echo '[1.0, 2.0, 3.0, 4.0]' | cairn predict --model census --json-instances -
    """
    given = [f for f in (json_request, json_instances, text_instances) if f is not None]
    if len(given) != 1:
        raise invalid_field(
            "--json-instances",
            "Give exactly one of --json-request, --json-instances or --text-instances.",
        )
    if json_request is not None:
        instances = _request_instances(json_request.read())
    elif json_instances is not None:
        instances = _json_lines(json_instances.read())
    else:
        assert text_instances is not None
        instances = [line.rstrip("\r") for line in text_instances.read().splitlines()]
    if len(instances) > MAX_INSTANCES:
        raise invalid_field(
            "instances",
            f"Online prediction takes at most {MAX_INSTANCES} instances per request; "
            f"this input has {len(instances)}. Split it, or use a batch prediction job.",
        )
    if not instances:
        raise invalid_field("instances", "The input holds no instances.")
    body: dict[str, Any] = {"instances": instances}
    if signature_name:
        body["signature_name"] = signature_name
    client = session.client
    name = client.version_name(model, version) if version else client.model_name(model)
    answer = client.predict(name, body)
    printer = session.printer
    if printer.format in ("json", "yaml"):
        printer.value(answer)
        return
    predictions = answer.get("predictions", [])
    printer.value(predictions, _columns_for(predictions))


def _request_instances(text: str) -> list[Any]:
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise invalid_field("--json-request", f"not valid JSON: {error}") from error
    if not isinstance(doc, dict) or not isinstance(doc.get("instances"), list):
        raise invalid_field(
            "--json-request", 'The request must be an object with a list "instances".'
        )
    return list(doc["instances"])


def _json_lines(text: str) -> list[Any]:
    instances = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise invalid_field("--json-instances", f"line {number} is empty; remove empty lines.")
        try:
            instances.append(json.loads(line))
        except ValueError as error:
            raise invalid_field(
                "--json-instances", f"line {number} is not valid JSON: {error}"
            ) from error
    return instances


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
