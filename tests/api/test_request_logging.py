"""Request/response sampling, access logs and console logs of online prediction, on a real
server: what a version's requestLoggingConfig and a model's logging flags keep, and how it
is read back (REST, CLI, Parquet)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from googleapiclient.errors import HttpError
from tests.client.cli_runner import invoke
from tests.factories import sklearn_model_dir
from tests.remote import unique, upload_dir, wait_operation

PROJECT_ID = "reqlog_project"
PROJECT = f"projects/{PROJECT_ID}"
ROW_POSITIVE = [3.0, 3.0, 0.0, 0.0]

pytestmark = pytest.mark.slow


def named_features_model_dir(directory: Path) -> Path:
    """A model fitted on a DataFrame: predicting on plain rows makes scikit-learn warn on
    the node's stderr ("X does not have valid feature names"), real console output."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    labels = (features["a"] + features["b"] > 0).astype(int)
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(features, labels), directory / "model.joblib")
    return directory


def deploy(ml: Any, server: Any, model: str, local: Path, **fields: Any) -> None:
    uri = upload_dir(server.url, local, "reqlog-bucket", f"{model}/v1", headers=server.headers())
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"{PROJECT}/models/{model}", body={"name": "v1", "deploymentUri": uri, **fields}
        )
        .execute()
    )
    done = wait_operation(ml, operation["name"])
    assert "error" not in done, done


def set_logging(ml: Any, model: str, config: dict[str, Any]) -> dict[str, Any]:
    operation = (
        ml.projects()
        .models()
        .versions()
        .patch(
            name=f"{PROJECT}/models/{model}/versions/v1",
            body={"requestLoggingConfig": config},
            updateMask="requestLoggingConfig",
        )
        .execute()
    )
    return wait_operation(ml, operation["name"])


def predict(http: httpx.Client, server: Any, name: str, rows: list[Any]) -> httpx.Response:
    return http.post(
        f"{server.url}/v1/{name}:predict",
        content=json.dumps({"instances": rows}).encode(),
        headers={**server.headers(), "Content-Type": "application/json"},
    )


