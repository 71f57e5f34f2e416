"""`cairn models ...` against a loopback server with canned answers."""

from __future__ import annotations

from typing import Any

import yaml
from click.testing import Result
from tests.client.cli_runner import invoke
from tests.client.fake_ml import FakeMl, fake_ml_fixture  # noqa: F401  (fixture)
from tests.remote import unique

P = "/v1/projects/proj"
DONE = {"name": "projects/proj/operations/op1", "done": True}


def test_create_sends_the_short_name_and_flags(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", f"{P}/models", {"name": "projects/proj/models/census"})
    result = invoke(
        fake_ml.url, "models", "create", "census", "--regions", "us-central1",
        "--description", "income", "--enable-logging", "--labels", "team=ml",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_ml.requests[0].json() == {
        "name": "census",
        "regions": ["us-central1"],
        "description": "income",
        "onlinePredictionLogging": True,
        "labels": {"team": "ml"},
    }
    assert result.stderr == "Created model [projects/proj/models/census].\n"


def test_already_exists_is_reported_without_traceback(fake_ml: FakeMl) -> None:
    message = "Field: model.name Error: A model with the same name already exists."
    error = {"error": {"code": 409, "message": message, "status": "ALREADY_EXISTS"}}
    fake_ml.answer("POST", f"{P}/models", error, status=409)
    result = invoke(fake_ml.url, "models", "create", "census")
    assert result.exit_code == 1
    assert result.stderr == f"ERROR: (cairn.models.create) {message}\n"


def test_list_and_describe(fake_ml: FakeMl) -> None:
    model = {
        "name": "projects/proj/models/census",
        "defaultVersion": {"name": "projects/proj/models/census/versions/v1"},
    }
    fake_ml.answer("GET", f"{P}/models", {"models": [model, {"name": "projects/proj/models/b"}]})
    fake_ml.answer("GET", f"{P}/models/census", model)
    assert invoke(fake_ml.url, "models", "list").stdout.splitlines() == [
        "NAME    DEFAULT_VERSION_NAME",
        "census  v1",
        "b",
    ]
    assert yaml.safe_load(invoke(fake_ml.url, "models", "describe", "census").stdout) == model


def test_update_patches_with_a_sorted_mask_and_waits(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/models/m", {"name": "projects/proj/models/m", "labels": {"a": "1"}})
    fake_ml.answer("PATCH", f"{P}/models/m", {"name": "projects/proj/operations/op1"})
    fake_ml.answer("GET", f"{P}/operations/op1", DONE)
    result = invoke(
        fake_ml.url, "models", "update", "m", "--description", "new", "--clear-labels",
        "--update-labels", "b=2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    patch = next(r for r in fake_ml.requests if r.method == "PATCH")
    assert patch.query == {"updateMask": "description,labels"}
    assert patch.json() == {"description": "new", "labels": {"b": "2"}}
    assert fake_ml.requests[-1].path == f"{P}/operations/op1"


def test_delete_asks_first_and_no_means_nothing_is_deleted(fake_ml: FakeMl) -> None:
    refused = invoke(fake_ml.url, "models", "delete", "m", input="no\n")
    assert refused.exit_code == 1
    assert "This will delete model [m]..." in refused.stderr
    assert fake_ml.requests == []
    fake_ml.answer("DELETE", f"{P}/models/m", {"name": "projects/proj/operations/op1"})
    fake_ml.answer("GET", f"{P}/operations/op1", DONE)
    deleted = invoke(fake_ml.url, "models", "delete", "m", "-q")
    assert deleted.exit_code == 0, deleted.output
    assert "Deleted model [m]." in deleted.stderr


def test_failed_delete_operation_exits_1(fake_ml: FakeMl) -> None:
    fake_ml.answer("DELETE", f"{P}/models/m", {"name": "projects/proj/operations/op2"})
    failed = {"name": "x", "done": True, "error": {"code": 9, "message": "has versions"}}
    fake_ml.answer("GET", f"{P}/operations/op2", failed)
    result = invoke(fake_ml.url, "models", "delete", "m", "--quiet")
    assert result.exit_code == 1
    assert result.stderr.endswith("ERROR: (cairn.models.delete) has versions\n")


# -- against a real `cairn server` ---------------------------------------------------------


def test_model_lifecycle_on_a_real_server(cairn_server: Any) -> None:
    def cairn(*args: str) -> Result:
        return invoke(cairn_server.url, *args, project="cli_models")

    model = unique("cli_model")
    created = cairn("models", "create", model, "--regions", "us-central1", "--labels", "a=1")
    assert created.exit_code == 0, created.output
    assert created.stderr == f"Created model [projects/cli_models/models/{model}].\n"

    duplicate = cairn("models", "create", model)
    assert duplicate.exit_code == 1
    assert duplicate.stderr.startswith("ERROR: (cairn.models.create) ")
    assert "already exists" in duplicate.stderr

    assert model in [line.split()[0] for line in cairn("models", "list").stdout.splitlines()]

    updated = cairn(
        "models", "update", model, "--description", "census income", "--update-labels", "b=2"
    )
    assert updated.exit_code == 0, updated.output
    described = yaml.safe_load(cairn("models", "describe", model).stdout)
    assert described["name"] == f"projects/cli_models/models/{model}"
    assert described["description"] == "census income"
    assert described["labels"] == {"a": "1", "b": "2"}

    deleted = cairn("models", "delete", model, "--quiet")
    assert deleted.exit_code == 0, deleted.output
    gone = cairn("models", "describe", model)
    assert gone.exit_code == 1
    assert gone.stderr.startswith("ERROR: (cairn.models.describe) ")
