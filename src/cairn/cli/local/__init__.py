"""`cairn local`: run training and prediction on this machine without a server."""

from __future__ import annotations

import click

from cairn.cli.lazy import LazyCommand, LazyGroup

COMMANDS = {
    "train": LazyCommand(
        "cairn.cli.local.train", "train", "Run a trainer package locally, as a job replica would."
    ),
    "predict": LazyCommand(
        "cairn.cli.local.predict", "predict", "Predict with a model directory, without deploying."
    ),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
def local() -> None:
    """Train and predict locally, without a server (like `gcloud ai-platform local`)."""
