"""`cairn operations`: inspect long-running operations (gcloud ai-platform operations)."""

from __future__ import annotations

import click

from cairn.cli.operations.cancel import cancel
from cairn.cli.operations.describe import describe
from cairn.cli.operations.list_operations import list_operations
from cairn.cli.operations.wait import wait
from cairn.cli.options import CairnGroup


@click.group(cls=CairnGroup)
def operations() -> None:
    """Inspect the long-running operations that create, update and delete versions and models.

    OPERATION is the id printed by `cairn versions create --async` (or a full
    projects/P/operations/ID name).
    """


for _command in (describe, list_operations, wait, cancel):
    operations.add_command(_command)
