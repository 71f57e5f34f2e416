"""A root server runs user code unprivileged: every job as a uid of its own, which can touch
neither the server's files nor another job's.

Real `cairn server` processes, real trainer packages: the trainer itself tries to read the
server's database and the owner's credential, to write into the home, to tamper with its
own run record and logs, and to get at another running job's credential, run directory,
log and environment, and writes down how each attempt ended.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_file, wait_job, wait_operation
from tests.training.conftest import RunRecorder

from cairn.config import DEFAULT_RUN_UID_RANGE, Settings
from cairn.executors import DEFAULT_RUNNER_USER, UidAllocator
from cairn.executors.acl import user_grant
from cairn.isolation import IsolationError, isolate_user_code
from cairn.storage import BucketStorage
from cairn.training import TrainingRunner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="only a server running as root switches user code to an unprivileged user",
    ),
]

P = "projects/isolation"

# Baked into the trainer: the home it must not get into (args naming server paths may be
# refused by the API, and a trainer has no other way to learn the server's home).
PROBING_TRAINER = """
import argparse, json, os, pathlib

HOME = pathlib.Path(HOME_PATH)
RUN_DIR = pathlib.Path.cwd().parent  # the working directory is <run dir>/work

def attempt(action):
    try:
        action()
    except PermissionError:
        return "PermissionError"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "allowed"

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir", required=True)
args, _ = parser.parse_known_args()
report = {
    "uid": os.geteuid(),
    "read the database": attempt(lambda: (HOME / "cairn.db").read_bytes()),
    "read the owner credential": attempt(
        lambda: (HOME / "credentials" / "owner.json").read_bytes()
    ),
    "write into the home": attempt(lambda: (HOME / "planted.txt").write_text("x")),
    "list the home": attempt(lambda: os.listdir(HOME)),
    "rewrite the run record": attempt(lambda: (RUN_DIR / "run.json").write_text("{}")),
    "replace the logs": attempt(lambda: os.rename(RUN_DIR / "logs", RUN_DIR / "moved")),
}
print("isolation report", json.dumps(report, sort_keys=True), flush=True)
job_dir = pathlib.Path(args.job_dir)
job_dir.mkdir(parents=True, exist_ok=True)
(job_dir / "report.json").write_text(json.dumps(report))
(job_dir / "work.txt").write_text("written from " + os.getcwd())
"""

TRAINING_TRAINER = """
import argparse, os, pathlib
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir", required=True)
args, _ = parser.parse_known_args()
rng = np.random.default_rng(0)
features = rng.normal(size=(200, 4))
labels = (features[:, 0] + features[:, 1] > 0).astype(int)
model_dir = pathlib.Path(args.job_dir) / "model"
model_dir.mkdir(parents=True, exist_ok=True)
joblib.dump(LogisticRegression().fit(features, labels), model_dir / "model.joblib")
(pathlib.Path(args.job_dir) / "trainer-uid.txt").write_text(str(os.geteuid()))
"""


@pytest.fixture
def isolated_home(tmp_path: Path) -> Iterator[tuple[Settings, UidAllocator]]:
    """A home set up the way a root server does it, for the engine on its own."""
    umask = os.umask(0o022)  # isolating sets the process umask: restore it afterwards
    os.umask(umask)
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    try:
        isolation = isolate_user_code(settings)
        assert isolation.identities is not None
        yield settings, isolation.identities
    finally:
        os.umask(umask)


def test_a_job_file_is_readable_by_the_replicas_alone(
    isolated_home: tuple[Settings, UidAllocator], trainer_sdist: Path
) -> None:
    settings, identities = isolated_home
    package = settings.storage_root / "bkt" / "packages" / trainer_sdist.name
    package.parent.mkdir(parents=True)
    shutil.copy(trainer_sdist, package)
    runner = TrainingRunner(
        settings.jobs_root,
        settings.envs_root,
        BucketStorage(settings.storage_root),
        identities=identities,
    )
    try:
        credential = runner.write_job_file("p1", "job_cred", "credential.json", b"secret")
        uid = runner.job_uid("p1", "job_cred")
        assert uid is not None and uid in run_uids()
        assert (credential.stat().st_uid, stat.S_IMODE(credential.stat().st_mode)) == (uid, 0o600)
        recorder = RunRecorder()
        spec = {
            "packageUris": [f"gs://bkt/packages/{trainer_sdist.name}"],
            "pythonModule": "trainer.task",
            "args": ["--mode=credential"],
            "jobDir": "gs://bkt/out",
        }
        extra_env = {"GOOGLE_APPLICATION_CREDENTIALS": str(credential)}
        runner.start("p1", "job_cred", spec, extra_env=extra_env, **recorder.callbacks)
        outcome = recorder.wait()
    finally:
        runner.shutdown()

    assert outcome.state == "SUCCEEDED", outcome.error_message
    seen = json.loads((settings.storage_root / "bkt/out/credential-seen.json").read_text())
    assert seen["credential"] == "secret"
    assert (seen["USER"], seen["HOME"]) == (
        f"{identities.base.name}-{uid}",
        str(credential.parent / "work"),
    )
    # The job ended: its uid is free again and may no longer even enter the job directory.
    assert runner.job_uid("p1", "job_cred") is None
    assert identities.find("jobs/p1/job_cred") is None
    assert user_grant(credential.parent, uid) is None


def test_an_environment_is_sealed_after_its_build(
    isolated_home: tuple[Settings, UidAllocator], trainer_sdist: Path, tmp_path: Path
) -> None:
    settings, identities = isolated_home
    runner = TrainingRunner(
        settings.jobs_root,
        settings.envs_root,
        BucketStorage(settings.storage_root),
        identities=identities,
    )
    package = settings.storage_root / "bkt" / trainer_sdist.name  # where builders may read
    package.parent.mkdir(parents=True)
    shutil.copy(trainer_sdist, package)
    try:
        log_path = tmp_path / "service.log"
        environment = runner.environments.ensure([package], log_path=log_path)
    finally:
        runner.shutdown()
    group = identities.base.gid
    for path in [environment.root, *environment.root.rglob("*")]:
        info = path.lstat()
        assert (info.st_uid, info.st_gid) == (0, group), path
        if not stat.S_ISLNK(info.st_mode):
            assert not info.st_mode & (stat.S_IWGRP | stat.S_IRWXO), path
            attributes = os.listxattr(path, follow_symlinks=False)
            assert not [name for name in attributes if name.startswith("system.posix_acl")]
    assert identities.owners("builds/") == []  # the builder's uid was given back

    # An environment a server built before environments were sealed is sealed at start-up.
    legacy = settings.envs_root / "legacy"
    (legacy / "lib").mkdir(parents=True)
    module = legacy / "lib" / "module.py"
    module.write_text("x = 1\n")
    for path in (legacy, legacy / "lib", module):
        os.chown(path, runner_uid(), runner_gid())
        path.chmod(0o777 if path.is_dir() else 0o666)
    TrainingRunner(
        settings.jobs_root,
        settings.envs_root,
        BucketStorage(settings.storage_root),
        identities=identities,
    ).shutdown()
    info = module.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, group, 0o640)
    assert (legacy / ".cairn-sealed").exists()


def run_uids() -> range:
    first, last = DEFAULT_RUN_UID_RANGE
    return range(first, last + 1)


def run_job(server: Any, ml: Any, tmp_path: Path, code: str, job_dir: str) -> dict[str, Any]:
    sdist = build_trainer_sdist(tmp_path, code)
    job_id = unique("isolated")
    package = upload_file(
        server.url, sdist, "isolation", f"{job_id}/{sdist.name}", headers=server.headers()
    )
    ml.projects().jobs().create(
        parent=P,
        body={
            "jobId": job_id,
            "trainingInput": {
                "packageUris": [package],
                "pythonModule": "trainer.task",
                "region": "us-central1",
                "jobDir": job_dir,
            },
        },
    ).execute()
    return wait_job(ml, f"{P}/jobs/{job_id}")


def runner_uid() -> int:
    return pwd.getpwnam(DEFAULT_RUNNER_USER).pw_uid


def runner_gid() -> int:
    return pwd.getpwnam(DEFAULT_RUNNER_USER).pw_gid


def test_a_trainer_cannot_read_or_change_the_servers_files(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server()
    credential = server.home / "credentials" / "owner.json"
    if not credential.exists():  # the server writes one once authentication lands
        credential.parent.mkdir(mode=0o700, exist_ok=True)
        credential.write_text('{"secret": "only the server may read this"}')
        credential.chmod(0o600)
    code = PROBING_TRAINER.replace("HOME_PATH", repr(str(server.home)))
    job = run_job(server, server.client(), tmp_path, code, "gs://isolation/probe")

    assert job["state"] == "SUCCEEDED", job
    report = json.loads((server.home / "storage/isolation/probe/report.json").read_text())
    assert report.pop("uid") in run_uids()
    assert report == {
        "read the database": "PermissionError",
        "read the owner credential": "PermissionError",
        "write into the home": "PermissionError",
        "list the home": "PermissionError",
        "rewrite the run record": "PermissionError",
        "replace the logs": "PermissionError",
    }
    assert not (server.home / "planted.txt").exists()


def test_an_unprivileged_trainer_trains_a_model_that_deploys_and_predicts(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server()
    ml = server.client()
    job = run_job(server, ml, tmp_path, TRAINING_TRAINER, "gs://isolation/trained")
    assert job["state"] == "SUCCEEDED", job
    trainer_uid = int((server.home / "storage/isolation/trained/trainer-uid.txt").read_text())
    assert trainer_uid in run_uids()

    model = unique("isolated_model")
    ml.projects().models().create(parent=P, body={"name": model}).execute()
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"{P}/models/{model}",
            body={"name": "v1", "deploymentUri": "gs://isolation/trained/model"},
        )
        .execute()
    )
    assert "error" not in wait_operation(ml, operation["name"])
    result = (
        ml.projects()
        .predict(name=f"{P}/models/{model}", body={"instances": [[3.0, 3.0, 0.0, 0.0]]})
        .execute()
    )
    assert result == {"predictions": [1]}
    assert server.process is not None
    nodes = [
        child
        for child in psutil.Process(server.process.pid).children(recursive=True)
        if "cairn.serving.node" in child.cmdline()
    ]
    assert nodes, "no prediction node found among the server's children"
    (node_uid,) = {node.uids().effective for node in nodes}
    assert node_uid in run_uids() and node_uid not in (trainer_uid, runner_uid())
    assert {node.gids().effective for node in nodes} == {runner_gid()}
    # The version's own socket directory: its uid's alone.
    socket_dir = server.home / "serving" / "sockets" / str(node_uid)
    info = socket_dir.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (node_uid, 0o700)


# Two of these run at once, A and B (different packages, so different environments). Each
# says hello in the shared bucket, reads the other's hello, and B, while A still runs, tries
# to get at A's credential, run directory, log and environment. Both wait for the other to
# finish before they exit.
PAIR_TRAINER = """
import argparse, json, os, pathlib, sys, time
import trainer.task as me