def read(server: Any, model: str, kind: str = "requestLogs", **params: Any) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/cairn/v1/{PROJECT}/models/{model}/{kind}",
        params=params,
        headers=server.headers(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def read_all(
    server: Any, model: str, kind: str = "requestLogs", **params: Any
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        page = read(
            server, model, kind, pageSize=7, **params, **({"pageToken": token} if token else {})
        )
        rows.extend(page.get("entries", []))
        token = page.get("nextPageToken")
        if not token:
            return rows


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.fixture(scope="module")
def logged_model(ml: Any, cairn_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model with access and console logging and one scikit-learn version."""
    model = unique("logged")
    ml.projects().models().create(
        parent=PROJECT,
        body={
            "name": model,
            "onlinePredictionLogging": True,
            "onlinePredictionConsoleLogging": True,
        },
    ).execute()
    deploy(ml, cairn_server, model, named_features_model_dir(tmp_path_factory.mktemp("sk")))
    return model


def test_sampling_at_one_keeps_every_request_and_at_zero_none(
    ml: Any, cairn_server: Any, logged_model: str
) -> None:
    model = logged_model
    done = set_logging(
        ml, model, {"samplingPercentage": 1, "bigqueryTableName": f"{PROJECT_ID}.logs.all"}
    )
    assert done["response"]["requestLoggingConfig"] == {
        "samplingPercentage": 1,
        "bigqueryTableName": f"{PROJECT_ID}.logs.all",
    }
    sent: list[tuple[str, str]] = []
    with httpx.Client(timeout=60) as http:
        for index in range(20):
            # By version and by model (the default version): both are the same version's.
            name = f"{PROJECT}/models/{model}" + ("/versions/v1" if index % 2 else "")
            rows = [[float(index), 3.0, 0.0, 0.0]]
            response = predict(http, cairn_server, name, rows)
            assert response.status_code == 200, response.text
            sent.append((json.dumps({"instances": rows}), response.text))
    logged = read_all(cairn_server, model, version="v1", order="asc")
    assert len(logged) == 20
    assert [(row["raw_data"], row["raw_prediction"]) for row in logged] == sent
    assert {(row["model"], row["model_version"], row["table"]) for row in logged} == {
        (model, "v1", f"{PROJECT_ID}.logs.all")
    }
    assert all(row["groundtruth"] is None for row in logged)
    times = [datetime.fromisoformat(row["time"].replace("Z", "+00:00")) for row in logged]
    assert times == sorted(times)

    set_logging(ml, model, {"samplingPercentage": 0, "bigqueryTableName": f"{PROJECT_ID}.logs.all"})
    with httpx.Client(timeout=60) as http:
        for _ in range(30):
            assert (
                predict(http, cairn_server, f"{PROJECT}/models/{model}", [ROW_POSITIVE]).status_code
                == 200
            )
    assert len(read_all(cairn_server, model, table=f"{PROJECT_ID}.logs.all")) == 20

    # Time filters: the second half by `since`, the first half by `until`.
    middle = logged[10]["time"]
    assert len(read_all(cairn_server, model, since=middle)) == 10
    assert len(read_all(cairn_server, model, until=middle)) == 10
    newest = read(cairn_server, model, pageSize=1)
    assert newest["entries"][0]["raw_data"] == sent[-1][0]


def test_sampling_at_one_half_keeps_about_half(
    ml: Any, cairn_server: Any, logged_model: str
) -> None:
    table = f"{PROJECT_ID}.logs.half"
    set_logging(ml, logged_model, {"samplingPercentage": 0.5, "bigqueryTableName": table})
    with httpx.Client(timeout=60) as http:
        for _ in range(400):
            response = predict(
                http, cairn_server, f"{PROJECT}/models/{logged_model}", [ROW_POSITIVE]
            )
            assert response.status_code == 200
    kept = len(read_all(cairn_server, logged_model, table=table))
    # Binomial(400, 0.5): 200 ± 10; outside 140..260 is a 6-sigma event.
    assert 140 <= kept <= 260, kept
    set_logging(ml, logged_model, {})


def test_access_log_has_a_row_per_request_with_status_latency_and_sizes(
    ml: Any, cairn_server: Any, logged_model: str
) -> None:
    before = len(read_all(cairn_server, logged_model, "accessLogs"))
    with httpx.Client(timeout=60) as http:
        good = predict(
            http, cairn_server, f"{PROJECT}/models/{logged_model}/versions/v1", [ROW_POSITIVE]
        )
        bad = predict(
            http, cairn_server, f"{PROJECT}/models/{logged_model}/versions/v1", [[1.0, 2.0]]
        )
    assert good.status_code == 200 and bad.status_code == 400
    rows = read(cairn_server, logged_model, "accessLogs", pageSize=2)["entries"]
    assert [row["status"] for row in rows] == [400, 200]  # newest first
    good_row = rows[1]
    assert good_row["request_bytes"] == len(json.dumps({"instances": [ROW_POSITIVE]}))
    assert good_row["response_bytes"] == len(good.content)
    assert 0 < good_row["latency_seconds"] < 30
    assert good_row["model_version"] == "v1"
    assert len(read_all(cairn_server, logged_model, "accessLogs")) == before + 2


def test_a_model_without_logging_keeps_no_access_log(
    ml: Any, cairn_server: Any, tmp_path: Path
) -> None:
    model = unique("quiet")
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    deploy(ml, cairn_server, model, sklearn_model_dir(tmp_path / "sk"))
    with httpx.Client(timeout=60) as http:
        assert (
            predict(http, cairn_server, f"{PROJECT}/models/{model}", [ROW_POSITIVE]).status_code
            == 200
        )
    assert read(cairn_server, model, "accessLogs") == {}
    assert read(cairn_server, model) == {}
    console = httpx.get(
        f"{cairn_server.url}/cairn/v1/{PROJECT}/models/{model}/versions/v1/consoleLogs",
        headers=cairn_server.headers(),
    )
    assert console.status_code == 400, console.text
    assert error_of(console)["status"] == "FAILED_PRECONDITION"
    assert "onlinePredictionConsoleLogging" in error_of(console)["message"]


def test_console_logs_of_the_nodes_are_readable(cairn_server: Any, logged_model: str) -> None:
    response = httpx.get(
        f"{cairn_server.url}/cairn/v1/{PROJECT}/models/{logged_model}/versions/v1/consoleLogs",
        params={"lines": 50},
        headers=cairn_server.headers(),
    )
    assert response.status_code == 200, response.text
    entries = response.json().get("entries", [])
    assert {entry["node"] for entry in entries} == {0}
    assert any("valid feature names" in entry["text"] for entry in entries), entries
    bad = httpx.get(
        f"{cairn_server.url}/cairn/v1/{PROJECT}/models/{logged_model}/versions/v1/consoleLogs",
        params={"lines": 0},
        headers=cairn_server.headers(),
    )
    assert (
        bad.status_code == 400
        and error_of(bad)["details"][0]["fieldViolations"][0]["field"] == "lines"
    )


def test_logging_config_is_validated_at_create_and_patch(
    ml: Any, cairn_server: Any, logged_model: str
) -> None:
    with pytest.raises(HttpError) as create:
        ml.projects().models().versions().create(
            parent=f"{PROJECT}/models/{logged_model}",
            body={
                "name": "v_bad",
                "deploymentUri": "gs://reqlog-bucket/x",
                "requestLoggingConfig": {"samplingPercentage": 2, "bigqueryTableName": "p.d.t"},
            },
        ).execute()
    error = json.loads(create.value.content)["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    violations = error["details"][0]["fieldViolations"]
    assert violations[0]["field"] == "version.request_logging_config.sampling_percentage"
    for config, field in (
        ({"samplingPercentage": 0.5}, "bigquery_table_name"),
        ({"samplingPercentage": 0.5, "bigqueryTableName": "just_a_table"}, "bigquery_table_name"),
        ({"samplingPercentage": -1, "bigqueryTableName": "p.d.t"}, "sampling_percentage"),
    ):
        with pytest.raises(HttpError) as patch:
            set_logging(ml, logged_model, config)
        error = json.loads(patch.value.content)["error"]
        assert error["details"][0]["fieldViolations"][0]["field"] == (
            f"version.request_logging_config.{field}"
        ), config


def token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_bad_ground_truth_is_invalid_argument_not_a_500(
    cairn_server: Any, logged_model: str
) -> None:
    url = f"{cairn_server.url}/cairn/v1/{PROJECT}/models/{logged_model}/requestLogs:setGroundtruth"
    for request_id in ("²", "9" * 30, 2**64, "-1", True):
        response = httpx.post(
            url,
            json={"requestId": request_id, "groundtruth": "x"},
            headers=cairn_server.headers(),
            timeout=60,
        )
        assert response.status_code == 400, (request_id, response.text)
        violation = error_of(response)["details"][0]["fieldViolations"][0]
        assert violation["field"] == "request_id", request_id
    # The largest id a row can have: a fair question, answered NOT_FOUND.
    response = httpx.post(
        url,
        json={"requestId": str(2**63 - 1), "groundtruth": "x"},
        headers=cairn_server.headers(),
        timeout=60,
    )
    assert response.status_code == 404, response.text


def test_reading_request_bodies_needs_more_than_viewing_the_model(tmp_path: Path) -> None:
    """Request and response bodies may be personal data: ml.viewer (ml.versions.get) reads
    access and console logs, not the request log; editors, admins and the model's owner do
    (ml.developer, which cannot change versions, does not)."""
    from cairn.config import Settings
    from cairn.iam.roles import ROLES
    from cairn.server import build_app

    app, platform = build_app(Settings(home=tmp_path / "home"))
    platform.stop()
    params = {"project": PROJECT_ID, "model": "m", "version": "v1"}
    needed = {
        (route.method, route.template.rsplit("/", 1)[-1]): route.access.permission_for(params)
        for route in app.router.routes
        if route.template.startswith("/cairn/v1/projects/{project}/models/{model}")
        and route.template.endswith(("Logs", "Logs:setGroundtruth"))
    }
    assert needed == {
        ("GET", "requestLogs"): "ml.versions.update",
        ("POST", "requestLogs:setGroundtruth"): "ml.versions.update",
        ("GET", "accessLogs"): "ml.versions.get",
        ("GET", "consoleLogs"): "ml.versions.get",
    }
    for role in ("roles/ml.viewer", "roles/viewer", "roles/ml.developer"):
        assert "ml.versions.update" not in ROLES[role] and "ml.versions.get" in ROLES[role]
    for role in ("roles/ml.modelOwner", "roles/ml.editor", "roles/ml.admin", "roles/editor"):
        assert "ml.versions.update" in ROLES[role], role


def test_bad_reads_are_invalid_argument(cairn_server: Any, logged_model: str) -> None:
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-11-30T10:00:00"}, "until"),
        ({"pageToken": "nonsense"}, "pageToken"),
        # Integers past BIGINT in a token: an overflow in the database before, a 500.
        ({"pageToken": token("t1:99999999999999999999999:1")}, "pageToken"),
        ({"pageToken": token("t1:1:99999999999999999999999"), "order": "asc"}, "pageToken"),
        ({"table": "x"}, "table"),
        ({"order": "sideways"}, "order"),
        ({"pageSize": "-1"}, "page_size"),
    ):
        response = httpx.get(
            f"{cairn_server.url}/cairn/v1/{PROJECT}/models/{logged_model}/requestLogs",
            params=params,
            headers=cairn_server.headers(),
        )
        assert response.status_code == 400, (params, response.text)
        assert error_of(response)["details"][0]["fieldViolations"][0]["field"] == field


def test_cli_reads_exports_to_parquet_and_attaches_ground_truth(
    ml: Any, cairn_server: Any, tmp_path: Path
) -> None:
    model = unique("cli_logged")
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    deploy(ml, cairn_server, model, sklearn_model_dir(tmp_path / "sk"))
    table = f"{PROJECT_ID}.logs.cli"
    config = tmp_path / "logging.yaml"
    config.write_text(
        f"requestLoggingConfig:\n  samplingPercentage: 1\n  bigqueryTableName: {table}\n"
    )

    def cli(*args: str) -> Any:
        result = invoke(cairn_server.url, *args, project=PROJECT_ID)
        assert result.exit_code == 0, result.output
        return result

    cli("versions", "update", "v1", "--model", model, "--config", str(config))
    with httpx.Client(timeout=60) as http:
        for index in range(12):
            rows = [[float(index), 0.0, 0.0, 0.0]]
            assert predict(http, cairn_server, f"{PROJECT}/models/{model}", rows).status_code == 200
    listed = json.loads(
        cli(
            "versions",
            "request-log",
            "read",
            "v1",
            "--model",
            model,
            "--limit",
            "5",
            "--format",
            "json",
        ).stdout
    )
    assert len(listed) == 5
    assert json.loads(listed[0]["raw_data"]) == {"instances": [[11.0, 0.0, 0.0, 0.0]]}
    table_out = cli(
        "versions", "request-log", "read", "v1", "--model", model, "--limit", "3"
    ).stdout
    assert table_out.splitlines()[0].split() == [
        "REQUEST_ID", "TIME", "VERSION", "RAW_DATA", "RAW_PREDICTION", "GROUNDTRUTH"
    ]  # fmt: skip

    first_id = listed[-1]["requestId"]
    # VERSION is checked: the request went to v1, not v2.
    wrong = invoke(
        cairn_server.url, "versions", "request-log", "set-groundtruth", "v2", "--model", model,
        "--request-id", first_id, "--groundtruth", "x", project=PROJECT_ID,
    )  # fmt: skip
    assert wrong.exit_code != 0 and f"No logged request {first_id} of version" in wrong.output
    cli("versions", "request-log", "set-groundtruth", "v1", "--model", model,
        "--request-id", first_id, "--groundtruth", '{"label": 0}')  # fmt: skip

    target = tmp_path / "requests.parquet"
    exported = cli(
        "versions", "request-log", "export", "v1", "--model", model, "--parquet", str(target)
    )
    assert f"Wrote 12 rows to [{target}]." in exported.stderr
    frame = pq.read_table(target)
    assert frame.column_names == [
        "request_id", "table", "model", "model_version", "time", "raw_data", "raw_prediction",
        "groundtruth", "truncated",
    ]  # fmt: skip
    rows = frame.to_pylist()
    assert [json.loads(r["raw_data"])["instances"][0][0] for r in rows] == [
        float(i) for i in range(12)
    ]
    assert {r["table"] for r in rows} == {table} and {r["model_version"] for r in rows} == {"v1"}
    assert str(frame.schema.field("time").type) == "timestamp[us, tz=UTC]"
    truth = {r["request_id"]: r["groundtruth"] for r in rows}
    assert truth[int(first_id)] == '{"label": 0}'
    assert sum(value is not None for value in truth.values()) == 1

    missing = invoke(
        cairn_server.url, "versions", "request-log", "set-groundtruth", "v1", "--model", model,
        "--request-id", "999999999", "--groundtruth", "x", project=PROJECT_ID,
    )  # fmt: skip
    assert missing.exit_code != 0 and "No logged request 999999999" in missing.output
