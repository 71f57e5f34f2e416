"""Google's client code, unchanged, reaching Cairn: in a job's replica and through the opt-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.factories import build_trainer_sdist, sklearn_model_dir
from tests.remote import unique, upload_dir, upload_file, wait_job, wait_operation

from cairn.executors.google_clients import SITE_DIR, google_client_env

# Written as an AI Platform trainer would be: Application Default Credentials, no endpoint.
TRAINER = """
import json, os, subprocess, sys

import gcsfs
import googleapiclient.discovery
from google.cloud import storage

def arg(name):
    return sys.argv[sys.argv.index(name) + 1]

bucket, other, model = arg("--bucket"), arg("--other-bucket"), arg("--model")
with open("model.txt", "w") as handle:
    handle.write("weights 1 2 3")

client = storage.Client()
client.bucket(bucket).blob("trained/model.txt").upload_from_filename("model.txt")
subprocess.run(["gsutil", "-m", "cp", "model.txt", f"gs://{bucket}/trained/copy.txt"], check=True)
os.makedirs("export/assets", exist_ok=True)
open("export/assets/vocab.txt", "w").write("a b c")
subprocess.run(["gsutil", "cp", "-r", "export", f"gs://{bucket}/trained/"], check=True)
listed = subprocess.run(
    ["gsutil", "ls", "-r", f"gs://{bucket}/trained"], capture_output=True, text=True, check=True
).stdout.split()
read_back = client.bucket(bucket).blob("trained/copy.txt").download_as_text()
cat = subprocess.run(
    ["gsutil", "cat", f"gs://{bucket}/trained/model.txt"], capture_output=True, check=True
).stdout.decode()
subprocess.run(["gsutil", "cp", f"gs://{bucket}/trained/model.txt", "fetched.txt"], check=True)
fetched = open("fetched.txt").read()
fs = gcsfs.GCSFileSystem()
with fs.open(f"{bucket}/trained/copy.txt") as handle:
    through_gcsfs = handle.read().decode()
foreign = subprocess.run(["gsutil", "cp", "model.txt", f"gs://{other}/stolen.txt"],
                         capture_output=True, text=True)
subprocess.run(["gsutil", "rm", f"gs://{bucket}/trained/copy.txt"], check=True)

service = googleapiclient.discovery.build("ml", "v1")
project = os.environ["GOOGLE_CLOUD_PROJECT"]
prediction = service.projects().predict(
    name=f"projects/{project}/models/{model}", body={"instances": [[1.0, 1.0, 0.0, 0.0]]}
).execute()
print("RESULT", json.dumps({
    "listed": listed, "read_back": read_back, "cat": cat, "fetched": fetched,
    "gcsfs": through_gcsfs, "foreign_status": foreign.returncode, "foreign": foreign.stderr,
    "prediction": prediction,
}), flush=True)
"""

# Google's predict.py sample, as its users run it.
PREDICT_PY = """
import json, sys
import googleapiclient.discovery

def predict_json(project, model, instances, version=None):
    service = googleapiclient.discovery.build('ml', 'v1')
    name = 'projects/{}/models/{}'.format(project, model)
    if version is not None:
        name += '/versions/{}'.format(version)
    response = service.projects().predict(name=name, body={'instances': instances}).execute()
    if 'error' in response:
        raise RuntimeError(response['error'])
    return response['predictions']

print(json.dumps(predict_json(sys.argv[1], sys.argv[2], [[1.0, 1.0, 0.0, 0.0]], sys.argv[3])))
"""

GCS_CLIENTS_PY = """
import json, sys
import gcsfs
from google.cloud import storage