HOME, PROJECT, ROLE, OTHER = HOME_PATH, PROJECT_NAME, ROLE_NAME, OTHER_NAME

def attempt(action):
    try:
        action()
    except PermissionError:
        return "PermissionError"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "allowed"

def wait_for(path):
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.1)
    return path

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir", required=True)
parser.add_argument("--other-job", required=True)
args, _ = parser.parse_known_args()
mine = pathlib.Path(args.job_dir)
theirs = mine.parent / OTHER
mine.mkdir(parents=True, exist_ok=True)
credential = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]
hello = {"role": ROLE, "uid": os.getuid(), "prefix": sys.prefix, "module": me.__file__}
(mine / "hello.json").write_text(json.dumps(hello))
other = json.loads(wait_for(theirs / "hello.json").read_text())
report = {
    "uid": os.getuid(),
    "read its own credential": attempt(lambda: pathlib.Path(credential).read_bytes()),
    "read the other's output": other["role"],
    "write into the other's output": attempt(lambda: (theirs / f"from-{ROLE}").write_text("x")),
}
if ROLE == "b":
    victim = pathlib.Path(HOME, "jobs", PROJECT, args.other_job)
    environment = pathlib.Path(other["prefix"])
    report.update({
        "read A's credential": attempt(
            lambda: (victim / "application_default_credentials.json").read_bytes()),
        "list A's run directory": attempt(lambda: os.listdir(victim)),
        "read A's log": attempt(lambda: (victim / "logs" / "master-replica-0.log").read_bytes()),
        "list A's working directory": attempt(lambda: os.listdir(victim / "work")),
        "list the project's jobs": attempt(lambda: os.listdir(victim.parent)),
        "write into A's environment": attempt(lambda: (environment / "planted.py").write_text("x")),
        "change A's trainer module": attempt(lambda: open(other["module"], "a").write("x = 1")),
        "write into its own environment": attempt(
            lambda: pathlib.Path(sys.prefix, "planted.py").write_text("x")),
    })
