"""The batch engine with real worker processes and real models (no API server)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import xgboost as xgb
from tests.serving.conftest import make_booster, sklearn_model, training_data

from cairn.serving.batch import BatchOutcome, BatchPlan, BatchRunner, InputFile, split_text
from cairn.serving.batch.inputs import Piece, write_tf_record
from cairn.serving.batch.plan import done_path


class Job:
    """Callbacks of one job, recorded."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.progress: list[tuple[int, int]] = []
        self.outcome: BatchOutcome | None = None
        self.ended = threading.Event()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_state": self.states.append,
            "on_progress": lambda p, e: self.progress.append((p, e)),
            "on_finished": self.finished,
        }

    def finished(self, outcome: BatchOutcome) -> None:
        self.outcome = outcome
        self.ended.set()

    def wait(self, timeout: float = 120) -> BatchOutcome:
        assert self.ended.wait(timeout), "the batch job did not end"
        assert self.outcome is not None
        return self.outcome


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[BatchRunner]:
    engine = BatchRunner(tmp_path / "jobs", grace_s=1.0)
    yield engine
    engine.shutdown()


def text_plan(
    model_dir: Path, files: list[InputFile], out: Path, shards: int, **fields: Any
) -> BatchPlan:
    shares = [[_piece(piece) for piece in share] for share in split_text(files, shards) if share]
    return BatchPlan(
        model_dir=str(model_dir),
        framework=fields.pop("framework", None),
        data_format=fields.pop("data_format", "JSON"),
        output_format=fields.pop("output_format", "JSON"),
        output_dir=str(out),
        batch_size=fields.pop("batch_size", 64),
        shares=shares,
        **fields,
    )


def _piece(piece: Piece) -> dict[str, Any]:
    return {
        "path": piece.file.path,
        "uri": piece.file.uri,
        "size": piece.file.size,
        "start": piece.start,
        "end": piece.end,
    }


