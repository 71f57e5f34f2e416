"""`cairn local predict`: predict with a model directory in this process, like
`gcloud ai-platform local predict` — handy to check a model before deploying it."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from cairn.cli.buckets import find_buckets
from cairn.cli.instances import chosen_input, read_instances
from cairn.cli.options import FRAMEWORK, CairnCommand
from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.serving import predict_local


@click.command(
    "predict", cls=CairnCommand, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--model-dir",
    required=True,
    help="Folder holding the exported model: saved_model.pb, model.joblib, model.pkl, "
    "model.bst, model.json or model.ubj at its root. gs://BUCKET/PATH is that folder in the "
    "running server's buckets, found as `cairn storage` finds them.",
)
@click.option(
    "--framework",
    type=FRAMEWORK,
    default=None,
    help="The model's framework, as gcloud spells it (SCIKIT_LEARN and scikit-learn alike). "
    "Default: detected from the files in --model-dir.",
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
    flag, source = chosen_input(
        json_request=json_request, json_instances=json_instances, text_instances=text_instances
    )
    instances, request_signature = read_instances(flag, source)
    predictions = predict_local(
        _local_model_dir(model_dir),
        framework,
        instances,
        signature_name or request_signature,
    )
    click.echo(orjson.dumps({"predictions": predictions}).decode())


def _local_model_dir(model_dir: str) -> Path:
    if not model_dir.startswith("gs://"):
        return Path(model_dir)
    buckets = find_buckets()
    try:
        path = buckets.storage.local_path(model_dir)
    except ApiError as error:
        raise invalid_field("--model-dir", error.message) from None
    if not path.is_dir():
        raise ApiError(
            Code.NOT_FOUND, f"--model-dir {model_dir} is not a folder in {buckets.where}."
        )
    return path
