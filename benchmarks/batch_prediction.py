"""Batch prediction of 1 million rows: Cairn's batch jobs against `model.predict` in memory.

The models are those of the online benchmark (benchmarks/online_prediction_frameworks.py):
a scikit-learn LogisticRegression and an XGBoost Booster of 50 trees of depth 4, 4 features
each. The input is 1,000,000 rows as JSON lines (about 31 MB). For each model:

- in memory: `model.predict` (`Booster.inplace_predict`, XGBoost's default threads) over
  the whole matrix, already in memory: the figure the target compares against;
- reading the file: read it and parse it with orjson into one float matrix, in one
  process, nothing else: the floor of any JSON-lines job that parses with orjson; and
  the same with Cairn's block parser (`serving/batch/numeric.py`) on one core;
- one process from the file: the fastest simple script a user would write: read the whole
  file, parse it with one orjson call into one matrix, predict, write one JSON line per row
  (serialised in one orjson call, split with one `bytes.replace`);
- Cairn: `cairn server` in a subprocess, a batch prediction job over REST (`uri` = the model
  directory, no batchSize), timed from the job's startTime to its endTime (both written by
  the server: the workers' start-up and model load count), with the default worker count
  (one per 32 MiB of input, at most one per core) and with `maxWorkerCount` 1.

The machine's load average is recorded before and after: on a shared machine it moves every
figure.

Each figure is the median of `--runs` runs (default 3). Results go to
benchmarks/results/batch_prediction.json and .md.

    .venv/bin/python benchmarks/batch_prediction.py [--runs 3] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from online_prediction import free_port, owner_token, start_server  # noqa: E402

HERE = Path(__file__).parent
RESULTS_JSON = HERE / "results" / "batch_prediction.json"
RESULTS_MD = HERE / "results" / "batch_prediction.md"
FEATURES = 4


def write_models(root: Path) -> None:
    """The online benchmark's scikit-learn and XGBoost models (same data, same settings)."""
    import joblib
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, FEATURES))
    y = (x[:, 0] + x[:, 2] > 0).astype(int)
    (root / "sklearn").mkdir(parents=True)
    joblib.dump(LogisticRegression().fit(x, y), root / "sklearn" / "model.joblib")
    (root / "xgboost").mkdir()
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4}, xgb.DMatrix(x, label=y), 50
    )
    booster.save_model(str(root / "xgboost" / "model.ubj"))


def write_rows(path: Path, rows: int) -> np.ndarray:
    data = np.round(np.random.default_rng(1).normal(size=(rows, FEATURES)), 4)
    with path.open("wb") as handle:
        for start in range(0, rows, 100_000):
            block = data[start : start + 100_000].tolist()
            handle.write(b"\n".join(orjson.dumps(row) for row in block) + b"\n")
    return data


def predictor(name: str, model_dir: Path) -> Callable[[np.ndarray], Any]:
    if name == "sklearn":
        import joblib

        return joblib.load(model_dir / "model.joblib").predict  # type: ignore[no-any-return]
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(model_dir / "model.ubj"))
    return booster.inplace_predict


