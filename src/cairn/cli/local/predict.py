"""`cairn local predict`: predict with a model directory in this process, like
`gcloud ai-platform local predict` — handy to check a model before deploying it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from cairn.cli.options import CairnCommand
from cairn.config import Settings
from cairn.domain.errors import ApiError, invalid_field
from cairn.serving import predict_local

MAX_INSTANCES = 100  # gcloud reads at most 100 instances from a file

FRAMEWORK_CHOICES = {
    "tensorflow": "TENSORFLOW",
    "scikit-learn": "SCIKIT_LEARN",
    "xgboost": "XGBOOST",
}


@click.command(
    "predict", cls=CairnCommand, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--model-dir",
    required=True,
    help="Folder holding the exported model: saved_model.pb, model.joblib, model.pkl, "
    "model.bst, model.json or model.ubj at its root (gs://BUCKET/PATH means Cairn's local "
    "buckets).",
)
@click.option(
    "--framework",
    type=click.Choice(sorted(FRAMEWORK_CHOICES)),
    default=None,
    help="The model's framework. Default: detected from the files in --model-dir.",
)
@click.option(
    "--json-request",
    metavar="FILE",
    help="A file holding the whole request body, {\"instances\": [...]} ('-' reads stdin).",
)
@click.option(
    "--json-instances",
    metavar="FILE",
    help="A file with one JSON instance per line, e.g. [1.0, 2.0] ('-' reads stdin).",
)
@click.option(
    "--text-instances",
    metavar="FILE",
    help="A file with one text instance per line, sent as a string ('-' reads stdin).",
)
@click.option(
    "--signature-name",
    default=None,
    help="TensorFlow only: the SavedModel signature to call (default: serving_default).",
)
def predict(
    model_dir: str,
    framework: str | None,
    json_request: str | None,
    json_instances: str | None,
    text_instances: str | None,
    signature_name: str | None,
) -> None:
    """Print {"predictions": [...]} for instances read from a file or stdin.

    Give exactly one of --json-request, --json-instances or --text-instances.

    \b
    Examples:
      cairn local predict --model-dir ./export --json-instances rows.json
      echo '[5.1, 3.5, 1.4, 0.2]' | cairn local predict --model-dir ./export --json-instances -
    """
    chosen = [
        (flag, value)
        for flag, value in (
            ("--json-request", json_request),
            ("--json-instances", json_instances),
            ("--text-instances", text_instances),
        )
        if value is not None
    ]
    if len(chosen) != 1:
        raise click.UsageError(
            "Give exactly one of --json-request, --json-instances or --text-instances."
        )
    flag, source = chosen[0]
    instances, request_signature = read_instances(flag, _read_text(flag, source))
    predictions = predict_local(
        _local_model_dir(model_dir),
        FRAMEWORK_CHOICES[framework] if framework else None,
        instances,
        signature_name or request_signature,
    )
    click.echo(orjson.dumps({"predictions": predictions}).decode())


def read_instances(flag: str, text: str) -> tuple[list[Any], str | None]:
    """Instances (and a request's signature_name) from the text of an input file."""
    if flag == "--json-request":
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise invalid_field(flag, f"the file is not valid JSON: {error}.") from None
        if not isinstance(request, dict) or not isinstance(request.get("instances"), list):
            raise invalid_field(flag, 'the file must hold a JSON object with an "instances" list.')
        signature = request.get("signature_name")
        return request["instances"], signature if isinstance(signature, str) else None
    lines = text.splitlines()
    if flag == "--text-instances":
        instances: list[Any] = lines
    else:
        instances = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise invalid_field(flag, f"line {number} is empty; write one instance per line.")
            try:
                instances.append(orjson.loads(line))
            except orjson.JSONDecodeError as error:
                raise invalid_field(flag, f"line {number} is not valid JSON: {error}.") from None
    if len(instances) > MAX_INSTANCES:
        raise invalid_field(
            flag, f"the file has {len(instances)} instances; send at most {MAX_INSTANCES}."
        )
    return instances, None


def _read_text(flag: str, source: str) -> str:
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as error:
        raise invalid_field(flag, f"cannot read {source}: {error.strerror}.") from None
    return data.decode("utf-8-sig")


def _local_model_dir(model_dir: str) -> Path:
    if not model_dir.startswith("gs://"):
        return Path(model_dir)
    from cairn.storage import BucketStorage

    try:
        return BucketStorage(Settings.from_env().storage_root).local_path(model_dir)
    except ApiError as error:
        raise invalid_field("--model-dir", error.message) from None