def results(out: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(out.glob("prediction.results-*")):
        rows += [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return rows


def error_lines(out: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(out.glob("prediction.errors_stats-*")):
        rows += [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return rows


@pytest.mark.slow
def test_json_lines_over_three_workers_with_bad_lines(
    runner: BatchRunner, sklearn_dir: Path, tmp_path: Path
) -> None:
    x, _ = training_data(rows=3000)
    path = tmp_path / "in.jsonl"
    bad = {100: "not json", 2000: "[1.0, 2.0]", 2999: '{"a": 1}'}
    with path.open("w") as handle:
        for i, row in enumerate(x):
            handle.write(bad.get(i, json.dumps(row.tolist())) + "\n")
    files = [InputFile(str(path), "gs://in/in.jsonl", path.stat().st_size)]
    out = tmp_path / "out"
    job = Job()
    runner.start("p", "j", text_plan(sklearn_dir, files, out, 3), **job.callbacks())
    outcome = job.wait()
    assert outcome.state == "SUCCEEDED", outcome
    assert (outcome.prediction_count, outcome.error_count) == (2997, 3)
    assert outcome.node_hours > 0
    assert job.states == ["RUNNING"]
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"prediction.errors_stats-0000{i}-of-00003" for i in range(3)] + [
        f"prediction.results-0000{i}-of-00003" for i in range(3)
    ]
    good = [i for i in range(len(x)) if i not in bad]
    expected = sklearn_model(sklearn_dir).predict(x[good])
    assert [r["prediction"] for r in results(out)] == expected.tolist()
    errors = error_lines(out)
    assert [(e["inputPath"], e["line"]) for e in errors] == [
        ("gs://in/in.jsonl", 101),
        ("gs://in/in.jsonl", 2001),
        ("gs://in/in.jsonl", 3000),
    ]
    assert "not valid JSON" in errors[0]["error"]
    assert "4 features" in errors[1]["error"]
    logs = (tmp_path / "jobs" / "p" / "j" / "logs" / "batch-worker-0.log").read_text()
    assert "2 bad lines" not in logs and "Worker 1 of 3" in logs


def test_csv_in_csv_out_with_xgboost(runner: BatchRunner, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    make_booster().save_model(str(model_dir / "model.ubj"))
    x, _ = training_data(rows=40)
    path = tmp_path / "in.csv"
    lines = [",".join(str(v) for v in row) for row in x]
    lines[5] = "1,2,three"
    path.write_text("\n".join(lines) + "\n")
    files = [InputFile(str(path), "gs://in/in.csv", path.stat().st_size)]
    out = tmp_path / "out"
    job = Job()
    plan = text_plan(model_dir, files, out, 1, data_format="CSV", output_format="CSV")
    runner.start("p", "csv", plan, **job.callbacks())
    assert job.wait().state == "SUCCEEDED"
    with (out / "prediction.results-00000-of-00001").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["prediction"]
    booster = xgb.Booster(model_file=str(model_dir / "model.ubj"))
    expected = booster.inplace_predict(np.delete(x, 5, axis=0))
    assert [float(r[0]) for r in rows[1:]] == pytest.approx(expected.tolist(), rel=1e-6)
    (error,) = error_lines(out)
    assert error["line"] == 6


def test_keyed_tf_records_with_a_row_model(
    runner: BatchRunner, sklearn_dir: Path, tmp_path: Path
) -> None:
    x, _ = training_data(rows=25)
    path = tmp_path / "in.tfrecord.gz"
    with gzip.open(path, "wb") as handle:
        for i, row in enumerate(x):
            write_tf_record(handle, orjson.dumps({"key": f"row-{i}", "instance": row.tolist()}))
    file = InputFile(str(path), "gs://in/in.tfrecord.gz", path.stat().st_size)
    out = tmp_path / "out"
    plan = BatchPlan(
        model_dir=str(sklearn_dir),
        framework="SCIKIT_LEARN",
        data_format="TF_RECORD_GZIP",
        output_format="JSON",
        output_dir=str(out),
        batch_size=4,
        shares=[[_piece(Piece(file))], [_piece(Piece(file))]],
    )
    job = Job()
    runner.start("p", "tfr", plan, **job.callbacks())
    assert job.wait().state == "SUCCEEDED"
    by_key = {r["key"]: r["prediction"] for r in results(out)}
    expected = sklearn_model(sklearn_dir).predict(x)
    assert by_key == {f"row-{i}": int(p) for i, p in enumerate(expected)}


def test_a_model_that_does_not_load_fails_the_job(runner: BatchRunner, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.joblib").write_bytes(b"not a pickle")
    path = tmp_path / "in.jsonl"
    path.write_text("[1]\n")
    files = [InputFile(str(path), "gs://in/in.jsonl", path.stat().st_size)]
    job = Job()
    runner.start("p", "bad", text_plan(model_dir, files, tmp_path / "out", 1), **job.callbacks())
    outcome = job.wait()
    assert outcome.state == "FAILED"
    assert "Batch worker 0 exited with code 3" in str(outcome.error_message)
    assert "could not be loaded" in str(outcome.error_message)


def blocking_plan(model_dir: Path, tmp_path: Path, shards: int = 2) -> tuple[BatchPlan, Path]:
    """A plan whose workers block reading a named pipe until the test writes to it."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo, 0o666)
    file = InputFile(str(fifo), "gs://in/in.fifo", 0)
    plan = BatchPlan(
        model_dir=str(model_dir),
        framework=None,
        data_format="TF_RECORD",
        output_format="JSON",
        output_dir=str(tmp_path / "out"),
        batch_size=64,
        shares=[[_piece(Piece(file))] for _ in range(shards)],
    )
    return plan, fifo


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_cancel_ends_every_worker(runner: BatchRunner, sklearn_dir: Path, tmp_path: Path) -> None:
    plan, _ = blocking_plan(sklearn_dir, tmp_path)
    job = Job()
    runner.start("p", "cancelled", plan, **job.callbacks())
    wait_for(lambda: job.states == ["RUNNING"])
    record = json.loads((tmp_path / "jobs" / "p" / "cancelled" / "batch-run.json").read_text())
    pids = [w["record"]["handle"]["pid"] for w in record["workers"]]
    assert len(pids) == 2
    runner.cancel("p", "cancelled")
    assert job.wait(60).state == "CANCELLED"
    for pid in pids:
        wait_for(lambda pid=pid: not _alive(pid), 30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] != "Z"


# A server process that starts a batch job and then waits to be killed.
CRASHING_SERVER = """
import sys, threading
from pathlib import Path
from cairn.serving.batch import BatchPlan, BatchRunner
runner = BatchRunner(Path(sys.argv[1]))
runner.start("p", "resumed", BatchPlan.read(Path(sys.argv[2])), on_state=print,
             on_progress=lambda p, e: None, on_finished=print)
threading.Event().wait()
"""


@pytest.mark.slow
def test_a_new_runner_resumes_live_workers_and_reruns_lost_shards(
    sklearn_dir: Path, tmp_path: Path
) -> None:
    fifos = [tmp_path / "in-0.fifo", tmp_path / "in-1.fifo"]
    for fifo in fifos:
        os.mkfifo(fifo, 0o666)
    plan = BatchPlan(
        model_dir=str(sklearn_dir),
        framework=None,
        data_format="TF_RECORD",
        output_format="JSON",
        output_dir=str(tmp_path / "out"),
        batch_size=64,
        shares=[[_piece(Piece(InputFile(str(f), f"gs://in/{f.name}", 0)))] for f in fifos],
    )
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan.to_json()))
    jobs = tmp_path / "jobs"
    server = subprocess.Popen(
        [sys.executable, "-c", CRASHING_SERVER, str(jobs), str(plan_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "RUNNING"
    finally:
        server.kill()  # a crash: the workers live on in sessions of their own
        server.wait()
    record = json.loads((jobs / "p" / "resumed" / "batch-run.json").read_text())
    lost = next(w["record"]["handle"]["pid"] for w in record["workers"] if w["shard"] == 1)
    os.killpg(lost, 9)  # and one worker dies while no server watches
    wait_for(lambda: not _alive(lost), 30)
    runner = BatchRunner(jobs, grace_s=1.0)
    try:
        resumed = Job()
        assert runner.recover("p", "resumed", **resumed.callbacks())
        wait_for(lambda: resumed.states == ["RUNNING"])
        # Shard 0's adopted worker and shard 1's new one each read their own pipe, and keep
        # every other record of it (records 1, 3, 5 for shard 0; 2, 4, 6 for shard 1).
        x, _ = training_data(rows=6)
        for fifo in fifos:
            with open(fifo, "wb") as handle:
                for row in x:
                    write_tf_record(handle, orjson.dumps(row.tolist()))
        outcome = resumed.wait()
        assert outcome.state == "SUCCEEDED", outcome
        assert outcome.prediction_count == 6
        assert done_path(jobs / "p" / "resumed" / "work", 1).exists()
        assert [r["prediction"] for r in results(tmp_path / "out")] == sklearn_model(
            sklearn_dir
        ).predict(x[[0, 2, 4, 1, 3, 5]]).tolist()
    finally:
        runner.shutdown()


def _run_in_process(plan: BatchPlan, work: Path) -> tuple[bytes, bytes]:
    from cairn.serving.batch.worker import run_shard

    run_shard(plan, 0, work)
    out = Path(plan.output_dir)
    return (
        (out / "prediction.results-00000-of-00001").read_bytes(),
        (out / "prediction.errors_stats-00000-of-00001").read_bytes(),
    )


@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softprob"])
def test_the_block_path_writes_what_the_line_by_line_path_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, objective: str
) -> None:
    """Blocks of plain numbers are parsed and predicted whole; a block holding a bad line
    goes line by line, so every bad line keeps its exact number, and the files are
    byte for byte those of the line-by-line path."""
    from cairn.serving.batch import inputs, worker

    monkeypatch.setattr(inputs, "_READ_CHUNK", 4096)  # many blocks of about 100 lines
    x, y = training_data(rows=3000)
    params = {"objective": objective, "max_depth": 3}
    if objective == "multi:softprob":
        params["num_class"] = 3
        y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    xgb.train(params, xgb.DMatrix(x, label=y), 5).save_model(str(model_dir / "model.ubj"))
    lines = [json.dumps(row.tolist()) for row in x]
    lines[1500] = "[1, 2, 3, +4]"  # not JSON, in the middle of a block
    lines[1501] = "[1, 2, 3]"  # three features, not four
    lines[2200] = '{"key": "k", "instance": [0.5, 0.5, 0.5, 0.5]}'
    lines[2400] = "[-0, 1, 2, 3]"  # read line by line (see numeric.py)
    lines[2600] = "  [1.5e0 ,\t2, 3, 4] \r"
    lines.insert(2700, "")  # a blank line: skipped, but counted
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    files = [InputFile(str(path), "gs://in/in.jsonl", path.stat().st_size)]

    blocks: list[int] = []
    predict_block = worker.FastRows.predict

    def counted(self: worker.FastRows, matrix: np.ndarray) -> bool:
        blocks.append(len(matrix))
        return predict_block(self, matrix)

    monkeypatch.setattr(worker.FastRows, "predict", counted)
    fast = _run_in_process(text_plan(model_dir, files, tmp_path / "fast", 1), tmp_path / "w1")
    assert len(blocks) > 20 and sum(blocks) > 2400  # most blocks took the block path
    monkeypatch.setattr(worker.FastRows, "fits", lambda self, matrix: False)
    slow = _run_in_process(text_plan(model_dir, files, tmp_path / "slow", 1), tmp_path / "w2")
    assert fast == slow
    errors = [orjson.loads(line) for line in fast[1].splitlines()]
    assert [(e["inputPath"], e["line"]) for e in errors] == [
        ("gs://in/in.jsonl", 1501),
        ("gs://in/in.jsonl", 1502),
    ]
    assert "not valid JSON" in errors[0]["error"] and "4 features" in errors[1]["error"]
    predictions = [orjson.loads(line) for line in fast[0].splitlines()]
    assert len(predictions) == 2998
    assert predictions[2198] == {"key": "k", "prediction": predictions[2198]["prediction"]}
    booster = xgb.Booster(model_file=str(model_dir / "model.ubj"))
    expected = booster.inplace_predict(np.delete(x, [1500, 1501, 2200, 2400, 2600], axis=0))
    plain = [p["prediction"] for i, p in enumerate(predictions) if i not in (2198, 2398, 2598)]
    assert np.array_equal(np.asarray(plain, dtype=np.float32), expected)


def test_json_lines_of_a_numeric_answer_match_one_result_per_row() -> None:
    from cairn.serving.batch.worker import _NO_KEY, ShardWriter, _json_lines

    answers = [
        np.array([0.25, 1e-7, 3.0], dtype=np.float32),
        np.array([1.5, -2.0]),
        np.array([0, 1, 2]),
        np.array([True, False]),
        np.array([[0.1, 0.9], [0.5, 0.5]], dtype=np.float32),
        np.asfortranarray(np.array([[1, 2, 3], [4, 5, 6]])),
    ]
    for answer in answers:
        writer = ShardWriter(io.BytesIO(), io.BytesIO(), csv_output=False)
        for prediction in answer:
            writer.result(_NO_KEY, prediction)
        assert _json_lines(answer) == writer.results.getvalue(), answer  # type: ignore[attr-defined]
    assert _json_lines(np.array(["a", "b"])) is None
    assert _json_lines(np.zeros((2, 2, 2))) is None


def test_a_booster_worker_imports_xgboost_without_sklearn_or_pandas(tmp_path: Path) -> None:
    model = tmp_path / "model.ubj"
    make_booster().save_model(str(model))
    code = f"""
import sys
from cairn.serving.batch.worker import _import_xgboost_alone
_import_xgboost_alone()
assert "sklearn" not in sys.modules and "pandas" not in sys.modules, "imported"
from pathlib import Path
import numpy as np
from cairn.serving.loaders import load_predictor
predictor = load_predictor(Path({str(tmp_path)!r}), None)
print(predictor.predict_matrix(np.zeros((2, 4))).shape)
assert "sklearn" not in sys.modules and "pandas" not in sys.modules, "imported later"
import sklearn, pandas  # still importable: only hidden while XGBoost was imported
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(2,)"


def test_an_error_of_the_reading_thread_reaches_the_worker(tmp_path: Path) -> None:
    from cairn.serving.batch.worker import Prefetch

    missing = InputFile(str(tmp_path / "gone.jsonl"), "gs://in/gone.jsonl", 10)
    with pytest.raises(FileNotFoundError):
        list(Prefetch([Piece(missing)]))
