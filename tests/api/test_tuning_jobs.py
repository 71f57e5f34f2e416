"""Hyperparameter tuning jobs through google-api-python-client: real trainers, real trials.

The trainer reports its metric with cloudml-hypertune (declared as its package dependency,
as AI Platform's samples do) and records what each trial saw under `<job dir>/<trial id>`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from googleapiclient.errors import HttpError
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_file, wait_job

PROJECT = "projects/tuning"

# The objective peaks at lr=0.01, layers=3, optimizer=adam, batch=64 (MAXIMIZE).
TRAINER = """
import argparse, json, math, os, pathlib, sys, time
import hypertune

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir")
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--layers", type=int, default=1)
parser.add_argument("--optimizer", default="sgd")
parser.add_argument("--batch", type=float, default=16)
parser.add_argument("--width", type=float, default=1.0)
parser.add_argument("--mode", default="report")
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--pause", type=float, default=0.0)
args, unknown = parser.parse_known_args()

tf_config = json.loads(os.environ["TF_CONFIG"])
task = tf_config.get("task", {})
trial = task.get("trial")
out = pathlib.Path(args.job_dir) / str(trial)
out.mkdir(parents=True, exist_ok=True)
(out / f"seen-{task.get('type')}.json").write_text(json.dumps({
    "argv": sys.argv[1:],
    "trial_env": os.environ.get("CLOUD_ML_TRIAL_ID"),
    "trial_tf_config": trial,
    "pid": os.getpid(),
}))
print(f"trial {trial} {task.get('type')} started", flush=True)
if task.get("type") not in ("master", "chief"):
    sys.exit(0)
if args.mode == "fail":
    sys.stderr.write(f"ValueError: trial {trial} cannot train\\n")
    sys.exit(3)
if args.mode == "silent":
    sys.exit(0)
value = (
    -(math.log10(args.lr) + 2) ** 2
    - (args.layers - 3) ** 2
    + (1.0 if args.optimizer == "adam" else 0.0)
    - abs(args.batch - 64) / 64
    - (args.width - 1.0) ** 2
)
pause = args.pause
if args.mode == "curve":
    value = args.batch  # the DISCRETE value alone, so tests know each trial's curve
    pause = args.pause * value  # and trials with larger values take longer
reporter = hypertune.HyperTune()
for step in range(1, args.steps + 1):
    reporter.report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag="score", metric_value=value, global_step=step
    )
    time.sleep(pause)
print(f"trial {trial} reported {value}", flush=True)
"""

ALL_KINDS = [
    {
        "parameterName": "lr",
        "type": "DOUBLE",
        "minValue": 0.0001,
        "maxValue": 0.1,
        "scaleType": "UNIT_LOG_SCALE",
    },
    {
        "parameterName": "layers",
        "type": "INTEGER",
        "minValue": 1,
        "maxValue": 5,
        "scaleType": "UNIT_LINEAR_SCALE",
    },
    {"parameterName": "optimizer", "type": "CATEGORICAL", "categoricalValues": ["sgd", "adam"]},
    {
        "parameterName": "batch",
        "type": "DISCRETE",
        "discreteValues": [16, 32, 64, 128],
        "scaleType": "UNIT_REVERSE_LOG_SCALE",
    },
]

GRID = [
    {"parameterName": "layers", "type": "INTEGER", "minValue": 2, "maxValue": 3},
    {"parameterName": "optimizer", "type": "CATEGORICAL", "categoricalValues": ["sgd", "adam"]},
]


@pytest.fixture(scope="module")
def package(cairn_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    sdist = build_trainer_sdist(
        tmp_path_factory.mktemp("tuning-trainer"),
        TRAINER,
        install_requires=["cloudml-hypertune"],
    )
    return upload_file(
        cairn_server.url,
        sdist,
        "tuning-staging",
        f"pkg/{sdist.name}",
        headers=cairn_server.headers(),
    )


def submit(ml: Any, package: str, hyperparameters: dict[str, Any], **training: Any) -> str:
    job_id = unique("tune")
    body = {
        "jobId": job_id,
        "trainingInput": {
            "scaleTier": "BASIC",
            "packageUris": [package],
            "pythonModule": "trainer.task",
            "region": "us-central1",
            "jobDir": f"gs://tuning-out/{job_id}",
            "hyperparameters": {"hyperparameterMetricTag": "score", **hyperparameters},
            **training,
        },
    }
    ml.projects().jobs().create(parent=PROJECT, body=body).execute()
    return job_id


def seen(server: Any, job_id: str, trial_id: str, task: str = "primary") -> dict[str, Any]:
    """What a trial's replica recorded; the primary is `chief` or `master` by runtime."""
    trial_dir = server.home / "storage" / "tuning-out" / job_id / trial_id
    names = ["chief", "master"] if task == "primary" else [task]
    for name in names:
        if (path := trial_dir / f"seen-{name}.json").exists():
            return dict(json.loads(path.read_text()))
    raise FileNotFoundError(trial_dir / f"seen-{task}.json")


