"""Batch prediction jobs end to end on a real server: every framework, every input format,
from a version and from a model directory; outputs equal online predictions; cancel,
restart, validation, and the CLI."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import yaml
from googleapiclient.errors import HttpError
from tests.client.cli_runner import invoke
from tests.conftest import RunningServer
from tests.factories import sklearn_model_dir, tensorflow_model_dir, xgboost_model_dir
from tests.remote import unique, upload_dir, upload_file, wait_job, wait_operation

from cairn.serving.batch.inputs import write_tf_record

PROJECT = "projects/batch_project"


# ----- helpers ------------------------------------------------------------------------------


def deploy(ml: Any, server: Any, local: Path, model: str, version: str = "v1") -> str:
    """A READY version of `local`'s model; returns its name."""
    uri = upload_dir(server.url, local, "batch-models", f"{model}/{version}", server.headers())
    try:
        ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    except HttpError as error:
        assert error.resp.status == 409
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(parent=f"{PROJECT}/models/{model}", body={"name": version, "deploymentUri": uri})
        .execute()
    )
    done = wait_operation(ml, operation["name"])
    assert "error" not in done, done
    return f"{PROJECT}/models/{model}/versions/{version}"


def put(server: Any, tmp_path: Path, name: str, data: bytes) -> str:
    """Upload `data` as gs://batch-inputs/<name>."""
    local = tmp_path / unique("upload")
    local.write_bytes(data)
    return upload_file(server.url, local, "batch-inputs", name, server.headers())


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def submit(ml: Any, job_id: str, **spec: Any) -> dict[str, Any]:
    body = {"jobId": job_id, "predictionInput": {"region": "us-central1", **spec}}
    created: dict[str, Any] = ml.projects().jobs().create(parent=PROJECT, body=body).execute()
    return created


def local_path(server: Any, uri: str) -> Path:
    return Path(server.home) / "storage" / uri[len("gs://") :]


