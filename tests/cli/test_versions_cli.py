"""`cairn versions ...` against a loopback server with canned answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from tests.client.cli_runner import invoke
from tests.client.fake_ml import FakeMl, fake_ml_fixture  # noqa: F401  (fixture)
from tests.factories import sklearn_model_dir
from tests.remote import unique

P = "/v1/projects/proj"
V = f"{P}/models/m/versions"
OP = {"name": "projects/proj/operations/create_m_v1-1"}
DONE = {**OP, "done": True, "response": {"name": "projects/proj/models/m/versions/v1"}}


def test_create_from_a_local_dir_uploads_then_waits(fake_ml: FakeMl, tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"joblib bytes")
    fake_ml.answer("POST", "/upload/storage/v1/b/cairn-staging/o", {"bucket": "cairn-staging"})
    fake_ml.answer("POST", V, OP)
    fake_ml.answer("GET", f"{P}/operations/create_m_v1-1", DONE)
    fake_ml.answer("GET", f"{P}/models/m", {"name": f"{P[4:]}/models/m"})
    result = invoke(
        fake_ml.url, "versions", "create", "v1", "--model", "m", "--origin", str(tmp_path),
        "--framework", "scikit-learn", "--runtime-version", "2.11", "--python-version", "3.7",
        "--min-nodes", "1", "--max-nodes", "3", "--labels", "env=test",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model, free, upload, create, _ = fake_ml.requests
    assert [model.path, free.path] == [f"{P}/models/m", V + "/v1"]  # checked before upload
    assert upload.body == b"joblib bytes"
    assert upload.query["name"].startswith("m_v1/") and upload.query["name"].endswith(
        "/model.joblib"
    )
    folder = upload.query["name"].rsplit("/", 1)[0]
    assert create.json() == {
        "name": "v1",
        "deploymentUri": f"gs://cairn-staging/{folder}/",
        "framework": "SCIKIT_LEARN",
        "runtimeVersion": "2.11",
        "pythonVersion": "3.7",
        "autoScaling": {"minNodes": 1, "maxNodes": 3},
        "labels": {"env": "test"},
    }
    assert "Created version [v1] of model [m]." in result.stderr


def test_create_async_prints_the_operation(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", V, OP)
    fake_ml.answer("GET", f"{P}/models/m", {"name": f"{P[4:]}/models/m"})
    result = invoke(
        fake_ml.url, "versions", "create", "v1", "--model", "m", "--origin", "gs://b/model",
        "--async",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == OP
    assert fake_ml.requests[-1].json() == {"name": "v1", "deploymentUri": "gs://b/model"}


def test_config_keys_are_checked(fake_ml: FakeMl, tmp_path: Path) -> None:
    config = tmp_path / "v.yaml"
    config.write_text("deploymentUri: gs://b/m\nstate: READY\n")
    result = invoke(
        fake_ml.url, "versions", "create", "v1", "--model", "m", "--config", str(config)
    )
    assert result.exit_code == 1
    assert "state" in result.stderr and "Allowed:" in result.stderr
    assert fake_ml.requests == []


def test_list_describe_and_set_default(fake_ml: FakeMl) -> None:
    version = {"name": "projects/proj/models/m/versions/v1", "deploymentUri": "gs://b/m",
               "state": "READY"}  # fmt: skip
    fake_ml.answer("GET", V, {"versions": [version]})
    fake_ml.answer("GET", f"{V}/v1", version)
    fake_ml.answer("POST", f"{V}/v1:setDefault", {**version, "isDefault": True})
    assert invoke(fake_ml.url, "versions", "list", "--model", "m").stdout.splitlines() == [
        "NAME  DEPLOYMENT_URI  STATE",
        "v1    gs://b/m        READY",
    ]
    described = invoke(fake_ml.url, "versions", "describe", "v1", "--model", "m")
    assert yaml.safe_load(described.stdout) == version
    made_default = invoke(fake_ml.url, "versions", "set-default", "v1", "--model", "m")
    assert yaml.safe_load(made_default.stdout)["isDefault"] is True


def test_update_builds_gcloud_masks(fake_ml: FakeMl, tmp_path: Path) -> None:
    config = tmp_path / "u.yaml"
    config.write_text("autoScaling:\n  minNodes: 2\n  maxNodes: 4\n")
    fake_ml.answer("PATCH", f"{V}/v1", {**OP, "done": True})
    result = invoke(
        fake_ml.url, "versions", "update", "v1", "--model", "m", "--config", str(config),
        "--description", "d",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    patch = fake_ml.requests[0]
    assert patch.query == {"updateMask": "autoScaling.maxNodes,autoScaling.minNodes,description"}
    assert patch.json() == {"autoScaling": {"minNodes": 2, "maxNodes": 4}, "description": "d"}


def test_delete_with_quiet(fake_ml: FakeMl) -> None:
    fake_ml.answer("DELETE", f"{V}/v1", {**OP, "done": True})
    result = invoke(fake_ml.url, "versions", "delete", "v1", "--model", "m", "-q")
    assert result.exit_code == 0, result.output
    assert fake_ml.requests[0].method == "DELETE"


# -- against a real `cairn server` ---------------------------------------------------------


@pytest.mark.slow
def test_version_lifecycle_on_a_real_server(cairn_server: Any, tmp_path: Path) -> None:
    def cairn(*args: str) -> Result:
        return invoke(cairn_server.url, *args, project="cli_versions")

    model = unique("cli_vmodel")
    artefact = sklearn_model_dir(tmp_path / "export")
    assert cairn("models", "create", model).exit_code == 0
    created = cairn(
        "versions", "create", "v1", "--model", model, "--origin", str(artefact),
        "--framework", "scikit-learn", "--runtime-version", "2.11", "--python-version", "3.7",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    described = yaml.safe_load(cairn("versions", "describe", "v1", "--model", model).stdout)
    assert described["state"] == "READY"
    assert described["deploymentUri"].startswith(f"gs://cairn-staging/{model}_v1/")
    assert described["isDefault"] is True

    queued = cairn(
        "versions", "create", "v2", "--model", model, "--origin", described["deploymentUri"],
        "--framework", "scikit-learn", "--async",
    )  # fmt: skip
    assert queued.exit_code == 0, queued.output
    operation = yaml.safe_load(queued.stdout)["name"]
    waited = cairn("operations", "wait", operation, "--polling-interval", "0.2")
    assert waited.exit_code == 0, waited.output

    listed = cairn("versions", "list", "--model", model).stdout.splitlines()
    assert listed[0].split() == ["NAME", "DEPLOYMENT_URI", "STATE"]
    assert sorted(line.split()[0] for line in listed[1:]) == ["v1", "v2"]

    made_default = cairn("versions", "set-default", "v2", "--model", model)
    assert yaml.safe_load(made_default.stdout)["isDefault"] is True
    assert cairn("versions", "delete", "v1", "--model", model, "-q").exit_code == 0
    default_delete = cairn("models", "delete", model, "-q")
    assert default_delete.exit_code == 1, "a model with versions cannot be deleted"
    assert cairn("versions", "delete", "v2", "--model", model, "-q").exit_code == 0
    assert cairn("models", "delete", model, "-q").exit_code == 0