def objective(trial: dict[str, Any]) -> float:
    return float(trial["finalMetric"]["objectiveValue"])


@pytest.mark.slow
def test_tuning_job_runs_parallel_trials_of_every_parameter_kind(
    ml: Any, cairn_server: Any, package: str
) -> None:
    job_id = submit(
        ml,
        package,
        {"goal": "MAXIMIZE", "params": ALL_KINDS, "maxTrials": 5, "maxParallelTrials": 2},
    )
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}", timeout=240)
    assert job["state"] == "SUCCEEDED", job
    output = job["trainingOutput"]
    assert output["isHyperparameterTuningJob"] is True
    assert output["hyperparameterMetricTag"] == "score"
    assert output["completedTrialCount"] == "5"
    assert output["consumedMLUnits"] > 0
    trials = output["trials"]
    assert sorted(int(t["trialId"]) for t in trials) == [1, 2, 3, 4, 5]
    values = [objective(t) for t in trials]
    assert values == sorted(values, reverse=True)  # best first
    for trial in trials:
        assert trial["state"] == "SUCCEEDED"
        assert trial["finalMetric"]["trainingStep"] == "3"
        assert [m["trainingStep"] for m in trial["allMetrics"]] == ["1", "2", "3"]
        assert trial["startTime"] <= trial["endTime"]
        params = trial["hyperparameters"]
        assert 0.0001 <= float(params["lr"]) <= 0.1
        assert params["layers"] in {"1", "2", "3", "4", "5"}  # whole numbers, as flags
        assert params["optimizer"] in {"sgd", "adam"}
        assert params["batch"] in {"16", "32", "64", "128"}
        record = seen(cairn_server, job_id, trial["trialId"])
        assert record["trial_env"] == record["trial_tf_config"] == trial["trialId"]
        flags = {f"--{name}={value}" for name, value in params.items()}
        assert flags <= set(record["argv"])
        expected = (
            -((math.log10(float(params["lr"])) + 2) ** 2)
            - (int(params["layers"]) - 3) ** 2
            + (1.0 if params["optimizer"] == "adam" else 0.0)
            - abs(float(params["batch"]) - 64) / 64
        )
        assert objective(trial) == pytest.approx(expected)
    # Two trials ran at once at least once: their lifetimes overlap.
    spans = sorted((t["startTime"], t["endTime"]) for t in trials)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


@pytest.mark.slow
def test_grid_search_runs_every_combination_once_and_stops_when_exhausted(
    ml: Any, package: str
) -> None:
    job_id = submit(ml, package, {"algorithm": "GRID_SEARCH", "params": GRID, "maxTrials": 10})
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}", timeout=180)
    assert job["state"] == "SUCCEEDED", job
    combos = [
        (t["hyperparameters"]["layers"], t["hyperparameters"]["optimizer"])
        for t in job["trainingOutput"]["trials"]
    ]
    assert sorted(combos) == sorted([("2", "sgd"), ("2", "adam"), ("3", "sgd"), ("3", "adam")])
    best = job["trainingOutput"]["trials"][0]["hyperparameters"]
    assert best == {"layers": "3", "optimizer": "adam"}