def results(server: Any, output: str) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(local_path(server, output).glob("prediction.results-*")):
        rows += [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return rows


def errors(server: Any, output: str) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(local_path(server, output).glob("prediction.errors_stats-*")):
        rows += [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return rows


def online(ml: Any, name: str, instances: list[Any]) -> list[Any]:
    answer = ml.projects().predict(name=name, body={"instances": instances}).execute()
    predictions: list[Any] = answer["predictions"]
    return predictions


def run(ml: Any, job_id: str, **spec: Any) -> dict[str, Any]:
    submit(ml, job_id, **spec)
    return wait_job(ml, f"{PROJECT}/jobs/{job_id}", timeout=240)


def rows(count: int, features: int, seed: int = 3) -> list[list[float]]:
    data = np.random.default_rng(seed).normal(size=(count, features)).round(4)
    return data.tolist()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sklearn_version(ml: Any, cairn_server: Any, tmp_path_factory: Any) -> str:
    local = sklearn_model_dir(tmp_path_factory.mktemp("sk") / "model")
    return deploy(ml, cairn_server, local, unique("batch_sk"))


@pytest.fixture(scope="module")
def xgboost_dir(tmp_path_factory: Any) -> Path:
    return xgboost_model_dir(tmp_path_factory.mktemp("xgb") / "model")


# ----- scikit-learn -------------------------------------------------------------------------


def test_sklearn_version_json_lines_with_bad_lines_equal_online(
    ml: Any, cairn_server: Any, tmp_path: Path, sklearn_version: str
) -> None:
    instances = rows(3000, 4)
    lines = jsonl(instances).splitlines()
    lines[10] = b"{not json"
    lines[2500] = b"[1.0, 2.0]"
    data = b"\n".join(lines) + b"\n"
    half = data.index(b"\n", len(data) // 2) + 1  # two files, matched by a wildcard
    folder = unique("sk_in")
    put(cairn_server, tmp_path, f"{folder}/part-1.jsonl", data[:half])
    put(cairn_server, tmp_path, f"{folder}/part-2.jsonl", data[half:])
    output = f"gs://batch-out/{unique('sk')}"
    job_id = unique("batch_sk")
    job = run(
        ml,
        job_id,
        versionName=sklearn_version,
        dataFormat="TEXT",
        inputPaths=[f"gs://batch-inputs/{folder}/part-*.jsonl"],
        outputPath=output,
        maxWorkerCount="2",
    )
    assert job["state"] == "SUCCEEDED", job
    assert job["predictionOutput"]["predictionCount"] == "2998"
    assert job["predictionOutput"]["errorCount"] == "2"
    assert job["predictionOutput"]["outputPath"] == output
    assert job["predictionOutput"]["nodeHours"] > 0
    good = [row for i, row in enumerate(instances) if i not in (10, 2500)]
    assert [r["prediction"] for r in results(cairn_server, output)] == online(
        ml, sklearn_version, good
    )
    names = sorted(p.name for p in local_path(cairn_server, output).iterdir())
    assert names == [
        "prediction.errors_stats-00000-of-00002",
        "prediction.errors_stats-00001-of-00002",
        "prediction.results-00000-of-00002",
        "prediction.results-00001-of-00002",
    ]
    bad = errors(cairn_server, output)
    second_file_line = 2501 - data[:half].count(b"\n")
    assert [(e["inputPath"], e["line"]) for e in bad] == [
        (f"gs://batch-inputs/{folder}/part-1.jsonl", 11),
        (f"gs://batch-inputs/{folder}/part-2.jsonl", second_file_line),
    ]
    # The workers' logs come through the same route as a trainer's.
    answer = httpx.get(
        f"{cairn_server.url}/cairn/v1/{PROJECT}/jobs/{job_id}/logs",
        headers=cairn_server.headers(),
        timeout=30,
    ).json()
    texts = [entry["text"] for entry in answer["entries"]]
    assert any("Worker 1 of 2" in text for text in texts), answer


def test_default_version_keyed_tf_records(
    ml: Any, cairn_server: Any, tmp_path: Path, sklearn_version: str
) -> None:
    instances = rows(30, 4, seed=5)
    records = tmp_path / "records.gz"
    with gzip.open(records, "wb") as handle:
        for i, row in enumerate(instances):
            write_tf_record(handle, orjson.dumps({"key": f"id-{i}", "instance": row}))
        write_tf_record(handle, b"\xff not json")
    uri = upload_file(
        cairn_server.url, records, "batch-inputs", f"{unique('tfr')}.gz", cairn_server.headers()
    )
    output = f"gs://batch-out/{unique('keyed')}"
    model_name = sklearn_version.rsplit("/versions/", 1)[0]
    job = run(
        ml,
        unique("batch_keyed"),
        modelName=model_name,
        dataFormat="TF_RECORD_GZIP",
        inputPaths=[uri],
        outputPath=output,
        batchSize="7",
    )
    assert job["state"] == "SUCCEEDED", job
    by_key = {r["key"]: r["prediction"] for r in results(cairn_server, output)}
    expected = online(ml, model_name, instances)
    assert by_key == {f"id-{i}": p for i, p in enumerate(expected)}
    (bad,) = errors(cairn_server, output)
    assert bad["record"] == 31 and "not valid JSON" in bad["error"]


# ----- XGBoost ------------------------------------------------------------------------------


def test_xgboost_model_directory_csv_in_csv_out(
    ml: Any, cairn_server: Any, tmp_path: Path, xgboost_dir: Path
) -> None:
    model_uri = upload_dir(
        cairn_server.url, xgboost_dir, "batch-models", unique("xgbdir"), cairn_server.headers()
    )
    instances = rows(50, 3, seed=8)
    text = "\n".join(",".join(str(v) for v in row) for row in instances).encode()
    text = text.replace(b"\n", b"\n1,2,x\n", 1)  # line 2 is bad
    uri = put(cairn_server, tmp_path, f"{unique('xgb')}.csv", text)
    output = f"gs://batch-out/{unique('xgbcsv')}"
    job = run(
        ml,
        unique("batch_xgb_dir"),
        uri=model_uri,
        dataFormat="CSV",
        outputDataFormat="CSV",
        inputPaths=[uri],
        outputPath=output,
    )
    assert job["state"] == "SUCCEEDED", job
    assert job["predictionOutput"]["errorCount"] == "1"
    (result_file,) = local_path(cairn_server, output).glob("prediction.results-*")
    header, *lines = result_file.read_text().splitlines()
    assert header == "prediction"
    version = deploy(ml, cairn_server, xgboost_dir, unique("batch_xgb"))
    assert [float(v) for v in lines] == pytest.approx(online(ml, version, instances), rel=1e-6)
    (bad,) = errors(cairn_server, output)
    assert bad["line"] == 2

    # The same model from its version, JSON lines in and out.
    uri = put(cairn_server, tmp_path, f"{unique('xgb')}.jsonl", jsonl(instances))
    output = f"gs://batch-out/{unique('xgbjson')}"
    job = run(
        ml,
        unique("batch_xgb_v"),
        versionName=version,
        dataFormat="JSON",
        inputPaths=[uri],
        outputPath=output,
    )
    assert job["state"] == "SUCCEEDED", job
    assert [r["prediction"] for r in results(cairn_server, output)] == online(
        ml, version, instances
    )


# ----- TensorFlow ---------------------------------------------------------------------------


def example_model_dir(directory: Path) -> Path:
    """A SavedModel that parses serialised tf.train.Examples (what TFRecord files hold)."""
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
            parsed = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([], tf.float32)})
            return {"doubled": parsed["x"] * 2.0}

    module = Doubler()
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve})
    return directory


