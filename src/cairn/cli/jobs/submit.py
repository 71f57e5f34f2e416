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
    SCALE_TIER,
    AcceleratorSpec,
    CairnGroup,
    Session,
    TrainerArgsCommand,
    common_options,
    load_config_file,
    parse_labels,
    parse_list,
)
from cairn.client.packaging import build_sdist
from cairn.client.staging import package_destination, stage_packages
from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.domain.jobs import Job, unsupported_training_features, validate_new_job
from cairn.domain.names import check_id

DEFAULT_REGION = "us-central1"
# Stands in for the URIs of packages not uploaded yet, so the job is checked before upload.
_PENDING_PACKAGE = "gs://cairn-pending-upload/package.tar.gz"


_ACCELERATOR_HELP = (
    "GPUs of the master, as gcloud writes them: type=nvidia-tesla-t4,count=2 "
    "(masterConfig.acceleratorConfig; docs/scheduling.md says how they map to this machine's)."
)


@click.group(cls=CairnGroup)
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
    type=SCALE_TIER,
    help="Machines to use, as gcloud spells them (STANDARD_1 and standard-1 alike); "
    "'custom' needs --master-machine-type. See docs/scheduling.md for what each gets here.",
)
@click.option(
    "--master-machine-type",
    help="Machine type of the master, e.g. n1-standard-8 (CUSTOM tier).",
)
@click.option("--master-accelerator", type=AcceleratorSpec(), help=_ACCELERATOR_HELP)
@click.option(
    "--master-image-uri",
    help="Container image the master runs instead of a package (masterConfig.imageUri).",
)
@click.option("--worker-machine-type", help="Machine type of the workers (CUSTOM tier).")
@click.option("--worker-count", type=click.IntRange(min=0), help="Number of workers (CUSTOM tier).")
@click.option("--worker-accelerator", type=AcceleratorSpec(), help="As --master-accelerator.")
@click.option("--worker-image-uri", help="Container image of the workers (workerConfig.imageUri).")
@click.option("--parameter-server-machine-type", help="Machine type of the parameter servers.")
@click.option(
    "--parameter-server-count", type=click.IntRange(min=0), help="Number of parameter servers."
)
@click.option(
    "--parameter-server-accelerator", type=AcceleratorSpec(), help="As --master-accelerator."
)
@click.option(
    "--parameter-server-image-uri",
    help="Container image of the parameter servers (parameterServerConfig.imageUri).",
)
@click.option(
    "--use-chief-in-tf-config",
    type=click.BOOL,
    help="true: TF_CONFIG names the primary replica 'chief' instead of 'master'.",
)
@click.option(
    "--service-account",
    help="Service account the replicas act as when they call Cairn (trainingInput.serviceAccount).",
)
@click.option(
    "--enable-web-access",
    is_flag=True,
    default=None,
    help="Recorded (trainingInput.enableWebAccess) as gcloud sends it; Cairn serves no "
    "interactive shell into replicas.",
)
@click.option(
    "--kms-key",
    help="Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K, or K with "
    "--kms-keyring, --kms-location, --kms-project). Recorded in encryptionConfig; Cairn does "
    "not encrypt with it: its files stay on this machine's disk.",
)
@click.option("--kms-keyring", help="Key ring of a short --kms-key.")
@click.option("--kms-location", help="Location of a short --kms-key.")
@click.option("--kms-project", help="Project of a short --kms-key (default: --project).")
@click.option(
    "--runtime-version",
    help="AI Platform runtime version, e.g. 2.11 (see docs/runtimes.md for the list).",
)
@click.option("--python-version", help="Python version of the runtime, e.g. 3.7.")
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
    help="Return after submitting (the default without --stream-logs; gcloud's flag).",
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
    master_accelerator: dict[str, str] | None,
    master_image_uri: str | None,
    worker_machine_type: str | None,
    worker_count: int | None,
    worker_accelerator: dict[str, str] | None,
    worker_image_uri: str | None,
    parameter_server_machine_type: str | None,
    parameter_server_count: int | None,
    parameter_server_accelerator: dict[str, str] | None,
    parameter_server_image_uri: str | None,
    use_chief_in_tf_config: bool | None,
    service_account: str | None,
    enable_web_access: bool | None,
    kms_key: str | None,
    kms_keyring: str | None,
    kms_location: str | None,
    kms_project: str | None,
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
    check_id(job, "JOB")
    body: dict[str, Any] = load_config_file(config_file) if config_file else {}
    body["jobId"] = job
    if not isinstance(body.get("trainingInput") or {}, dict):
        raise invalid_field("--config", "trainingInput must be a mapping of TrainingInput fields.")
    spec: dict[str, Any] = dict(body.get("trainingInput") or {})
    flags: dict[str, Any] = {
        "pythonModule": module_name,
        "jobDir": job_dir,
        "region": session.region,
        "scaleTier": scale_tier,
        "masterType": master_machine_type,
        "workerType": worker_machine_type,
        "workerCount": str(worker_count) if worker_count is not None else None,
        "parameterServerType": parameter_server_machine_type,
        "parameterServerCount": (
            str(parameter_server_count) if parameter_server_count is not None else None
        ),
        "runtimeVersion": runtime_version,
        "pythonVersion": python_version,
        "useChiefInTfConfig": use_chief_in_tf_config,
        "serviceAccount": service_account,
        "enableWebAccess": enable_web_access,
    }
    spec.update({key: value for key, value in flags.items() if value is not None})
    replicas = {
        "masterConfig": (master_accelerator, master_image_uri),
        "workerConfig": (worker_accelerator, worker_image_uri),
        "parameterServerConfig": (parameter_server_accelerator, parameter_server_image_uri),
    }
    for key, (accelerator, image) in replicas.items():
        if accelerator is None and image is None:
            continue
        replica = dict(spec.get(key) or {})
        if accelerator is not None:
            replica["acceleratorConfig"] = accelerator
        if image is not None:
            replica["imageUri"] = image
        spec[key] = replica
    if kms_key:
        spec["encryptionConfig"] = {
            "kmsKeyName": _kms_key_name(
                kms_key, kms_keyring, kms_location, kms_project or session.project
            )
        }
    spec.setdefault("region", DEFAULT_REGION)
    if user_args:
        spec["args"] = list(user_args)
    if labels is not None:
        body["labels"] = parse_labels(labels)
    if not spec.get("pythonModule") and not (spec.get("masterConfig") or {}).get("imageUri"):
        raise invalid_field(
            "--module-name", "Say which module to run, e.g. --module-name trainer.task."
        )
    _check_before_upload(session, job, body, spec, packages, uploads=bool(package_path))
    package_uris = _stage(session, job, package_path, packages, staging_bucket, spec.get("jobDir"))
    if package_uris:
        spec["packageUris"] = package_uris
    body["trainingInput"] = spec
    given = set(parse_list(packages))
    uploaded = [uri for uri in package_uris if uri not in given]
    create_and_follow(
        session,
        job,
        body,
        stream_logs=stream_logs,
        output=None,
        on_refused=lambda: _remove_uploads(session, uploaded),
    )