@pytest.mark.slow
def test_a_resumed_study_continues_where_the_previous_job_ended(ml: Any, package: str) -> None:
    first = submit(ml, package, {"algorithm": "GRID_SEARCH", "params": GRID, "maxTrials": 2})
    done = wait_job(ml, f"{PROJECT}/jobs/{first}", timeout=180)
    assert done["state"] == "SUCCEEDED", done
    second = submit(
        ml,
        package,
        {
            "algorithm": "GRID_SEARCH",
            "params": GRID,
            "maxTrials": 4,
            "resumePreviousJobId": first,
        },
    )
    resumed = wait_job(ml, f"{PROJECT}/jobs/{second}", timeout=180)
    assert resumed["state"] == "SUCCEEDED", resumed

    def combos(job: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (t["hyperparameters"]["layers"], t["hyperparameters"]["optimizer"])
            for t in job["trainingOutput"]["trials"]
        }

    # The grid had four points: the resumed study ran only the two the first job had not.
    assert len(resumed["trainingOutput"]["trials"]) == 2
    assert combos(done).isdisjoint(combos(resumed))
    assert len(combos(done) | combos(resumed)) == 4


@pytest.mark.slow
def test_resuming_needs_an_ended_study_of_the_same_parameters(ml: Any, package: str) -> None:
    with pytest.raises(HttpError) as missing:
        submit(ml, package, {"params": GRID, "resumePreviousJobId": "no_such_job"})
    assert missing.value.resp.status == 400
    assert "resume_previous_job_id" in missing.value.content.decode()

    running = submit(
        ml, package, {"params": GRID, "maxTrials": 1}, args=["--mode", "curve", "--pause", "1"]
    )
    with pytest.raises(HttpError) as unfinished:
        submit(ml, package, {"params": GRID, "resumePreviousJobId": running})
    assert unfinished.value.resp.status == 400
    assert json.loads(unfinished.value.content)["error"]["status"] == "FAILED_PRECONDITION"
    wait_job(ml, f"{PROJECT}/jobs/{running}", timeout=180)

    with pytest.raises(HttpError) as other_space:
        submit(ml, package, {"params": ALL_KINDS, "resumePreviousJobId": running})
    assert other_space.value.resp.status == 400
    assert "same params" in other_space.value.content.decode()


@pytest.mark.slow
def test_failing_trials_end_the_job_at_max_failed_trials(ml: Any, package: str) -> None:
    job_id = submit(
        ml,
        package,
        {"params": GRID, "maxTrials": 4, "maxFailedTrials": 2, "algorithm": "GRID_SEARCH"},
        args=["--mode", "fail"],
    )
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}", timeout=180)
    assert job["state"] == "FAILED", job
    assert job["errorMessage"].startswith("2 trials failed (maxFailedTrials is 2)."), job
    assert "cannot train" in job["errorMessage"]
    states = sorted(t["state"] for t in job["trainingOutput"]["trials"])
    assert states.count("FAILED") == 2
    assert len(states) == 2  # nothing more was launched once the limit was reached


@pytest.mark.slow
def test_a_trial_that_reports_no_metric_fails_naming_the_tag(ml: Any, package: str) -> None:
    job_id = submit(ml, package, {"params": GRID, "maxTrials": 1}, args=["--mode", "silent"])
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}", timeout=180)
    assert job["state"] == "FAILED", job
    assert "reported no value for the metric 'score'" in job["errorMessage"], job
    assert job["trainingOutput"]["trials"][0]["state"] == "FAILED"


