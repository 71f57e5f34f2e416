"""`cairn versions update VERSION --model MODEL`."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.options import (
    CairnCommand,
    Session,
    common_options,
    label_update_options,
    load_config_file,
)
from cairn.cli.options import update_labels as apply_label_flags
from cairn.domain.errors import invalid_field

CONFIG_KEYS = ("autoScaling", "description", "manualScaling", "requestLoggingConfig")


@click.command(cls=CairnCommand)
@click.argument("version")
@click.option("--model", required=True, help="Model the version belongs to.")
@click.option("--description", help="New description.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="YAML/JSON with description, manualScaling, autoScaling or requestLoggingConfig.",
)
@click.option(
    "--min-nodes",
    type=click.IntRange(min=0),
    help="Autoscaling: fewest nodes (0: stop the last node when idle). Cairn's shorthand "
    "for --config with autoScaling.minNodes.",
)
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    help="Autoscaling: most nodes. Shorthand for --config with autoScaling.maxNodes.",
)
@click.option(
    "--nodes",
    type=click.IntRange(min=1),
    help="Manual scaling: exactly this many nodes. Shorthand for --config with "
    "manualScaling.nodes.",
)
@label_update_options
@common_options
def update(
    version: str,
    model: str,
    description: str | None,
    config_file: str | None,
    min_nodes: int | None,
    max_nodes: int | None,
    nodes: int | None,
    update_labels: str | None,
    remove_labels: str | None,
    clear_labels: bool,
    session: Session,
) -> None:
    """Update version VERSION's description, labels or scaling and wait for the change.

    Scaling changes apply live: nodes the new floor needs start before the update finishes,
    nodes above the new ceiling stop, and predictions go on meanwhile.
    """
    body: dict[str, Any] = {}
    mask: set[str] = set()
    if config_file:
        doc = load_config_file(config_file)
        unknown = sorted(set(doc) - set(CONFIG_KEYS))
        if unknown:
            raise invalid_field(
                "--config",
                f"{config_file} has keys that cannot be updated: {', '.join(unknown)}. "
                f"Allowed: {', '.join(CONFIG_KEYS)}.",
            )
        body.update(doc)
        mask.update(_mask_paths(doc))
    if description is not None:
        body["description"] = description
        mask.add("description")
    for path, value in (
        ("autoScaling.minNodes", min_nodes),
        ("autoScaling.maxNodes", max_nodes),
        ("manualScaling.nodes", nodes),
    ):
        if value is not None:
            group, leaf = path.split(".")
            body.setdefault(group, {})[leaf] = value
            mask.add(path)
    if update_labels or remove_labels or clear_labels:
        current = session.client.get_version(model, version).get("labels")
        body["labels"] = apply_label_flags(current, update_labels, remove_labels, clear_labels)
        mask.add("labels")
    if not mask:
        raise invalid_field(
            "--description",
            "Nothing to update: give --description, --config, a scaling flag or a label flag.",
        )
    operation = session.client.patch_version(model, version, body, ",".join(sorted(mask)))
    with session.printer.spinner(f"Updating version [{version}]..."):
        session.client.wait_operation(operation)
    session.printer.status(f"Updated version [{version}] of model [{model}].")


def _mask_paths(doc: dict[str, Any]) -> list[str]:
    """gcloud's mask: scaling fields by leaf path, the rest by top-level name."""
    paths: list[str] = []
    for key, value in doc.items():
        if key in ("autoScaling", "manualScaling") and isinstance(value, dict) and value:
            paths.extend(f"{key}.{leaf}" for leaf in value)
        else:
            paths.append(key)
    return paths
