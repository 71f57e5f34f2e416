"""`cairn versions create VERSION --model MODEL`: upload an artefact and deploy it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cairn.cli.options import (
    FRAMEWORK,
    AcceleratorSpec,
    CairnCommand,
    GcloudChoice,
    Session,
    common_options,
    load_config_file,
    parse_labels,
    parse_list,
)
from cairn.client.staging import split_gs_uri, stage_directory
from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.domain.models import Version, validate_new_version
from cairn.domain.names import check_id

DEFAULT_STAGING_BUCKET = "gs://cairn-staging"
# Stands in for a local --origin not uploaded yet, so the version is checked before upload.
_PENDING_ORIGIN = "gs://cairn-pending-upload/model/"
EXPLANATION_METHOD = GcloudChoice(
    {
        "integrated-gradients": "integratedGradientsAttribution",
        "sampled-shapley": "sampledShapleyAttribution",
        "xrai": "xraiAttribution",
    }
)
METRIC_NAME = GcloudChoice({"cpu-usage": "CPU_USAGE", "gpu-duty-cycle": "GPU_DUTY_CYCLE"})
CONFIG_KEYS = frozenset(
    {
        "autoScaling",
        "deploymentUri",
        "description",
        "framework",
        "labels",
        "machineType",
        "manualScaling",
        "packageUris",
        "predictionClass",
        "pythonVersion",
        "runtimeVersion",
        "serviceAccount",
    }
)


@click.command(cls=CairnCommand)
@click.argument("version")
@click.option("--model", required=True, help="Model the version belongs to.")
@click.option(
    "--origin",
    help="The model artefact: a gs:// directory, or a local directory that is uploaded to "
    "--staging-bucket first.",
)
@click.option(
    "--staging-bucket",
    default=DEFAULT_STAGING_BUCKET,
    show_default=True,
    help="Where a local --origin is uploaded.",
)
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="YAML/JSON Version fields."
)
@click.option("--runtime-version", help="Runtime version, e.g. 2.11.")
@click.option(
    "--framework",
    type=FRAMEWORK,
    help="The artefact's framework, as gcloud spells it (SCIKIT_LEARN and scikit-learn "
    "alike); detected from its files when omitted.",
)
@click.option("--python-version", help="Python version, e.g. 3.7.")
@click.option("--machine-type", help="Machine type of the prediction nodes, e.g. n1-standard-4.")
@click.option(
    "--accelerator",
    type=AcceleratorSpec(),
    help="GPUs per node, as gcloud writes them: count=1,type=nvidia-tesla-t4 "
    "(acceleratorConfig, recorded; nodes run on this machine's CPUs).",
)
@click.option(
    "--explanation-method",
    type=EXPLANATION_METHOD,
    help="Recorded in explanationConfig, as gcloud sends it; Cairn does not serve :explain "
    "(it answers UNIMPLEMENTED), so predictions work and explanations do not.",
)
@click.option(
    "--num-integral-steps",
    type=click.IntRange(min=1),
    help="With --explanation-method integrated-gradients or xrai (default 50).",
)
@click.option(
    "--num-paths",
    type=click.IntRange(min=1),
    help="With --explanation-method sampled-shapley.",
)
@click.option(
    "--metric-targets",
    metavar="METRIC=TARGET,...",
    help="Autoscaling targets as gcloud writes them, e.g. cpu-usage=60 "
    "(autoScaling.metrics; Cairn scales on request load, docs/serving.md).",
)
@click.option(
    "--service-account",
    help="Service account the version's nodes act as (serviceAccount).",
)
@click.option(
    "--image",
    help="A custom serving container (container.image). Cairn does not run serving "
    "containers yet and refuses the version with UNIMPLEMENTED.",
)
@click.option("--min-nodes", type=click.IntRange(min=0), help="Autoscaling: fewest nodes.")
@click.option("--max-nodes", type=click.IntRange(min=1), help="Autoscaling: most nodes.")
@click.option(
    "--prediction-class",
    help="A custom prediction routine: module.ClassName of a class in --package-uris with "
    "from_path(model_dir) and predict(instances, **kwargs). Leave --framework unset.",
)
@click.option(
    "--package-uris",
    help="Comma-separated gs:// URIs of Python packages (sdists or wheels) installed into the "
    "version's environment: the --prediction-class's package, or a scikit-learn pipeline's "
    "custom transformers. Upload them first with `cairn storage cp`.",
)
@click.option("--description", help="Free-text description.")
@click.option("--labels", help="Labels as KEY=VALUE,KEY=VALUE.")
@click.option(
    "--async", "run_async", is_flag=True, help="Return at once with the operation to watch."
)
@common_options
def create(
    version: str,
    model: str,
    origin: str | None,
    staging_bucket: str,
    config_file: str | None,
    runtime_version: str | None,
    framework: str | None,
    python_version: str | None,
    machine_type: str | None,
    accelerator: dict[str, str] | None,
    explanation_method: str | None,
    num_integral_steps: int | None,
    num_paths: int | None,
    metric_targets: str | None,
    service_account: str | None,
    image: str | None,
    min_nodes: int | None,
    max_nodes: int | None,
    prediction_class: str | None,
    package_uris: str | None,
    description: str | None,
    labels: str | None,
    run_async: bool,
    session: Session,
) -> None:
    """Create version VERSION of model MODEL and wait until it serves (unless --async).

    Scaling: without --min-nodes/--max-nodes the version keeps one node ready; with them it
    autoscales between the two on load, and --min-nodes 0 stops its last node when idle
    (the next request then waits for a node to start). See docs/serving.md, "Scaling".
    """
    check_id(version, "VERSION")
    body = _from_config(config_file) if config_file else {}
    flags: dict[str, Any] = {
        "runtimeVersion": runtime_version,
        "framework": framework,
        "pythonVersion": python_version,
        "machineType": machine_type,
        "description": description,
        "labels": parse_labels(labels) if labels is not None else None,
        "predictionClass": prediction_class,
        "packageUris": _package_uris(package_uris) if package_uris is not None else None,
        "acceleratorConfig": accelerator,
        "serviceAccount": service_account,
        "container": {"image": image} if image else None,
        "explanationConfig": _explanation(explanation_method, num_integral_steps, num_paths),
    }
    body.update({key: value for key, value in flags.items() if value is not None})
    if min_nodes is not None or max_nodes is not None or metric_targets:
        scaling = dict(body.get("autoScaling") or {})
        if min_nodes is not None:
            scaling["minNodes"] = min_nodes
        if max_nodes is not None:
            scaling["maxNodes"] = max_nodes
        if metric_targets:
            scaling["metrics"] = _metrics(metric_targets)
        body["autoScaling"] = scaling
    if not origin and not body.get("deploymentUri"):
        raise invalid_field("--origin", "Say where the model is: --origin DIR (local or gs://).")
    body["name"] = version
    _check_before_upload(session, model, version, body, origin)
    if origin:
        body["deploymentUri"] = _deployment_uri(session, model, version, origin, staging_bucket)
    operation = session.client.create_version(model, body)
    if run_async:
        session.printer.resource(operation)
        return
    with session.printer.spinner("Creating version (this might take a few minutes)..."):
        session.client.wait_operation(operation)
    session.printer.status(f"Created version [{version}] of model [{model}].")


def _check_before_upload(
    session: Session, model: str, version: str, body: dict[str, Any], origin: str | None
) -> None:
    """Refuse what the server would refuse before a local --origin is uploaded, so a bad
    name leaves no stray copy: the version as it will be sent, its model, a free name."""
    pending = dict(body)
    if origin and not origin.startswith("gs://"):
        pending["deploymentUri"] = _PENDING_ORIGIN
    elif origin:
        pending["deploymentUri"] = origin
    validate_new_version(Version.parse(pending, "version"))
    session.client.get_model(model)  # NOT_FOUND names the model
    try:
        session.client.get_version(model, version)
    except ApiError as error:
        if error.code is Code.NOT_FOUND:
            return
        raise
    raise ApiError(
        Code.ALREADY_EXISTS,
        f"Version [{version}] of model [{model}] already exists; choose another VERSION "
        "or delete it first (`cairn versions delete`).",
    )


def _explanation(
    method: str | None, num_integral_steps: int | None, num_paths: int | None
) -> dict[str, Any] | None:
    if method is None:
        if num_integral_steps is not None or num_paths is not None:
            raise invalid_field(
                "--explanation-method", "--num-integral-steps and --num-paths need it."
            )
        return None
    if method == "sampledShapleyAttribution":
        if num_integral_steps is not None:
            raise invalid_field("--num-integral-steps", "sampled-shapley takes --num-paths.")
        return {method: {"numPaths": num_paths} if num_paths else {}}
    if num_paths is not None:
        raise invalid_field("--num-paths", "only sampled-shapley takes --num-paths.")
    return {method: {"numIntegralSteps": num_integral_steps or 50}}


def _metrics(text: str) -> list[dict[str, Any]]:
    metrics = []
    for pair in parse_list(text):
        name, sep, target = pair.partition("=")
        if not sep or not (target.strip().isascii() and target.strip().isdigit()):
            raise invalid_field(
                "--metric-targets", f"{pair!r} is not METRIC=TARGET, e.g. cpu-usage=60."
            )
        try:
            metric = METRIC_NAME.convert(name, None, None)
        except click.BadParameter as error:
            raise invalid_field("--metric-targets", error.format_message()) from None
        metrics.append({"name": metric, "target": int(target)})
    return metrics


def _package_uris(text: str) -> list[str]:
    """gcloud's --package-uris: gs:// URIs only (packages are not uploaded for you)."""
    uris = [uri.strip() for uri in text.split(",") if uri.strip()]
    if not uris:
        raise invalid_field("--package-uris", "Give at least one gs:// URI.")
    for uri in uris:
        if not uri.startswith("gs://"):
            raise invalid_field(
                "--package-uris",
                f"{uri} is not a gs:// URI; upload the package first "
                "(`cairn storage cp PACKAGE gs://BUCKET/PATH`) and pass that URI.",
            )
        split_gs_uri(uri, "--package-uris")
    return uris


def _from_config(path: str) -> dict[str, Any]:
    doc = load_config_file(path)
    unknown = sorted(set(doc) - CONFIG_KEYS)
    if unknown:
        raise invalid_field(
            "--config",
            f"{path} has keys a version create does not take: {', '.join(unknown)}. "
            f"Allowed: {', '.join(sorted(CONFIG_KEYS))}.",
        )
    return doc


def _deployment_uri(
    session: Session, model: str, version: str, origin: str, staging_bucket: str
) -> str:
    if origin.startswith("gs://"):
        split_gs_uri(origin, "--origin")
        return origin
    local = Path(origin)
    if not local.is_dir():
        raise invalid_field("--origin", f"{origin} is neither a gs:// URI nor a local directory.")
    bucket, prefix = split_gs_uri(staging_bucket, "--staging-bucket")
    destination = "/".join(p for p in (f"gs://{bucket}", prefix, f"{model}_{version}") if p)
    return stage_directory(session.client, local, destination, session.printer.status)