@pytest.mark.slow
def test_early_stopping_stops_a_trial_that_cannot_catch_up(
    ml: Any, cairn_server: Any, package: str
) -> None:
    # Grid order is ascending: the trials reporting 1, 2 and 3 finish first, in about a second
    # each (MINIMIZE); the one reporting 100 would run for a minute unless stopped.
    job_id = submit(
        ml,
        package,
        {
            "goal": "MINIMIZE",
            "algorithm": "GRID_SEARCH",
            "enableTrialEarlyStopping": True,
            "maxTrials": 4,
            "params": [
                {"parameterName": "batch", "type": "DISCRETE", "discreteValues": [1, 2, 3, 100]}
            ],
        },
        args=["--mode", "curve", "--steps", "60", "--pause", "0.01"],
    )
    started = time.monotonic()
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}", timeout=180)
    assert job["state"] == "SUCCEEDED", job
    trials = {t["hyperparameters"]["batch"]: t for t in job["trainingOutput"]["trials"]}
    assert trials["100"].get("isTrialStoppedEarly") is True, trials["100"]
    assert int(trials["100"]["finalMetric"]["trainingStep"]) < 60
    for good in ("1", "2", "3"):
        assert not trials[good].get("isTrialStoppedEarly")
        assert trials[good]["finalMetric"]["trainingStep"] == "60"
    assert time.monotonic() - started < 40


@pytest.mark.slow
def test_cancelling_a_tuning_job_ends_every_running_trial(
    ml: Any, cairn_server: Any, package: str
) -> None:
    job_id = submit(
        ml,
        package,
        {"params": GRID, "maxTrials": 4, "maxParallelTrials": 2, "algorithm": "GRID_SEARCH"},
        args=["--mode", "curve", "--steps", "600", "--pause", "0.1"],
    )
    name = f"{PROJECT}/jobs/{job_id}"
    pids = [_wait_for_trial(cairn_server, job_id, trial)["pid"] for trial in ("1", "2")]
    ml.projects().jobs().cancel(name=name, body={}).execute()
    job = wait_job(ml, name, timeout=60)
    assert job["state"] == "CANCELLED", job
    assert {t["state"] for t in job["trainingOutput"]["trials"]} == {"CANCELLED"}
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


@pytest.mark.slow
def test_a_distributed_tuning_job_runs_the_whole_cluster_per_trial(
    ml: Any, cairn_server: Any, package: str
) -> None:
    job_id = submit(
        ml,
        package,
        {"params": GRID, "maxTrials": 2, "algorithm": "RANDOM_SEARCH"},
        scaleTier="CUSTOM",
        masterType="n1-standard-4",
        workerType="n1-standard-4",
        workerCount="1",
    )
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}", timeout=180)
    assert job["state"] == "SUCCEEDED", job
    for trial in job["trainingOutput"]["trials"]:
        worker = seen(cairn_server, job_id, trial["trialId"], "worker")
        assert worker["trial_tf_config"] == trial["trialId"]
        flags = {f"--{k}={v}" for k, v in trial["hyperparameters"].items()}
        assert flags <= set(worker["argv"])


def test_bad_tuning_specs_are_refused_with_field_violations(ml: Any, package: str) -> None:
    bad = {"params": [{"parameterName": "x", "type": "DOUBLE", "minValue": 0, "maxValue": 1}]}
    with pytest.raises(HttpError) as error:
        submit(ml, package, {**bad, "algorithm": "GRID_SEARCH"})
    assert error.value.resp.status == 400
    body = json.loads(error.value.content)["error"]
    assert body["status"] == "INVALID_ARGUMENT"
    violations = body["details"][0]["fieldViolations"]
    assert violations[0]["field"] == "job.training_input.hyperparameters.params[0].type"


def _upload_to(server: Any, tmp_path: Path) -> str:
    sdist = build_trainer_sdist(tmp_path, TRAINER, install_requires=["cloudml-hypertune"])
    return upload_file(
        server.url, sdist, "tuning-staging", f"pkg/{sdist.name}", headers=server.headers()
    )


