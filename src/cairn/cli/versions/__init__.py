"""`cairn versions`: deploy and manage model versions (gcloud ai-platform versions)."""

from __future__ import annotations

import click

from cairn.cli.options import CairnGroup
from cairn.cli.versions.console_log import console_log
from cairn.cli.versions.create import create
from cairn.cli.versions.delete import delete
from cairn.cli.versions.describe import describe
from cairn.cli.versions.list_versions import list_versions
from cairn.cli.versions.request_log import request_log
from cairn.cli.versions.set_default import set_default
from cairn.cli.versions.update import update


@click.group(cls=CairnGroup)
def versions() -> None:
    """Deploy and manage model versions (a version is one servable model artefact).

    \b
    Typical flow:
      cairn versions create v1 --model census --origin ./export --framework scikit-learn
      cairn versions list --model census
      cairn versions set-default v2 --model census
    """


for _command in (create, list_versions, describe, update, delete, set_default):
    versions.add_command(_command)
versions.add_command(request_log)
versions.add_command(console_log)