(mine / "report.json").write_text(json.dumps(report))
(mine / "done").write_text("")
wait_for(theirs / "done")
"""


def submit(server: Any, ml: Any, sdist: Path, job_id: str, job_dir: str, args: list[str]) -> str:
    package = upload_file(
        server.url, sdist, "isolation", f"{job_id}/{sdist.name}", headers=server.headers()
    )
    ml.projects().jobs().create(
        parent=P,
        body={
            "jobId": job_id,
            "trainingInput": {
                "packageUris": [package],
                "pythonModule": "trainer.task",
                "region": "us-central1",
                "jobDir": job_dir,
                "args": args,
            },
        },
    ).execute()
    return f"{P}/jobs/{job_id}"


def test_two_running_jobs_cannot_reach_each_other_but_share_the_buckets(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server()
    ml = server.client()
    jobs = {"a": unique("job_a"), "b": unique("job_b")}
    shared = f"gs://isolation/{unique('pair')}"
    names = {}
    for role, other in (("a", "b"), ("b", "a")):
        code = (
            PAIR_TRAINER.replace("HOME_PATH", repr(str(server.home)))
            .replace("PROJECT_NAME", repr(P.split("/")[1]))
            .replace("ROLE_NAME", repr(role))
            .replace("OTHER_NAME", repr(other))
        )
        sdist = build_trainer_sdist(tmp_path / role, code)
        names[role] = submit(
            server, ml, sdist, jobs[role], f"{shared}/{role}", ["--other-job", jobs[other]]
        )

    states = {role: wait_job(ml, name) for role, name in names.items()}
    for role, job in states.items():
        assert job["state"] == "SUCCEEDED", (role, job)
    outputs = server.home / "storage" / shared[len("gs://") :]
    reports = {role: json.loads((outputs / role / "report.json").read_text()) for role in "ab"}
    uids = {role: report.pop("uid") for role, report in reports.items()}
    assert uids["a"] != uids["b"]
    assert all(uid in run_uids() and uid != runner_uid() for uid in uids.values())
    assert reports["a"] == {
        "read its own credential": "allowed",
        "read the other's output": "b",
        "write into the other's output": "allowed",
    }
    assert reports["b"] == {
        "read its own credential": "allowed",
        "read the other's output": "a",
        "write into the other's output": "allowed",
        "read A's credential": "PermissionError",
        "list A's run directory": "PermissionError",
        "read A's log": "PermissionError",
        "list A's working directory": "PermissionError",
        "list the project's jobs": "PermissionError",
        "write into A's environment": "PermissionError",
        "change A's trainer module": "PermissionError",
        "write into its own environment": "PermissionError",
    }
    # Each run record keeps the uid its job ran as.
    for role, job_id in jobs.items():
        run = json.loads((server.home / "jobs" / "isolation" / job_id / "run.json").read_text())
        assert run["uid"] == uids[role]


SLEEPER = """
import os, pathlib, sys, time
out = pathlib.Path(sys.argv[sys.argv.index("--job-dir") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "pid").write_text(str(os.getpid()))
time.sleep(SECONDS)
(out / "uid").write_text(str(os.getuid()))
"""


def test_a_restarted_server_re_adopts_a_job_under_the_same_uid(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server()
    ml = server.client()
    out = f"gs://isolation/{unique('restart')}"
    sleeper = build_trainer_sdist(tmp_path / "sleeper", SLEEPER.replace("SECONDS", "25"))
    name = submit(server, ml, sleeper, unique("sleeper"), f"{out}/sleeper", [])
    pid_file = server.home / "storage" / out[len("gs://") :] / "sleeper" / "pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the sleeper never started"
        time.sleep(0.1)
    trainer = psutil.Process(int(pid_file.read_text()))
    uid = trainer.uids().real
    assert uid in run_uids()

    server.kill()
    server.restart()
    ml = server.client()  # connections to the old process are gone
    assert trainer.is_running() and trainer.uids().real == uid
    quick = build_trainer_sdist(tmp_path / "quick", SLEEPER.replace("SECONDS", "0"))
    other = wait_job(ml, submit(server, ml, quick, unique("quick"), f"{out}/quick", []))
    assert other["state"] == "SUCCEEDED", other
    bucket = server.home / "storage" / out[len("gs://") :]
    assert int((bucket / "quick" / "uid").read_text()) not in (uid, runner_uid())

    job = wait_job(ml, name, timeout=120)
    assert job["state"] == "SUCCEEDED", job
    assert int((bucket / "sleeper" / "uid").read_text()) == uid


def test_a_uid_range_that_holds_a_user_of_this_machine_is_refused(tmp_path: Path) -> None:
    users = [entry for entry in pwd.getpwall() if 1000 <= entry.pw_uid < 2**32 - 12]
    if not users:
        pytest.skip("no user of this machine has a uid a range may start at")
    user = users[0]
    settings = Settings(home=tmp_path / "home", run_uid_range=(user.pw_uid, user.pw_uid + 10))
    settings.home.mkdir()
    with pytest.raises(IsolationError, match=f"{user.pw_name} \\({user.pw_uid}\\)"):
        isolate_user_code(settings)


SHARED_JOB_DIR_TRAINER = """
import argparse, os
parser = argparse.ArgumentParser()
parser.add_argument("--job-dir")
job_dir = parser.parse_args().job_dir
# As TensorFlow makes its summary and export directories: mode 0755, file 0644.
os.makedirs(os.path.join(job_dir, "metric_tb"), mode=0o755, exist_ok=True)
with open(os.path.join(job_dir, "metric_tb", f"events.{os.getuid()}"), "w") as handle:
    handle.write("written")
"""


def test_a_job_writes_into_a_job_dir_an_earlier_job_made(start_server: Any, tmp_path: Path) -> None:
    """Google's samples give every job the same --job-dir; each job is a uid of its own."""
    server = start_server()
    ml = server.client()
    first = run_job(server, ml, tmp_path / "1", SHARED_JOB_DIR_TRAINER, "gs://isolation/shared")
    second = run_job(server, ml, tmp_path / "2", SHARED_JOB_DIR_TRAINER, "gs://isolation/shared")
    assert first["state"] == second["state"] == "SUCCEEDED", second
    written = sorted((server.home / "storage/isolation/shared/metric_tb").iterdir())
    assert len(written) == 2  # two uids, two files, in the directory the first one made