bucket = sys.argv[1]
client = storage.Client()
client.bucket(bucket).blob("opt-in/hello.txt").upload_from_string("hello")
fs = gcsfs.GCSFileSystem()
print(json.dumps({"ls": fs.ls(f"{bucket}/opt-in"), "read": fs.cat(f"{bucket}/opt-in/hello.txt").decode()}))
"""


def make_bucket(server: Any, project: str) -> str:
    name = unique("bkt").replace("_", "-").lower()
    response = httpx.post(
        f"{server.url}/storage/v1/b",
        params={"project": project},
        json={"name": name},
        headers=server.headers(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return name


def deploy_sklearn(server: Any, project: str, tmp_path: Path) -> str:
    ml = server.client()
    model = unique("gmodel")
    uri = upload_dir(
        server.url, sklearn_model_dir(tmp_path / "model"), "gclient-models", model, server.headers()
    )
    ml.projects().models().create(parent=f"projects/{project}", body={"name": model}).execute()
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"projects/{project}/models/{model}",
            body={"name": "v1", "deploymentUri": uri, "framework": "SCIKIT_LEARN"},
        )
        .execute()
    )
    done = wait_operation(ml, operation["name"])
    assert "error" not in done, done
    return model


def trainer_result(server: Any, project: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/cairn/v1/projects/{project}/jobs/{job_id}/logs", headers=server.headers()
    )
    for entry in response.json()["entries"]:
        if entry.get("text", "").startswith("RESULT "):
            return dict(json.loads(entry["text"][len("RESULT ") :]))
    raise AssertionError(f"the trainer printed no result: {response.text}")


@pytest.mark.slow
def test_a_trainer_copies_with_google_clients_and_gsutil_and_predicts(
    cairn_server: Any, tmp_path: Path
) -> None:
    project = unique("gclients").replace("_", "-")
    bucket = make_bucket(cairn_server, project)
    other = make_bucket(cairn_server, unique("otherproj").replace("_", "-"))
    model = deploy_sklearn(cairn_server, project, tmp_path)
    sdist = build_trainer_sdist(tmp_path, TRAINER)
    package = upload_file(
        cairn_server.url, sdist, "staging", f"{project}/{sdist.name}", cairn_server.headers()
    )
    ml = cairn_server.client()
    job_id = unique("gcs_job")
    body = {
        "jobId": job_id,
        "trainingInput": {
            "scaleTier": "BASIC",
            "packageUris": [package],
            "pythonModule": "trainer.task",
            "region": "us-central1",
            "args": ["--bucket", bucket, "--other-bucket", other, "--model", model],
        },
    }
    ml.projects().jobs().create(parent=f"projects/{project}", body=body).execute()
    job = wait_job(ml, f"projects/{project}/jobs/{job_id}", timeout=300)
    assert job["state"] == "SUCCEEDED", job
    result = trainer_result(cairn_server, project, job_id)
    assert result["read_back"] == result["cat"] == result["fetched"] == "weights 1 2 3"
    assert result["gcsfs"] == "weights 1 2 3"
    assert f"gs://{bucket}/trained/export/assets/vocab.txt" in result["listed"]
    assert f"gs://{bucket}/trained/model.txt" in result["listed"]
    # The job's own identity (the project's service agent) reaches no other project's bucket.
    assert result["foreign_status"] != 0 and "403" in result["foreign"], result["foreign"]
    assert result["prediction"]["predictions"] == [1]
    storage_root = cairn_server.home / "storage"
    assert (storage_root / bucket / "trained" / "model.txt").read_text() == "weights 1 2 3"
    assert not (storage_root / bucket / "trained" / "copy.txt").exists()
    assert not (storage_root / other / "stolen.txt").exists()


def opt_in_environment(tmp_path: Path) -> Path:
    """A fresh virtual environment that sees the test's packages, with the hook installed
    by the documented one-step command."""
    root = tmp_path / "user-env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    found = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    site_packages = Path(found.stdout.strip())
    (site_packages / "test_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cairn.executors.google_clients",
            "install",
            "--python",
            str(python),
        ],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    assert (site_packages / "cairn_google_hook.pth").exists()
    return python


@pytest.mark.slow
def test_predict_py_unchanged_with_the_opt_in(cairn_server: Any, tmp_path: Path) -> None:
    project = unique("predictpy").replace("_", "-")
    model = deploy_sklearn(cairn_server, project, tmp_path)
    bucket = make_bucket(cairn_server, project)
    python = opt_in_environment(tmp_path)
    (tmp_path / "predict.py").write_text(PREDICT_PY)
    (tmp_path / "gcs_clients.py").write_text(GCS_CLIENTS_PY)
    env = {
        **os.environ,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_ML": cairn_server.url + "/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": cairn_server.url + "/storage/v1/",
        "GOOGLE_APPLICATION_CREDENTIALS": str(cairn_server.home / "credentials" / "owner.json"),
        "GOOGLE_CLOUD_PROJECT": project,
    }
    env.pop("PYTHONPATH", None)
    predicted = subprocess.run(
        [str(python), "predict.py", project, model, "v1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout) == [1]
    clients = subprocess.run(
        [str(python), "gcs_clients.py", bucket],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clients.returncode == 0, clients.stderr
    assert json.loads(clients.stdout) == {"ls": [f"{bucket}/opt-in/hello.txt"], "read": "hello"}
    # Without the variables the hook changes nothing: googleapiclient goes to Google.
    plain = {k: v for k, v in env.items() if not k.startswith("CLOUDSDK_API_ENDPOINT")}
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import googleapiclient.discovery as d; from google.auth.credentials import "
            "AnonymousCredentials as A; print(d.build('ml','v1',credentials=A())._baseUrl)",
        ],
        env=plain,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.strip() == "https://ml.googleapis.com/", probe.stderr


def test_explicit_endpoints_other_than_googles_are_left_alone(tmp_path: Path) -> None:
    env = google_client_env("http://127.0.0.1:9", dict(os.environ), project="p")
    code = (
        "import googleapiclient.discovery as d\n"
        "from google.auth.credentials import AnonymousCredentials as A\n"
        "print(d.build('ml', 'v1', credentials=A())._baseUrl)\n"
        "print(d.build('ml', 'v1', credentials=A(),"
        " client_options={'api_endpoint': 'http://elsewhere:1/'})._baseUrl)\n"
        "print(d.build('iam', 'v1', credentials=A())._baseUrl)\n"
        # Google's prediction samples name Google's regional endpoint: still Cairn's.
        "from google.api_core.client_options import ClientOptions\n"
        "print(d.build('ml', 'v1', credentials=A(), client_options=ClientOptions("
        "api_endpoint='https://us-central1-ml.googleapis.com'))._baseUrl)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "http://127.0.0.1:9/",
        "http://elsewhere:1/",
        "https://iam.googleapis.com/",
        "http://127.0.0.1:9/",
    ]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(SITE_DIR)


def test_an_environments_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text("import os\nos.environ['OWN_SITECUSTOMIZE'] = 'ran'\n")
    env = google_client_env("http://127.0.0.1:9", dict(os.environ), project="p")
    env["PYTHONPATH"] += os.pathsep + str(own)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; print(os.environ.get('OWN_SITECUSTOMIZE'),"
            " 'cairn_google_hook' in sys.modules)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["ran", "True"], result.stderr


def test_gsutil_says_what_is_missing(tmp_path: Path) -> None:
    from cairn.executors.google_clients import BIN_DIR

    env = {k: v for k, v in os.environ.items() if k not in ("CAIRN_API",)}
    env.pop("CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE", None)
    missing = subprocess.run(
        [str(BIN_DIR / "gsutil"), "ls", "gs://some-bucket"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE" in missing.stderr
    unknown = subprocess.run([str(BIN_DIR / "gsutil"), "rsync"], capture_output=True, text=True)
    assert unknown.returncode == 1 and "Invalid command" in unknown.stderr
    usage = subprocess.run([str(BIN_DIR / "gsutil"), "help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "cp [-r]" in usage.stdout


ROUTINE = """
import os, shutil