def _remove_uploads(session: Session, uris: list[str]) -> None:
    """What was uploaded for a job the server then refused (its capacity, say): the paths
    are the job's own (its id was free), so nothing another job uses goes."""
    for uri in uris:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        try:
            session.client.delete_object(bucket, name)
        except ApiError:
            session.printer.status(f"Could not remove {uri}; remove it with `cairn storage rm`.")


def _check_before_upload(
    session: Session,
    job: str,
    body: dict[str, Any],
    spec: dict[str, Any],
    packages: str | None,
    *,
    uploads: bool,
) -> None:
    """Refuse what the server would refuse before anything is uploaded, so a bad id or field
    leaves no stray package behind: the job as it will be sent, and that its id is free."""
    pending = dict(spec)
    given = [p for p in parse_list(packages) if p.startswith("gs://")]
    local = [p for p in parse_list(packages) if not p.startswith("gs://")]
    waiting = [_PENDING_PACKAGE] if uploads or local else []
    if given or waiting:
        pending["packageUris"] = [*waiting, *given]  # as _stage will replace them
    parsed = Job.parse({**body, "trainingInput": pending}, "job")
    validate_new_job(parsed)
    if parsed.training_input is not None and (
        refusal := unsupported_training_features(parsed.training_input)
    ):
        raise refusal
    try:
        session.client.get_job(job)
    except ApiError as error:
        if error.code is Code.NOT_FOUND:
            return
        raise
    raise ApiError(
        Code.ALREADY_EXISTS,
        f"Job [{job}] already exists in project [{session.project}]; choose another JOB "
        "(job ids are never reused).",
    )


def _kms_key_name(key: str, keyring: str | None, location: str | None, project: str) -> str:
    if key.startswith("projects/"):
        return key
    if not (keyring and location):
        raise invalid_field(
            "--kms-key",
            "Give the key's full name (projects/P/locations/L/keyRings/R/cryptoKeys/K), or "
            "--kms-keyring and --kms-location with it.",
        )
    return f"projects/{project}/locations/{location}/keyRings/{keyring}/cryptoKeys/{key}"


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
