"""`cairn models`: create and manage models (gcloud ai-platform models)."""

from __future__ import annotations

import click

from cairn.cli.models.access_log import access_log
from cairn.cli.models.create import create
from cairn.cli.models.delete import delete
from cairn.cli.models.describe import describe
from cairn.cli.models.list_models import list_models
from cairn.cli.models.update import update
from cairn.cli.options import CairnGroup


@click.group(cls=CairnGroup)
def models() -> None:
    """Create and manage models (a model groups the versions you deploy).

    \b
    Typical flow:
      cairn models create census --regions us-central1
      cairn versions create v1 --model census --origin ./export --framework scikit-learn
      cairn predict --model census --json-instances rows.jsonl
    """


for _command in (create, list_models, describe, update, delete):
    models.add_command(_command)
models.add_command(access_log)
