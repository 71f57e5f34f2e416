"""`cairn operations ...` against a loopback server with canned answers."""

from __future__ import annotations

import json
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
RUNNING = {
    "name": "projects/proj/operations/create_m_v1-1",
    "metadata": {"operationType": "CREATE_VERSION"},
}
DONE = {**RUNNING, "done": True, "response": {"name": "projects/proj/models/m/versions/v1"}}


def test_list_shows_name_type_and_done(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/operations", {"operations": [DONE]})
    assert invoke(fake_ml.url, "operations", "list").stdout.splitlines() == [
        "NAME           OPERATION_TYPE  DONE",
        "create_m_v1-1  CREATE_VERSION  True",
    ]


def test_describe_accepts_an_id_or_a_full_name(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/operations/create_m_v1-1", RUNNING)
    by_id = invoke(fake_ml.url, "operations", "describe", "create_m_v1-1")
    by_name = invoke(fake_ml.url, "operations", "describe", RUNNING["name"], "--format", "json")
    assert yaml.safe_load(by_id.stdout) == RUNNING
    assert json.loads(by_name.stdout) == RUNNING


def test_wait_polls_then_prints_the_response(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/operations/create_m_v1-1", RUNNING)
    fake_ml.answer("GET", f"{P}/operations/create_m_v1-1", DONE)
    result = invoke(
        fake_ml.url, "operations", "wait", "create_m_v1-1", "--polling-interval", "0.05"
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == DONE["response"]
    assert len(fake_ml.requests) == 2


def test_cancel(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", f"{P}/operations/op9:cancel", {})
    result = invoke(fake_ml.url, "operations", "cancel", "op9")
    assert result.exit_code == 0
    assert result.stderr == "Cancelled [projects/proj/operations/op9].\n"


# -- against a real `cairn server` ---------------------------------------------------------


@pytest.mark.slow
def test_operations_of_a_version_create_on_a_real_server(cairn_server: Any, tmp_path: Path) -> None:
    def cairn(*args: str) -> Result:
        return invoke(cairn_server.url, *args, project="cli_operations")

    model = unique("cli_omodel")
    assert cairn("models", "create", model).exit_code == 0
    queued = cairn(
        "versions", "create", "v1", "--model", model, "--async", "--framework", "scikit-learn",
        "--origin", str(sklearn_model_dir(tmp_path / "export")),
    )  # fmt: skip
    assert queued.exit_code == 0, queued.output
    name = yaml.safe_load(queued.stdout)["name"]
    operation_id = name.rsplit("/", 1)[-1]

    listed = [line.split() for line in cairn("operations", "list").stdout.splitlines()]
    assert listed[0] == ["NAME", "OPERATION_TYPE", "DONE"]
    assert [operation_id, "CREATE_VERSION"] in [row[:2] for row in listed[1:]]

    assert cairn("operations", "wait", operation_id, "--polling-interval", "0.2").exit_code == 0
    described = yaml.safe_load(cairn("operations", "describe", operation_id).stdout)
    assert described["name"] == name
    assert described["done"] is True
    assert described["metadata"]["operationType"] == "CREATE_VERSION"
    missing = cairn("operations", "describe", "no_such_operation")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("ERROR: (cairn.operations.describe) ")
