"""`cairn jobs submit prediction JOB`: a batch prediction job, with gcloud's flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cairn.cli.jobs.submitting import create_and_follow
from cairn.cli.options import (
    CairnCommand,
    GcloudChoice,
    Session,
    common_options,
    parse_labels,
    parse_list,
)
from cairn.client.staging import split_gs_uri, stage_directory
from cairn.domain.errors import invalid_field

DEFAULT_REGION = "us-central1"
DEFAULT_STAGING_BUCKET = "gs://cairn-staging"
# gcloud's --data-format choices, plus csv (Cairn's extension); any case, '_' or '-'.
DATA_FORMAT = GcloudChoice(
    {
        "json": "JSON",
        "text": "TEXT",
        "tf-record": "TF_RECORD",
        "tf-record-gzip": "TF_RECORD_GZIP",
        "csv": "CSV",
    }
)
OUTPUT_DATA_FORMAT = GcloudChoice({"json": "JSON", "csv": "CSV"})


@click.command(cls=CairnCommand)
@click.argument("job")
@click.option("--model", help="Model to predict with (its default version unless --version).")
@click.option("--version", help="Version of --model to predict with.")
@click.option(
    "--model-dir",
    help="A model directory instead of --model: a gs:// folder, or a local folder that is "
    "uploaded to --staging-bucket first. The framework is detected from its files.",
)
@click.option(
    "--input-paths",
    required=True,
    help="Comma-separated gs:// files of instances; wildcards allowed (gs://b/in/*.jsonl).",
)
@click.option(
    "--data-format",
    required=True,
    type=DATA_FORMAT,
    help="text or json: one JSON instance per line; csv: one row of values per line; "
    "tf-record(-gzip): TFRecord files.",
)
@click.option(
    "--output-path",
    required=True,
    help="gs:// folder for prediction.results-* and prediction.errors_stats-* files.",
)
@click.option(
    "--output-data-format",
    type=OUTPUT_DATA_FORMAT,
    help="Write the results as JSON lines (the default) or CSV.",
)
@click.option(
    "--max-worker-count",
    type=click.IntRange(min=1),
    help="At most this many worker processes (default: one per core of the server).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Instances per model call (default 64).",
)
@click.option("--signature-name", help="SavedModel signature to use (default serving_default).")
@click.option("--runtime-version", help="Runtime version, e.g. 2.11.")
@click.option("--labels", help="Labels as KEY=VALUE,KEY=VALUE.")
@click.option(
    "--staging-bucket",
    default=DEFAULT_STAGING_BUCKET,
    show_default=True,
    help="Where a local --model-dir is uploaded.",
)
@click.option(
    "--stream-logs",
    is_flag=True,
    help="Follow the workers' logs until the job ends; exit 1 unless it SUCCEEDED.",
)
@common_options
def prediction(
    job: str,
    model: str | None,
    version: str | None,
    model_dir: str | None,
    input_paths: str,
    data_format: str,
    output_path: str,
    output_data_format: str | None,
    max_worker_count: int | None,
    batch_size: int | None,
    signature_name: str | None,
    runtime_version: str | None,
    labels: str | None,
    staging_bucket: str,
    stream_logs: bool,
    session: Session,
) -> None:
    """Submit batch prediction job JOB: predict every instance in --input-paths.

    Use a deployed model (--model, optionally --version) or a model directory
    (--model-dir). The results land in --output-path as prediction.results-NNNNN-of-NNNNN
    (one JSON object per instance), and lines that could not be predicted in
    prediction.errors_stats-NNNNN-of-NNNNN with their file, line and reason. To join
    results back to your data, write each instance as {"key": K, "instance": I}: its
    result then starts with "key": K. See docs/batch_prediction.md.

    \b
    Examples:
      cairn jobs submit prediction score_1 --model census --version v1 \\
          --input-paths 'gs://data/instances/*.jsonl' --data-format text \\
          --output-path gs://out/score_1
      cairn jobs submit prediction score_2 --model-dir ./exported_model \\
          --input-paths gs://data/rows.csv --data-format csv \\
          --output-path gs://out/score_2 --stream-logs
    """
    if model_dir and (model or version):
        raise invalid_field("--model-dir", "Use either --model-dir or --model/--version.")
    if version and not model:
        raise invalid_field("--version", "--version needs --model.")
    if not model and not model_dir:
        raise invalid_field("--model", "Say which model predicts: --model MODEL or --model-dir.")
    spec: dict[str, Any] = {
        "dataFormat": data_format,
        "inputPaths": parse_list(input_paths),
        "outputPath": output_path,
        "region": session.region or DEFAULT_REGION,
    }
    project = session.project
    if model_dir:
        spec["uri"] = _model_uri(session, job, model_dir, staging_bucket)
    elif version:
        spec["versionName"] = f"projects/{project}/models/{model}/versions/{version}"
    else:
        spec["modelName"] = f"projects/{project}/models/{model}"
    optional = {
        "outputDataFormat": output_data_format,
        "maxWorkerCount": str(max_worker_count) if max_worker_count else None,
        "batchSize": str(batch_size) if batch_size else None,
        "signatureName": signature_name,
        "runtimeVersion": runtime_version,
    }
    spec.update({key: value for key, value in optional.items() if value is not None})
    body: dict[str, Any] = {"jobId": job, "predictionInput": spec}
    if labels is not None:
        body["labels"] = parse_labels(labels)
    create_and_follow(session, job, body, stream_logs=stream_logs, output="predictionOutput")


def _model_uri(session: Session, job: str, model_dir: str, staging_bucket: str) -> str:
    if model_dir.startswith("gs://"):
        split_gs_uri(model_dir, "--model-dir")
        return model_dir
    local = Path(model_dir)
    if not local.is_dir():
        raise invalid_field(
            "--model-dir", f"{model_dir} is neither a gs:// URI nor a local directory."
        )
    bucket, prefix = split_gs_uri(staging_bucket, "--staging-bucket")
    destination = "/".join(p for p in (f"gs://{bucket}", prefix, f"{job}_model") if p)
    return stage_directory(session.client, local, destination, session.printer.status)
