"""`cairn jobs submit training JOB`: package, stage and submit a trainer like gcloud does;
`cairn jobs submit prediction JOB` (in submit_prediction.py): a batch prediction job."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from cairn.cli.jobs.submit_prediction import prediction
from cairn.cli.jobs.submitting import create_and_follow
from cairn.cli.options import (
    Session,
    TrainerArgsCommand,
    common_options,
    load_config_file,
    parse_labels,
    parse_list,
)
from cairn.client.packaging import build_sdist
from cairn.client.staging import package_destination, stage_packages
from cairn.domain.errors import invalid_field

DEFAULT_REGION = "us-central1"
SCALE_TIERS = ("basic", "basic-gpu", "basic-tpu", "custom", "premium-1", "standard-1")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def submit() -> None:
    """Submit a job: training (run a trainer package) or prediction (batch prediction)."""


@submit.command(cls=TrainerArgsCommand)
@click.argument("job")
@click.option(
    "--package-path",
    type=click.Path(file_okay=False),
    help="Local directory of the trainer package (must hold __init__.py); built into an sdist and uploaded.",
)
@click.option(
    "--packages",
    help="Comma-separated extra packages: local .tar.gz/.whl files (uploaded) or gs:// URIs.",
)
@click.option("--module-name", help="Module to run, e.g. trainer.task (python -m MODULE).")
@click.option("--job-dir", help="Output directory passed to the trainer as --job-dir.")
@click.option("--staging-bucket", help="gs://BUCKET to upload local packages to.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="YAML/JSON Job resource; flags override its fields.",
)
@click.option(
    "--scale-tier",
    type=click.Choice(SCALE_TIERS, case_sensitive=False),
    help="Machines to use; 'custom' needs --master-machine-type.",
)
@click.option("--master-machine-type", help="Machine type of the master (CUSTOM tier).")
@click.option("--worker-machine-type", help="Machine type of the workers (CUSTOM tier).")
@click.option("--worker-count", type=click.IntRange(min=0), help="Number of workers (CUSTOM tier).")
@click.option("--parameter-server-machine-type", help="Machine type of the parameter servers.")
@click.option(
    "--parameter-server-count", type=click.IntRange(min=0), help="Number of parameter servers."
)
@click.option("--runtime-version", help="Runtime version, e.g. 2.11.")
@click.option("--python-version", help="Python version, e.g. 3.7.")
@click.option("--labels", help="Labels as KEY=VALUE,KEY=VALUE.")
@click.option(
    "--stream-logs",
    is_flag=True,
    help="Follow the job's logs until it ends; exit 1 unless it SUCCEEDED.",
)
@click.option(
    "--async",
    "run_async",
    is_flag=True,
    hidden=True,
    help="Return after submitting (the default; kept for gcloud scripts).",
)
@common_options
def training(
    job: str,
    user_args: tuple[str, ...],
    package_path: str | None,
    packages: str | None,
    module_name: str | None,
    job_dir: str | None,
    staging_bucket: str | None,
    config_file: str | None,
    scale_tier: str | None,
    master_machine_type: str | None,
    worker_machine_type: str | None,
    worker_count: int | None,
    parameter_server_machine_type: str | None,
    parameter_server_count: int | None,
    runtime_version: str | None,
    python_version: str | None,
    labels: str | None,
    stream_logs: bool,
    run_async: bool,
    session: Session,
) -> None:
    """Submit training job JOB that runs a Python trainer package.

    Everything after `--` is passed to the trainer as its arguments.

    \b
    Example:
      cairn jobs submit training census_1 --package-path ./trainer \\
          --module-name trainer.task --staging-bucket gs://staging \\
          --job-dir gs://out/census_1 -- --epochs 3
    """
    if run_async and stream_logs:
        raise invalid_field("--async", "--async and --stream-logs cannot be used together.")
    body: dict[str, Any] = load_config_file(config_file) if config_file else {}
    body["jobId"] = job
    if not isinstance(body.get("trainingInput") or {}, dict):
        raise invalid_field("--config", "trainingInput must be a mapping of TrainingInput fields.")
    spec: dict[str, Any] = dict(body.get("trainingInput") or {})
    flags: dict[str, Any] = {
        "pythonModule": module_name,
        "jobDir": job_dir,
        "region": session.region,
        "scaleTier": scale_tier.upper().replace("-", "_") if scale_tier else None,
        "masterType": master_machine_type,
        "workerType": worker_machine_type,
        "workerCount": str(worker_count) if worker_count is not None else None,
        "parameterServerType": parameter_server_machine_type,
        "parameterServerCount": (
            str(parameter_server_count) if parameter_server_count is not None else None
        ),
        "runtimeVersion": runtime_version,
        "pythonVersion": python_version,
    }
    spec.update({key: value for key, value in flags.items() if value is not None})
    spec.setdefault("region", DEFAULT_REGION)
    if user_args:
        spec["args"] = list(user_args)
    if labels is not None:
        body["labels"] = parse_labels(labels)
    package_uris = _stage(session, job, package_path, packages, staging_bucket, spec.get("jobDir"))
    if package_uris:
        spec["packageUris"] = package_uris
    if not spec.get("pythonModule") and not (spec.get("masterConfig") or {}).get("imageUri"):
        raise invalid_field(
            "--module-name", "Say which module to run, e.g. --module-name trainer.task."
        )
    body["trainingInput"] = spec
    create_and_follow(session, job, body, stream_logs=stream_logs, output=None)


def _stage(
    session: Session,
    job: str,
    package_path: str | None,
    packages: str | None,
    staging_bucket: str | None,
    job_dir: str | None,
) -> list[str]:
    """Build and upload local packages; return every package URI for the job."""
    remote = [p for p in parse_list(packages) if p.startswith("gs://")]
    local = [Path(p) for p in parse_list(packages) if not p.startswith("gs://")]
    for path in local:
        if not path.is_file():
            raise invalid_field("--packages", f"{path} is not a file.")
    with tempfile.TemporaryDirectory(prefix="cairn-packages-") as scratch:
        if package_path:
            session.printer.status(f"Building a source distribution of {package_path}...")
            local = build_sdist(Path(package_path), Path(scratch)) + local
        if not local:
            return remote
        destination = package_destination(job, staging_bucket, job_dir)
        staged = stage_packages(session.client, local, destination, session.printer.status)
    return staged + remote


submit.add_command(prediction)