def example_bytes(value: float) -> bytes:
    import tensorflow as tf

    feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=[value]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()  # type: ignore[no-any-return]


@pytest.mark.slow
def test_tensorflow_version_and_directory(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    arithmetic = tensorflow_model_dir(tmp_path / "arithmetic")
    version = deploy(ml, cairn_server, arithmetic, unique("batch_tf"))
    instances = [{"a": float(i), "b": float(i) / 2} for i in range(40)]
    lines = jsonl(instances).splitlines()
    lines.insert(3, b'{"a": 1.0}')  # a missing input: line 4 is bad
    uri = put(cairn_server, tmp_path, f"{unique('tf')}.jsonl", b"\n".join(lines) + b"\n")
    output = f"gs://batch-out/{unique('tf')}"
    job = run(
        ml, unique("batch_tf_v"), versionName=version, dataFormat="TEXT", inputPaths=[uri],
        outputPath=output,
    )  # fmt: skip
    assert job["state"] == "SUCCEEDED", job
    # Several outputs: each line is the object of output aliases, as online.
    assert results(cairn_server, output) == online(ml, version, instances)
    (bad,) = errors(cairn_server, output)
    assert bad["line"] == 4

    # TFRecords of tf.train.Examples, predicted from a model directory.
    examples = example_model_dir(tmp_path / "examples")
    model_uri = upload_dir(
        cairn_server.url, examples, "batch-models", unique("tfdir"), cairn_server.headers()
    )
    records = tmp_path / "examples.tfrecord"
    with records.open("wb") as handle:
        for value in (1.5, 2.0, -3.0):
            write_tf_record(handle, example_bytes(value))
    uri = upload_file(
        cairn_server.url, records, "batch-inputs", unique("ex"), cairn_server.headers()
    )
    output = f"gs://batch-out/{unique('tfrec')}"
    job = run(
        ml, unique("batch_tf_dir"), uri=model_uri, dataFormat="TF_RECORD", inputPaths=[uri],
        outputPath=output,
    )  # fmt: skip
    assert job["state"] == "SUCCEEDED", job
    assert [r["prediction"] for r in results(cairn_server, output)] == [3.0, 4.0, -6.0]


# ----- validation ---------------------------------------------------------------------------


def field_of(error: HttpError) -> str:
    details = json.loads(error.content)["error"]["details"]
    (violation,) = next(d for d in details if "fieldViolations" in d)["fieldViolations"]
    return str(violation["field"])


def test_create_refuses_jobs_that_could_not_run(
    ml: Any, cairn_server: Any, tmp_path: Path, sklearn_version: str
) -> None:
    uri = put(cairn_server, tmp_path, f"{unique('v')}.jsonl", b"[1, 2, 3, 4]\n")
    used = f"gs://batch-out/{unique('used')}"
    put(cairn_server, tmp_path, "x", b"")  # the bucket exists
    local_path(cairn_server, used).mkdir(parents=True)
    (local_path(cairn_server, used) / "prediction.results-00000-of-00001").write_text("")
    good = {"versionName": sklearn_version, "dataFormat": "JSON", "inputPaths": [uri]}
    good["outputPath"] = f"gs://batch-out/{unique('never')}"
    model = sklearn_version.rsplit("/versions/", 1)[0]
    cases = [
        ({"uri": "gs://batch-models/x"}, "job.prediction_input"),
        ({"dataFormat": "FILE_LIST"}, "job.prediction_input.data_format"),
        ({"outputDataFormat": "TF_RECORD"}, "job.prediction_input.output_data_format"),
        ({"inputPaths": ["gs://batch-inputs/none-*.jsonl"]}, "job.prediction_input.input_paths[0]"),
        ({"inputPaths": ["gs://batch-inputs/missing"]}, "job.prediction_input.input_paths[0]"),
        ({"inputPaths": ["/etc/passwd"]}, "job.prediction_input.input_paths[0]"),
        ({"outputPath": used}, "job.prediction_input.output_path"),
        ({"outputPath": "/tmp/out"}, "job.prediction_input.output_path"),
        ({"maxWorkerCount": "100000"}, "job.prediction_input.max_worker_count"),
        ({"maxWorkerCount": "0"}, "job.prediction_input.max_worker_count"),
        ({"batchSize": "0"}, "job.prediction_input.batch_size"),
        ({"runtimeVersion": "latest"}, "job.prediction_input.runtime_version"),
        ({"versionName": f"{model}/versions/nope"}, "job.prediction_input.version_name"),
        (
            {"versionName": "projects/other/models/m/versions/v"},
            "job.prediction_input.version_name",
        ),
        ({"versionName": "models/m"}, "job.prediction_input.version_name"),
    ]
    for change, field in cases:
        spec = {**good, **change}
        with pytest.raises(HttpError) as raised:
            submit(ml, unique("invalid"), **spec)
        assert raised.value.resp.status == 400, (change, raised.value.content)
        assert field_of(raised.value) == field, (change, raised.value.content)
    # A model directory whose files are no model.
    empty = upload_dir(
        cairn_server.url, _dir_with(tmp_path / "nomodel", "README", b"hi"), "batch-models",
        unique("nomodel"), cairn_server.headers(),
    )  # fmt: skip
    with pytest.raises(HttpError) as raised:
        submit(ml, unique("invalid"), **{**good, "versionName": None, "uri": empty})
    assert field_of(raised.value) == "job.prediction_input.uri"
    assert "Could not find a model file" in raised.value.content.decode()
    # A server path is no model directory a caller may name.
    with pytest.raises(HttpError) as raised:
        submit(ml, unique("invalid"), **{**good, "versionName": None, "uri": "/etc"})
    assert raised.value.resp.status == 400
    assert field_of(raised.value) == "job.prediction_input.uri"


def _dir_with(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True)
    (directory / name).write_bytes(data)
    return directory


# ----- cancel and restart -------------------------------------------------------------------


def fifo_input(server: Any, name: str) -> tuple[str, Path]:
    """An input the workers block on until the test writes to it (a named pipe)."""
    bucket = Path(server.home) / "storage" / "batch-inputs"
    bucket.mkdir(parents=True, exist_ok=True)
    path = bucket / name
    os.mkfifo(path, 0o666)
    return f"gs://batch-inputs/{name}", path


def worker_pids(server: Any, job_id: str) -> list[int]:
    record = Path(server.home) / "jobs" / PROJECT.split("/")[1] / job_id / "batch-run.json"
    deadline = time.monotonic() + 60
    while not record.exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return [int(w["record"]["handle"]["pid"]) for w in json.loads(record.read_text())["workers"]]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_cancel_ends_the_workers(ml: Any, cairn_server: Any, sklearn_version: str) -> None:
    uri, _ = fifo_input(cairn_server, unique("fifo"))
    job_id = unique("batch_cancel")
    submit(
        ml, job_id, versionName=sklearn_version, dataFormat="TF_RECORD", inputPaths=[uri],
        outputPath=f"gs://batch-out/{job_id}", maxWorkerCount="1",
    )  # fmt: skip
    name = f"{PROJECT}/jobs/{job_id}"
    wait_job(ml, name, states=("RUNNING",))
    pids = worker_pids(cairn_server, job_id)
    assert all(alive(pid) for pid in pids)
    ml.projects().jobs().cancel(name=name, body={}).execute()
    assert wait_job(ml, name)["state"] == "CANCELLED"
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a worker outlived the cancelled job"
        time.sleep(0.1)


@pytest.mark.slow
def test_restart_resumes_the_job(start_server: Any, tmp_path: Path) -> None:
    server: RunningServer = start_server()
    ml = server.client()
    model = unique("restart_sk")
    version = deploy(ml, server, sklearn_model_dir(tmp_path / "model"), model)
    uri, fifo = fifo_input(server, unique("fifo"))
    job_id = unique("batch_restart")
    output = f"gs://batch-out/{job_id}"
    submit(
        ml, job_id, versionName=version, dataFormat="TF_RECORD", inputPaths=[uri],
        outputPath=output, maxWorkerCount="1",
    )  # fmt: skip
    name = f"{PROJECT}/jobs/{job_id}"
    wait_job(ml, name, states=("RUNNING",))
    (pid,) = worker_pids(server, job_id)
    server.kill()  # a crash; the worker lives on
    assert alive(pid)
    server.restart()
    ml = server.client()
    assert ml.projects().jobs().get(name=name).execute()["state"] == "RUNNING"
    instances = rows(5, 4)
    with fifo.open("wb") as handle:
        for row in instances:
            write_tf_record(handle, orjson.dumps(row))
    job = wait_job(ml, name)
    assert job["state"] == "SUCCEEDED", job
    assert job["predictionOutput"]["predictionCount"] == "5"
    assert [r["prediction"] for r in results(server, output)] == online(ml, version, instances)


# ----- the CLI ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_submits_streams_and_describes(
    cairn_server: Any, tmp_path: Path, xgboost_dir: Path
) -> None:
    instances = rows(20, 3, seed=11)
    (tmp_path / "in.jsonl").write_bytes(
        jsonl([{"key": i, "instance": r} for i, r in enumerate(instances)])
    )
    uri = upload_file(
        cairn_server.url,
        tmp_path / "in.jsonl",
        "batch-inputs",
        unique("cli"),
        cairn_server.headers(),
    )
    job = unique("cli_batch")
    project = PROJECT.split("/")[1]
    submitted = invoke(
        cairn_server.url, "jobs", "submit", "prediction", job,
        "--model-dir", str(xgboost_dir), "--staging-bucket", "gs://batch-staging",
        "--input-paths", uri, "--data-format", "text",
        "--output-path", f"gs://batch-out/{job}", "--labels", "team=ml", "--stream-logs",
        project=project,
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    assert any("Worker 1 of 1" in line for line in submitted.stdout.splitlines())
    summary = yaml.safe_load(submitted.stdout[submitted.stdout.index("jobId:") :])
    assert summary["state"] == "SUCCEEDED"
    assert summary["predictionOutput"]["predictionCount"] == "20"
    described = yaml.safe_load(
        invoke(cairn_server.url, "jobs", "describe", job, project=project).stdout
    )
    assert described["labels"] == {"team": "ml"}
    assert described["predictionInput"]["uri"].startswith(f"gs://batch-staging/{job}_model/")
    assert described["predictionOutput"]["outputPath"] == f"gs://batch-out/{job}"
    summary_text = invoke(
        cairn_server.url, "jobs", "describe", job, "--summarize", project=project
    ).stdout
    assert "Predicted: 20 instances, 0 bad lines" in summary_text, summary_text
    keys = [r["key"] for r in results(cairn_server, f"gs://batch-out/{job}")]
    assert keys == list(range(20))