def _wait_for_trial(server: Any, job_id: str, trial_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        try:
            return seen(server, job_id, trial_id)
        except (FileNotFoundError, json.JSONDecodeError):
            assert time.monotonic() < deadline, f"trial {trial_id} never started"
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["crash", "graceful stop"])
def test_a_study_survives_a_server_restart(start_server: Any, tmp_path: Path, how: str) -> None:
    server = start_server()
    ml = server.client()
    package = _upload_to(server, tmp_path)
    # Trial 1 takes ~2 s; trial 2 is running (for ~4 s) when the server goes away.
    job_id = submit(
        ml,
        package,
        {
            "algorithm": "GRID_SEARCH",
            "maxTrials": 3,
            "params": [{"parameterName": "batch", "type": "DISCRETE", "discreteValues": [1, 2, 3]}],
        },
        args=["--mode", "curve", "--steps", "2", "--pause", "1"],
    )
    name = f"{PROJECT}/jobs/{job_id}"
    first = _wait_for_trial(server, job_id, "1")
    second = _wait_for_trial(server, job_id, "2")
    if how == "crash":
        server.kill()  # trial 2's processes live on and are adopted
    else:
        server.stop()  # trial 2 is ended, and runs again after the restart
        assert not psutil.pid_exists(second["pid"])
    server.restart()
    ml = server.client()
    job = wait_job(ml, name, timeout=180)
    assert job["state"] == "SUCCEEDED", (job, server.log())
    trials = job["trainingOutput"]["trials"]
    assert sorted(t["trialId"] for t in trials) == ["1", "2", "3"]
    assert sorted(t["hyperparameters"]["batch"] for t in trials) == ["1", "2", "3"]
    assert {t["state"] for t in trials} == {"SUCCEEDED"}
    assert seen(server, job_id, "1")["pid"] == first["pid"]  # trial 1 never ran again
    rerun = seen(server, job_id, "2")["pid"] != second["pid"]
    assert rerun == (how == "graceful stop")


# Reports through TensorFlow summaries only, under <job dir>/<trial id>, as AI Platform's
# TensorFlow samples do.
SUMMARY_TRAINER = """
import argparse, json, os
import tensorflow as tf

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir")
parser.add_argument("--layers", type=int)
parser.add_argument("--optimizer")
args = parser.parse_args()
trial = json.loads(os.environ["TF_CONFIG"])["task"]["trial"]
writer = tf.summary.create_file_writer(os.path.join(args.job_dir, trial, "eval"))
with writer.as_default():
    for step in (10, 20):
        value = args.layers * step + (1 if args.optimizer == "adam" else 0)
        tf.summary.scalar("training/hptuning/metric", value, step=step)
writer.flush()
"""


@pytest.mark.slow
def test_a_trainer_reporting_through_tensorflow_summaries(
    ml: Any, cairn_server: Any, tmp_path: Path
) -> None:
    sdist = build_trainer_sdist(tmp_path, SUMMARY_TRAINER)
    package = upload_file(
        cairn_server.url,
        sdist,
        "tuning-staging",
        f"tf/{sdist.name}",
        headers=cairn_server.headers(),
    )
    job_id = unique("tune_tf")
    ml.projects().jobs().create(
        parent=PROJECT,
        body={
            "jobId": job_id,
            "trainingInput": {
                "packageUris": [package],
                "pythonModule": "trainer.task",
                "region": "us-central1",
                "jobDir": f"gs://tuning-out/{job_id}",
                "hyperparameters": {
                    "algorithm": "GRID_SEARCH",
                    "maxTrials": 2,
                    "maxParallelTrials": 2,
                    "params": [
                        {
                            "parameterName": "layers",
                            "type": "INTEGER",
                            "minValue": 2,
                            "maxValue": 3,
                        },
                        {
                            "parameterName": "optimizer",
                            "type": "CATEGORICAL",
                            "categoricalValues": ["adam"],
                        },
                    ],
                },
            },
        },
    ).execute()
    job = wait_job(ml, f"{PROJECT}/jobs/{job_id}", timeout=240)
    assert job["state"] == "SUCCEEDED", job
    trials = job["trainingOutput"]["trials"]
    assert job["trainingOutput"]["hyperparameterMetricTag"] == "training/hptuning/metric"
    assert [t["hyperparameters"]["layers"] for t in trials] == ["3", "2"]  # best first
    assert trials[0]["finalMetric"] == {"trainingStep": "20", "objectiveValue": 61.0}
    assert trials[1]["finalMetric"] == {"trainingStep": "20", "objectiveValue": 41.0}
