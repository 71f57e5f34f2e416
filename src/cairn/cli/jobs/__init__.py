"""`cairn jobs`: submit and manage training jobs (gcloud ai-platform jobs)."""

from __future__ import annotations

import click

from cairn.cli.jobs.cancel import cancel
from cairn.cli.jobs.describe import describe
from cairn.cli.jobs.list_jobs import list_jobs
from cairn.cli.jobs.stream_logs import stream_logs
from cairn.cli.jobs.submit import submit
from cairn.cli.jobs.trials import trials
from cairn.cli.jobs.update import update
from cairn.cli.options import CairnGroup


@click.group(cls=CairnGroup)
def jobs() -> None:
    """Submit and manage training and batch prediction jobs.

    \b
    Typical flow:
      cairn jobs submit training JOB --package-path trainer --module-name trainer.task \\
          --staging-bucket gs://staging --job-dir gs://out/JOB -- --epochs 3
      cairn jobs stream-logs JOB
      cairn jobs describe JOB
      cairn jobs trials JOB    # a hyperparameter tuning job's trials, best first
      cairn jobs submit prediction JOB --model M --input-paths 'gs://in/*' \\
          --data-format text --output-path gs://out/JOB
    """


for _command in (submit, describe, list_jobs, cancel, update, stream_logs, trials):
    jobs.add_command(_command)
