"""`cairn models update MODEL`: change description and labels."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.options import CairnCommand, Session, common_options, label_update_options
from cairn.cli.options import update_labels as apply_label_flags
from cairn.domain.errors import invalid_field


@click.command(cls=CairnCommand)
@click.argument("model")
@click.option("--description", help="New description.")
@label_update_options
@common_options
def update(
    model: str,
    description: str | None,
    update_labels: str | None,
    remove_labels: str | None,
    clear_labels: bool,
    session: Session,
) -> None:
    """Update model MODEL's description or labels and wait for the change."""
    body: dict[str, Any] = {}
    mask: list[str] = []
    if description is not None:
        body["description"] = description
        mask.append("description")
    if update_labels or remove_labels or clear_labels:
        current = session.client.get_model(model).get("labels")
        body["labels"] = apply_label_flags(current, update_labels, remove_labels, clear_labels)
        mask.append("labels")
    if not mask:
        raise invalid_field(
            "--description",
            "Nothing to update: give --description or a label flag (--update-labels, "
            "--remove-labels, --clear-labels).",
        )
    operation = session.client.patch_model(model, body, ",".join(sorted(mask)))
    with session.printer.spinner(f"Updating model [{model}]..."):
        session.client.wait_operation(operation)
    session.printer.status(f"Updated model [{model}].")
