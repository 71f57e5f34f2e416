"""The training runner with real trainer packages in real child processes."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.training.conftest import RunRecorder, wait_for_file

from cairn.domain.errors import ApiError
from cairn.executors import is_running


def _training_input(package_uri: str, *args: str, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "packageUris": [package_uri],
        "pythonModule": "trainer.task",
        "args": list(args),
        "region": "us-central1",
        "jobDir": "gs://bkt/out",
    }
    spec.update(fields)
    return spec


def test_a_trainer_runs_with_the_ai_platform_contract(
    make_runner, trainer_sdist, upload, storage_root: Path, tmp_path: Path
) -> None:
    (storage_root / "bkt" / "data.csv").parent.mkdir(parents=True, exist_ok=True)
    spec = _training_input(
        upload(trainer_sdist), "--mode", "ok", "--data=gs://bkt/data.csv", runtimeVersion="2.11"
    )
    runner = make_runner()
    recorder = RunRecorder()
    runner.start("p1", "job_ok", spec, **recorder.callbacks)

    outcome = recorder.wait()

    assert outcome.state == "SUCCEEDED", outcome.error_message
    assert outcome.error_message is None
    assert recorder.states == ["PREPARING", "RUNNING"]
    job_dir = storage_root / "bkt" / "out"
    assert (job_dir / "model.txt").read_text() == "trained"
    seen = json.loads((job_dir / "seen-chief-0.json").read_text())
    assert seen["argv"] == [
        "--mode",
        "ok",
        f"--data={storage_root / 'bkt' / 'data.csv'}",
        "--job-dir",
        str(job_dir),
    ]
    working_dir = tmp_path / "jobs" / "p1" / "job_ok"
    assert Path(seen["cwd"]) == working_dir / "work"
    assert Path(seen["executable"]).parent.parent.parent == tmp_path / "envs"
    tf_config = seen["tf_config"]
    port = tf_config["cluster"]["chief"][0].rsplit(":", 1)[1]
    assert tf_config == {
        "cluster": {"chief": [f"127.0.0.1:{port}"]},
        "task": {"type": "chief", "index": 0},
        "job": spec,
        "environment": "cloud",
    }
    assert seen["env"] == {
        "CLOUD_ML_JOB_ID": "job_ok",
        "CLOUD_ML_HP_METRIC_FILE": str(working_dir / "hypertune" / "0" / "output.metrics"),
        "CLOUD_ML_TRIAL_ID": None,
    }


def test_logs_are_read_incrementally_per_replica(make_runner, trainer_sdist, upload) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    runner.start("p1", "job_logs", _training_input(upload(trainer_sdist)), **recorder.callbacks)
    assert recorder.wait().state == "SUCCEEDED"

    entries, cursor = runner.read_logs("p1", "job_logs", None)
    replica_lines = [e["text"] for e in entries if e["taskName"] == "master-replica-0"]
    assert replica_lines[0].startswith("trainer chief-0 started with")
    assert replica_lines[-1] == "trainer chief-0 done"
    assert any(e["taskName"] == "service" for e in entries)  # the package install

    more, cursor_after = runner.read_logs("p1", "job_logs", cursor)
    assert more == []
    assert runner.read_logs("p1", "job_logs", cursor_after)[0] == []
    with pytest.raises(ApiError):
        runner.read_logs("p1", "job_logs", "not-a-cursor")


def test_job_files_and_extra_variables_reach_the_replicas_and_server_settings_do_not(
    make_runner, trainer_sdist, upload, storage_root: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CAIRN_DATABASE_URL", "postgresql://cairn:secret@db/cairn")
    runner = make_runner(api_url="http://127.0.0.1:8080")
    credential = runner.write_job_file("p1", "job_cred", "credential.json", b'{"token": "t"}')
    assert credential == tmp_path / "jobs" / "p1" / "job_cred" / "credential.json"
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    spec = _training_input(upload(trainer_sdist), "--mode=credential")
    recorder = RunRecorder()
    extra_env = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(credential),
        "JOB_LABEL": "from the service",
        "CLOUD_ML_JOB_ID": "not the job id",  # AI Platform's variables cannot be overridden
    }
    runner.start("p1", "job_cred", spec, extra_env=extra_env, **recorder.callbacks)

    assert recorder.wait().state == "SUCCEEDED"
    seen = json.loads((storage_root / "bkt" / "out" / "credential-seen.json").read_text())
    assert seen["credential"] == '{"token": "t"}'
    assert seen["JOB_LABEL"] == "from the service"
    assert seen["CAIRN_API"] == "http://127.0.0.1:8080"
    assert seen["CAIRN_DATABASE_URL"] is None
    contract = json.loads((storage_root / "bkt" / "out" / "seen-chief-0.json").read_text())
    assert contract["env"]["CLOUD_ML_JOB_ID"] == "job_cred"

    runner.remove_job_file("p1", "job_cred", "credential.json")
    assert not credential.exists()
    runner.remove_job_file("p1", "job_cred", "credential.json")  # gone already is fine
    for name in ("run.json", "../escape", "logs", ""):
        with pytest.raises(ValueError):
            runner.write_job_file("p1", "job_cred", name, b"x")


def test_old_runtime_versions_name_the_primary_master(
    make_runner, trainer_sdist, upload, storage_root: Path
) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    spec = _training_input(upload(trainer_sdist), runtimeVersion="1.15")
    runner.start("p1", "job_tf1", spec, **recorder.callbacks)
    assert recorder.wait().state == "SUCCEEDED"
    seen = json.loads((storage_root / "bkt" / "out" / "seen-master-0.json").read_text())
    assert seen["tf_config"]["task"] == {"type": "master", "index": 0}
    assert list(seen["tf_config"]["cluster"]) == ["master"]


def test_a_failing_trainer_fails_the_job_with_its_stderr(
    make_runner, trainer_sdist, upload
) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    runner.start(
        "p1",
        "job_fail",
        _training_input(upload(trainer_sdist), "--mode=fail"),
        **recorder.callbacks,
    )
    outcome = recorder.wait()
    assert outcome.state == "FAILED"
    assert outcome.error_message is not None
    assert "The replica master 0 exited with a non-zero status of 3" in outcome.error_message
    assert "the data could not be read" in outcome.error_message


def test_cancel_ends_the_whole_process_tree(
    make_runner, trainer_sdist, upload, storage_root: Path
) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    spec = _training_input(upload(trainer_sdist), "--mode=sleep", "--seconds=300")
    runner.start("p1", "job_cancel", spec, **recorder.callbacks)
    pids = json.loads(wait_for_file(storage_root / "bkt" / "out" / "pids.json").read_text())
    assert all(is_running(pid) for pid in pids.values())

    runner.cancel("p1", "job_cancel")

    assert recorder.wait().state == "CANCELLED"
    assert not any(is_running(pid) for pid in pids.values())
    assert not runner.is_running("p1", "job_cancel")


def test_shutdown_fails_running_jobs_with_a_clear_message(
    make_runner, trainer_sdist, upload, storage_root: Path
) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    spec = _training_input(upload(trainer_sdist), "--mode=sleep", "--seconds=300")
    runner.start("p1", "job_stop", spec, **recorder.callbacks)
    pids = json.loads(wait_for_file(storage_root / "bkt" / "out" / "pids.json").read_text())

    runner.shutdown()

    outcome = recorder.wait(timeout=1)
    assert outcome.state == "FAILED"
    assert outcome.error_message == "The Cairn server stopped while the job was running."
    assert not any(is_running(pid) for pid in pids.values())


def test_trials_get_their_own_directory_args_and_metric_file(
    make_runner, trainer_sdist, upload, storage_root: Path, tmp_path: Path
) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    spec = _training_input(upload(trainer_sdist))
    runner.start(
        "p1", "job_hp", spec, trial_id="3", extra_args=["--learning_rate=0.1"], **recorder.callbacks
    )
    assert recorder.wait().state == "SUCCEEDED"
    seen = json.loads((storage_root / "bkt" / "out" / "seen-chief-0.json").read_text())
    assert seen["unknown"] == ["--learning_rate=0.1"]
    assert seen["tf_config"]["task"] == {"type": "chief", "index": 0, "trial": "3"}
    job_dir = tmp_path / "jobs" / "p1" / "job_hp"
    assert seen["env"]["CLOUD_ML_TRIAL_ID"] == "3"
    assert seen["env"]["CLOUD_ML_HP_METRIC_FILE"] == str(
        job_dir / "hypertune" / "3" / "output.metrics"
    )
    assert Path(seen["cwd"]) == job_dir / "trials" / "3" / "work"
    entries, _ = runner.read_logs("p1", "job_hp", None)
    assert {e.get("trialId") for e in entries} == {"3"}


def test_a_custom_cluster_runs_every_replica_with_its_own_port(
    make_runner, trainer_sdist, upload, storage_root: Path
) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    spec = _training_input(
        upload(trainer_sdist),
        "--mode=cluster",
        scaleTier="CUSTOM",
        masterType="n1-standard-4",
        workerType="n1-standard-4",
        workerCount="2",
        parameterServerType="n1-standard-4",
        parameterServerCount="1",
        evaluatorType="n1-standard-4",
        evaluatorCount="1",
    )
    runner.start("p1", "job_cluster", spec, **recorder.callbacks)
    outcome = recorder.wait()
    assert outcome.state == "SUCCEEDED", outcome.error_message

    out = storage_root / "bkt" / "out"
    configs = {
        name: json.loads((out / f"seen-{name}.json").read_text())["tf_config"]
        for name in ("chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0")
    }
    cluster = configs["chief-0"]["cluster"]
    assert sorted(cluster) == ["chief", "ps", "worker"]  # evaluators are not in the cluster
    addresses = [a for members in cluster.values() for a in members]
    assert len(addresses) == len(set(addresses)) == 4
    assert all(a.startswith("127.0.0.1:") for a in addresses)
    assert all(c["cluster"] == cluster for c in configs.values())
    assert configs["evaluator-0"]["task"] == {"type": "evaluator", "index": 0}
    assert configs["worker-1"]["task"] == {"type": "worker", "index": 1}
    # The parameter server never exits by itself: the runner ended it.
    for proc in psutil.process_iter(["cmdline"]):
        assert "--mode=cluster" not in (proc.info["cmdline"] or []) or not is_running(proc.pid)


def test_jobs_it_cannot_run_are_refused_at_once(make_runner, trainer_sdist, upload) -> None:
    runner = make_runner()
    recorder = RunRecorder()
    with pytest.raises(ApiError, match="pythonModule"):
        runner.start("p1", "j1", {"packageUris": [upload(trainer_sdist)]}, **recorder.callbacks)
    with pytest.raises(ApiError, match="does not exist"):
        runner.start("p1", "j2", _training_input("gs://bkt/missing.tar.gz"), **recorder.callbacks)
    with pytest.raises(ApiError, match="BASIC_TPU"):
        spec = _training_input(upload(trainer_sdist), scaleTier="BASIC_TPU")
        runner.start("p1", "j3", spec, **recorder.callbacks)
    assert recorder.states == []


def test_a_line_longer_than_a_read_does_not_stall_the_log(tmp_path: Path) -> None:
    from cairn.training.logs import LOG_SUFFIX, read_job_logs

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / f"master-replica-0{LOG_SUFFIX}").write_bytes(b"x" * (3 << 20) + b"\nafter\n")
    text = ""
    cursor = None
    for _ in range(10):
        entries, cursor = read_job_logs(tmp_path, cursor)
        text += "".join(entry["text"] for entry in entries)
        if "after" in text:
            break
    assert "after" in text