def in_memory(predict: Callable[[np.ndarray], Any], data: np.ndarray, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        predict(data)
        times.append(time.perf_counter() - started)
    return len(data) / statistics.median(times)


def reading(path: Path, runs: int) -> float:
    """Rows/s of reading and parsing the file into one matrix with orjson, nothing else."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        data = path.read_bytes()
        matrix = np.asarray(
            orjson.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]"),
            dtype=np.float64,
        )
        times.append(time.perf_counter() - started)
    return len(matrix) / statistics.median(times)


def reading_with_cairns_parser(path: Path, runs: int) -> float:
    """Rows/s of reading the file into matrices the way a Cairn worker does (1 MB blocks,
    `numeric.parse_rows`), on one core, nothing else."""
    from cairn.serving.batch.inputs import InputFile, Piece, text_blocks
    from cairn.serving.batch.numeric import parse_rows

    piece = Piece(InputFile(str(path), "bench", path.stat().st_size))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = 0
        for _uri, _first, block in text_blocks([piece]):
            matrix = parse_rows(block, FEATURES)
            assert matrix is not None
            rows += len(matrix)
        times.append(time.perf_counter() - started)
    return rows / statistics.median(times)


def from_file(predict: Callable[[np.ndarray], Any], path: Path, out: Path, runs: int) -> float:
    """Rows/s of the fastest simple script: read, parse, predict and write in one process."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        data = path.read_bytes()
        matrix = np.asarray(
            orjson.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]"),
            dtype=np.float64,
        )
        predictions = predict(matrix)
        text = orjson.dumps(predictions, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
        out.write_bytes(b'{"prediction":' + text.replace(b",", b'}\n{"prediction":') + b"}\n")
        times.append(time.perf_counter() - started)
    return len(matrix) / statistics.median(times)


def cairn_job(
    api: str, headers: dict[str, str], job_id: str, model: str, workers: int | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "uri": f"gs://bench/models/{model}",
        "dataFormat": "JSON",
        "inputPaths": ["gs://bench/rows.jsonl"],
        "outputPath": f"gs://bench/out/{job_id}",
        "region": "us-central1",
    }
    if workers is not None:
        spec["maxWorkerCount"] = str(workers)
    body = {"jobId": job_id, "predictionInput": spec}
    response = httpx.post(f"{api}/projects/bench/jobs", json=body, headers=headers, timeout=60)
    response.raise_for_status()
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/projects/bench/jobs/{job_id}", headers=headers, timeout=60).json()
        if job.get("state") in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(job)
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not end")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def seconds_between(start: str, end: str) -> float:
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "rows": args.rows,
        "input": "JSON lines, 4 features per row",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "runs": args.runs,
        "cairn_workers": "default (one per 32 MiB of input, at most one per core)",
        "load_average_before": load_average(),
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="cairn-batch-bench-") as tmp:
        root = Path(tmp)
        home = root / "home"
        bucket = home / "storage" / "bench"
        (bucket / "models").mkdir(parents=True)
        write_models(bucket / "models")
        print(f"writing {args.rows} rows...", flush=True)
        data = write_rows(bucket / "rows.jsonl", args.rows)
        report["input_bytes"] = (bucket / "rows.jsonl").stat().st_size
        report["reading_the_file_rows_per_s"] = round(reading(bucket / "rows.jsonl", args.runs))
        report["reading_with_cairns_parser_rows_per_s"] = round(
            reading_with_cairns_parser(bucket / "rows.jsonl", args.runs)
        )
        for name in ("sklearn", "xgboost"):
            predict = predictor(name, bucket / "models" / name)
            report["results"][name] = {
                "in_memory_rows_per_s": round(in_memory(predict, data, args.runs)),
                "one_process_from_file_rows_per_s": round(
                    from_file(predict, bucket / "rows.jsonl", root / "out.jsonl", args.runs)
                ),
            }
            print(name, report["results"][name], flush=True)
        port = free_port()
        server = start_server(home, port)
        try:
            api = f"http://127.0.0.1:{port}/v1"
            headers = {"Authorization": f"Bearer {owner_token(port, home)}"}
            for name in ("sklearn", "xgboost"):
                for label, workers in (("cairn", None), ("cairn_one_worker", 1)):
                    rates, walls = [], []
                    for run in range(args.runs):
                        job_id = f"{label}_{name}_{run}"
                        started = time.monotonic()
                        job = cairn_job(api, headers, job_id, name, workers)
                        walls.append(time.monotonic() - started)
                        if job["state"] != "SUCCEEDED":
                            raise RuntimeError(f"{job_id}: {job}")
                        assert job["predictionOutput"]["predictionCount"] == str(args.rows)
                        elapsed = seconds_between(job["startTime"], job["endTime"])
                        rates.append(args.rows / elapsed)
                        shutil.rmtree(bucket / "out" / job_id)
                    entry = {
                        "rows_per_s": round(statistics.median(rates)),
                        "rows_per_s_each_run": [round(r) for r in rates],
                        "submit_to_end_s": round(statistics.median(walls), 2),
                    }
                    report["results"][name][label] = entry
                    print(name, label, entry, flush=True)
        finally:
            server.terminate()
            server.wait(60)
    report["load_average_after"] = load_average()
    for figures in report["results"].values():
        cairn = figures["cairn"]["rows_per_s"]
        figures["cairn_over_in_memory"] = round(cairn / figures["in_memory_rows_per_s"], 4)
        figures["cairn_over_one_process_from_file"] = round(
            cairn / figures["one_process_from_file_rows_per_s"], 3
        )
        figures["cairn_over_reading_the_file"] = round(
            cairn / report["reading_the_file_rows_per_s"], 3
        )
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(report, indent=2) + "\n")
    RESULTS_MD.write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    reading_rate = report["reading_the_file_rows_per_s"]
    lines = [
        f"# Batch prediction, {report['rows']:,} rows of JSON lines",
        "",
        f"{report['machine']}; medians of {report['runs']} runs; load average (1, 5, 15 min) "
        f"{report['load_average_before']} before, {report['load_average_after']} after. "
        "Cairn timed from the job's startTime to its endTime (worker start-up and model "
        f"loading included), workers: {report['cairn_workers']} unless said. "
        f"Reading the file (read + one orjson parse into a matrix, one process): "
        f"{reading_rate:,} rows/s; with Cairn's block parser, one core: "
        f"{report['reading_with_cairns_parser_rows_per_s']:,} rows/s.",
        "",
        "| model | in memory (rows/s) | one process from the file | Cairn, 1 worker "
        "| Cairn | Cairn / in memory | Cairn / one process | Cairn / reading the file |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in report["results"].items():
        lines.append(
            f"| {name} | {figures['in_memory_rows_per_s']:,} "
            f"| {figures['one_process_from_file_rows_per_s']:,} "
            f"| {figures['cairn_one_worker']['rows_per_s']:,} "
            f"| {figures['cairn']['rows_per_s']:,} "
            f"| {figures['cairn_over_in_memory']:.2%} "
            f"| {figures['cairn_over_one_process_from_file']:.2f}x "
            f"| {figures['cairn_over_reading_the_file']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
