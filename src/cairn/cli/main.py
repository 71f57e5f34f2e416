"""The `cairn` command tree. Group = folder (or module), command = file.

Subcommands load lazily so `cairn --help` stays fast and one group's heavy imports
(TensorFlow, DuckDB) never slow another.
"""

from __future__ import annotations

import importlib

import click

# name -> (module, attribute, one-line help shown by `cairn --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "server": ("cairn.cli.server", "server", "Run the Cairn API server."),
    "jobs": ("cairn.cli.jobs", "jobs", "Submit and manage training jobs."),
    "models": ("cairn.cli.models", "models", "Create and manage models."),
    "versions": ("cairn.cli.versions", "versions", "Deploy and manage model versions."),
    "predict": ("cairn.cli.predict", "predict", "Send online predictions to a deployed version."),
    "operations": ("cairn.cli.operations", "operations", "Inspect long-running operations."),
    "local": ("cairn.cli.local", "local", "Train and predict locally, without a server."),
    "storage": (
        "cairn.cli.storage",
        "storage",
        "Copy, list and read files in local buckets (gs://).",
    ),
    "data": ("cairn.cli.data", "data", "Profile, clean, split and prepare datasets."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute, short_help = COMMANDS[cmd_name]
        if ctx.resilient_parsing or _only_listing(ctx):
            # Listing `cairn --help` should not import every group.
            return click.Command(cmd_name, short_help=short_help, help=short_help)
        module = importlib.import_module(module_name)
        command: click.Command = getattr(module, attribute)
        return command


def _only_listing(ctx: click.Context) -> bool:
    return (
        ctx.info_name == "cairn"
        and ctx.invoked_subcommand is None
        and ctx.params.get("_listing", False)
    )


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cairn")
def cli() -> None:
    """Cairn: train, deploy and serve models on your own machines.

    Cairn speaks Google Cloud AI Platform's interfaces: the commands mirror
    `gcloud ai-platform`, and the server answers the ml v1 REST API.

    \b
    Start here:
      cairn server &                  # start the API on http://127.0.0.1:8080
      cairn jobs submit training ...  # train a package
      cairn versions create ...       # deploy what it produced
      cairn predict --model M ...     # ask it for predictions
    """


def main() -> None:
    cli(prog_name="cairn")
