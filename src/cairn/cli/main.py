"""The `cairn` command tree. Group = folder (or module), command = file.

Subcommands load lazily so `cairn --help` stays fast and one group's heavy imports
(TensorFlow, DuckDB) never slow another.
"""

from __future__ import annotations

import click

from cairn.cli.lazy import LazyCommand, LazyGroup

COMMANDS = {
    "server": LazyCommand("cairn.cli.server", "server", "Run the Cairn API server."),
    "jobs": LazyCommand("cairn.cli.jobs", "jobs", "Submit and manage training jobs."),
    "models": LazyCommand("cairn.cli.models", "models", "Create and manage models."),
    "versions": LazyCommand("cairn.cli.versions", "versions", "Deploy and manage model versions."),
    "predict": LazyCommand(
        "cairn.cli.predict", "predict", "Send online predictions to a deployed version."
    ),
    "operations": LazyCommand(
        "cairn.cli.operations", "operations", "Inspect long-running operations."
    ),
    "local": LazyCommand(
        "cairn.cli.local", "local", "Train and predict locally, without a server."
    ),
    "storage": LazyCommand(
        "cairn.cli.storage", "storage", "Copy, list and read files in local buckets (gs://)."
    ),
    "data": LazyCommand("cairn.cli.data", "data", "Profile, clean, split and prepare datasets."),
    "auth": LazyCommand("cairn.cli.auth", "auth", "Sign in and manage the CLI's credentials."),
    "iam": LazyCommand("cairn.cli.iam", "iam", "Manage people, groups and service accounts."),
    "projects": LazyCommand(
        "cairn.cli.projects", "projects", "Read and change project IAM policies."
    ),
    "logging": LazyCommand(
        "cairn.cli.logging_read", "logging", "Read every log: jobs, predictions, audit, server."
    ),
}


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
