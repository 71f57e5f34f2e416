"""`cairn jobs update JOB`: change a job's labels."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options, label_update_options
from cairn.cli.options import update_labels as apply_label_flags
from cairn.domain.errors import invalid_field


@click.command(cls=CairnCommand)
@click.argument("job")
@label_update_options
@common_options
def update(
    job: str,
    update_labels: str | None,
    remove_labels: str | None,
    clear_labels: bool,
    session: Session,
) -> None:
    """Update the labels of training job JOB."""
    current = session.client.get_job(job)
    labels = apply_label_flags(current.get("labels"), update_labels, remove_labels, clear_labels)
    if labels is None:
        raise invalid_field(
            "--update-labels",
            "Nothing to update: give --update-labels, --remove-labels or --clear-labels.",
        )
    body: dict[str, object] = {"labels": labels}
    if current.get("etag"):
        body["etag"] = current["etag"]
    updated = session.client.patch_job(job, body, "labels")
    session.printer.status(f"Updated job [{job}].")
    session.printer.resource(updated)