class Endpoints:
    @classmethod
    def from_path(cls, model_dir):
        return cls()

    def predict(self, instances, **kwargs):
        import googleapiclient.discovery
        from google.auth.credentials import AnonymousCredentials

        service = googleapiclient.discovery.build("ml", "v1", credentials=AnonymousCredentials())
        return [{"ml": service._baseUrl, "gsutil": shutil.which("gsutil"),
                 "storage": os.environ.get("API_ENDPOINT_OVERRIDE")} for _ in instances]
"""


@pytest.mark.slow
def test_a_prediction_routines_google_clients_reach_cairn(
    cairn_server: Any, tmp_path: Path
) -> None:
    from cairn.executors.google_clients import BIN_DIR

    project = unique("routinegc").replace("_", "-")
    ml = cairn_server.client()
    model = unique("endpoints")
    ml.projects().models().create(parent=f"projects/{project}", body={"name": model}).execute()
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "unused.txt").write_text("x")
    package_name = f"endpoints_{model[-6:]}"
    sdist = build_trainer_sdist(tmp_path / model, ROUTINE, name=package_name)
    headers = cairn_server.headers()
    deployment = upload_dir(cairn_server.url, model_dir, "gclient-models", f"{model}/v1", headers)
    package = upload_file(
        cairn_server.url, sdist, "gclient-packages", f"{model}/{sdist.name}", headers
    )
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"projects/{project}/models/{model}",
            body={
                "name": "v1",
                "deploymentUri": deployment,
                "predictionClass": f"{package_name}.task.Endpoints",
                "packageUris": [package],
            },
        )
        .execute()
    )
    done = wait_operation(ml, operation["name"], timeout=600)
    assert "error" not in done, done
    answer = (
        ml.projects()
        .predict(name=f"projects/{project}/models/{model}", body={"instances": [1]})
        .execute()
    )
    assert answer["predictions"] == [
        {
            "ml": cairn_server.url + "/",
            "gsutil": str(BIN_DIR / "gsutil"),
            "storage": cairn_server.url,
        }
    ]


def test_gsutil_commands_against_the_server(cairn_server: Any, tmp_path: Path) -> None:
    from cairn.executors.google_clients import BIN_DIR

    project = unique("gsutil").replace("_", "-")
    env = google_client_env(cairn_server.url, dict(os.environ), project=project)
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(cairn_server.home / "credentials" / "owner.json")

    def gsutil(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN_DIR / "gsutil"), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    bucket = unique("gsu").replace("_", "-").lower()
    assert gsutil("mb", f"gs://{bucket}").returncode == 0
    assert f"gs://{bucket}/" in gsutil("ls").stdout.split()
    (tmp_path / "run" / "eval").mkdir(parents=True)
    (tmp_path / "run" / "a.csv").write_text("1")
    (tmp_path / "run" / "b.txt").write_text("22")
    (tmp_path / "run" / "eval" / "c.csv").write_text("333")
    copied = gsutil("-m", "cp", "-r", "run", f"gs://{bucket}/out")
    assert copied.returncode == 0, copied.stderr
    assert gsutil("ls", f"gs://{bucket}/out").stdout.split() == [
        f"gs://{bucket}/out/eval/",
        f"gs://{bucket}/out/a.csv",
        f"gs://{bucket}/out/b.txt",
    ]
    matched = gsutil("cp", f"gs://{bucket}/out/*.csv", "csvs/")
    assert matched.returncode == 0, matched.stderr
    assert sorted(p.name for p in (tmp_path / "csvs").iterdir()) == ["a.csv"]
    assert gsutil("cp", "-r", f"gs://{bucket}/out", "back").returncode == 0
    assert (tmp_path / "back" / "eval" / "c.csv").read_text() == "333"
    listed = gsutil("ls", "-l", f"gs://{bucket}/out/b.txt").stdout
    assert listed.split()[0] == "2" and listed.split()[-1] == f"gs://{bucket}/out/b.txt"
    assert "size: 3" in gsutil("stat", f"gs://{bucket}/out/eval/c.csv").stdout
    missing = gsutil("cat", f"gs://{bucket}/out/nope")
    assert missing.returncode == 1 and "404 No such object" in missing.stderr
    assert gsutil("rm", "-r", f"gs://{bucket}/out").returncode == 0
    assert not list((cairn_server.home / "storage" / bucket).iterdir())
    escape = gsutil("cp", "run/a.csv", f"gs://{bucket}/../../escaped.csv")
    assert escape.returncode == 1 and "400" in escape.stderr
    assert not (cairn_server.home / "escaped.csv").exists()
