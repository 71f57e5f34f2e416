"""`cairn versions create VERSION --model MODEL`: upload an artefact and deploy it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cairn.cli.options import (
    CairnCommand,
    Session,
    common_options,
    load_config_file,
    parse_labels,
)
from cairn.client.staging import split_gs_uri, stage_directory
from cairn.domain.errors import invalid_field

DEFAULT_STAGING_BUCKET = "gs://cairn-staging"
FRAMEWORKS = {"tensorflow": "TENSORFLOW", "scikit-learn": "SCIKIT_LEARN", "xgboost": "XGBOOST"}
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
    type=click.Choice(sorted(FRAMEWORKS)),
    help="The artefact's framework (detected from its files when omitted).",
)
@click.option("--python-version", help="Python version, e.g. 3.7.")
@click.option("--machine-type", help="Machine type of the prediction nodes.")
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
    body = _from_config(config_file) if config_file else {}
    flags: dict[str, Any] = {
        "runtimeVersion": runtime_version,
        "framework": FRAMEWORKS[framework] if framework else None,
        "pythonVersion": python_version,
        "machineType": machine_type,
        "description": description,
        "labels": parse_labels(labels) if labels is not None else None,
        "predictionClass": prediction_class,
        "packageUris": _package_uris(package_uris) if package_uris is not None else None,
    }
    body.update({key: value for key, value in flags.items() if value is not None})
    if min_nodes is not None or max_nodes is not None:
        scaling = dict(body.get("autoScaling") or {})
        if min_nodes is not None:
            scaling["minNodes"] = min_nodes
        if max_nodes is not None:
            scaling["maxNodes"] = max_nodes
        body["autoScaling"] = scaling
    if origin:
        body["deploymentUri"] = _deployment_uri(session, model, version, origin, staging_bucket)
    if not body.get("deploymentUri"):
        raise invalid_field("--origin", "Say where the model is: --origin DIR (local or gs://).")
    body["name"] = version
    operation = session.client.create_version(model, body)
    if run_async:
        session.printer.resource(operation)
        return
    with session.printer.spinner("Creating version (this might take a few minutes)..."):
        session.client.wait_operation(operation)
    session.printer.status(f"Created version [{version}] of model [{model}].")


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
