"""`cairn local`: run training and prediction on this machine without a server."""

from __future__ import annotations

import importlib

import click

_COMMANDS = {
    "train": (
        "cairn.cli.local.train",
        "train",
        "Run a trainer package locally, as a job replica would run.",
    ),
    "predict": (
        "cairn.cli.local.predict",
        "predict",
        "Predict with a model directory, without deploying it.",
    ),
}


class _LocalGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module_name, attribute, _ = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=_LocalGroup)
def local() -> None:
    """Train and predict locally, without a server (like `gcloud ai-platform local`)."""
