"""models, versions, operations and predict through google-api-python-client on a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from googleapiclient.errors import HttpError
from tests.factories import sklearn_model_dir, tensorflow_model_dir, xgboost_model_dir
from tests.remote import unique, upload_dir, wait_operation

PROJECT = "projects/test_project"


def error_of(exc: HttpError) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.content)["error"]
    return body


def deploy(
    ml: Any, server: Any, model: str, version: str, local: Path, **fields: Any
) -> dict[str, Any]:
    uri = upload_dir(
        server.url, local, "models-bucket", f"{model}/{version}", headers=server.headers()
    )
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"{PROJECT}/models/{model}",
            body={"name": version, "deploymentUri": uri, **fields},
        )
        .execute()
    )
    assert operation["metadata"]["operationType"] == "CREATE_VERSION"
    assert (
        operation["metadata"]["@type"] == "type.googleapis.com/google.cloud.ml.v1.OperationMetadata"
    )
    assert operation["name"].startswith(f"{PROJECT}/operations/create_{model}_{version}-")
    return wait_operation(ml, operation["name"])


def test_get_config(ml: Any) -> None:
    config = ml.projects().getConfig(name=PROJECT).execute()
    assert config["serviceAccount"].endswith("@cloud-ml.google.com.iam.gserviceaccount.com")
    assert isinstance(config["serviceAccountProject"], str)


def test_model_lifecycle(ml: Any) -> None:
    name = unique("census")
    created = (
        ml.projects()
        .models()
        .create(
            parent=PROJECT, body={"name": name, "description": "first", "labels": {"team": "ml"}}
        )
        .execute()
    )
    assert created["name"] == f"{PROJECT}/models/{name}"
    assert created["regions"] == ["us-central1"]
    assert created["etag"]

    with pytest.raises(HttpError) as duplicate:
        ml.projects().models().create(parent=PROJECT, body={"name": name}).execute()
    error = error_of(duplicate.value)
    assert duplicate.value.resp.status == 409
    assert error["status"] == "ALREADY_EXISTS"
    assert error["message"] == "Field: model.name Error: A model with the same name already exists."
    assert error["details"][0]["fieldViolations"][0]["field"] == "model.name"

    fetched = ml.projects().models().get(name=created["name"]).execute()
    assert fetched["description"] == "first"

    operation = (
        ml.projects()
        .models()
        .patch(
            name=created["name"],
            body={"description": "second", "labels": {"team": "ops"}},
            updateMask="description,labels",
        )
        .execute()
    )
    operation = wait_operation(ml, operation["name"])
    assert operation["response"]["description"] == "second"
    assert ml.projects().models().get(name=created["name"]).execute()["labels"] == {"team": "ops"}

    listed = ml.projects().models().list(parent=PROJECT, filter=f"name:*{name}").execute()
    assert [m["name"] for m in listed["models"]] == [created["name"]]

    deleted = wait_operation(
        ml, ml.projects().models().delete(name=created["name"]).execute()["name"]
    )
    assert deleted["metadata"]["operationType"] == "DELETE_MODEL"
    assert "error" not in deleted
    with pytest.raises(HttpError) as missing:
        ml.projects().models().get(name=created["name"]).execute()
    assert missing.value.resp.status == 404


def test_models_list_pages(ml: Any) -> None:
    project = f"projects/{unique('paging')}"
    names = [unique("m") for _ in range(5)]
    for name in names:
        ml.projects().models().create(parent=project, body={"name": name}).execute()
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = ml.projects().models().list(parent=project, pageSize=2, pageToken=token).execute()
        seen += [m["name"].rsplit("/", 1)[-1] for m in page.get("models", [])]
        pages += 1
        token = page.get("nextPageToken")
        if not token:
            break
    assert seen == names
    assert pages == 3
    empty = ml.projects().models().list(parent=f"projects/{unique('empty')}").execute()
    assert empty == {}


def test_sklearn_version_serves_predictions(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    model = unique("iris")
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    done = deploy(ml, cairn_server, model, "v1", sklearn_model_dir(tmp_path / "sk"))
    assert "error" not in done, done
    version = done["response"]
    assert version["state"] == "READY"
    assert version["framework"] == "SCIKIT_LEARN"
    assert version["isDefault"] is True

    default = (
        ml.projects().models().get(name=f"{PROJECT}/models/{model}").execute()["defaultVersion"]
    )
    assert default["name"] == f"{PROJECT}/models/{model}/versions/v1"

    instances = [[3.0, 3.0, 0.0, 0.0], [-3.0, -3.0, 0.0, 0.0]]
    by_model = (
        ml.projects()
        .predict(name=f"{PROJECT}/models/{model}", body={"instances": instances})
        .execute()
    )
    by_version = (
        ml.projects()
        .predict(name=f"{PROJECT}/models/{model}/versions/v1", body={"instances": instances})
        .execute()
    )
    assert by_model == by_version == {"predictions": [1, 0]}

    with pytest.raises(HttpError) as bad:
        ml.projects().predict(
            name=f"{PROJECT}/models/{model}", body={"instances": [[1.0, 2.0]]}
        ).execute()
    assert bad.value.resp.status == 400
    assert isinstance(json.loads(bad.value.content)["error"], str)


def test_version_lifecycle_rules(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    model = unique("rules")
    model_name = f"{PROJECT}/models/{model}"
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    assert "error" not in deploy(ml, cairn_server, model, "v1", sklearn_model_dir(tmp_path / "a"))
    second = deploy(ml, cairn_server, model, "v2", xgboost_model_dir(tmp_path / "b"))
    assert second["response"]["framework"] == "XGBOOST"
    assert (
        "isDefault" not in second["response"]
    )  # later versions never become default by themselves

    xgb = (
        ml.projects()
        .predict(name=f"{model_name}/versions/v2", body={"instances": [[1.0, 0.0, 0.0]]})
        .execute()
    )
    assert len(xgb["predictions"]) == 1 and 0.0 <= xgb["predictions"][0] <= 1.0

    with pytest.raises(HttpError) as in_use:
        ml.projects().models().delete(name=model_name).execute()
    assert error_of(in_use.value)["status"] == "FAILED_PRECONDITION"
    with pytest.raises(HttpError) as default_delete:
        ml.projects().models().versions().delete(name=f"{model_name}/versions/v1").execute()
    assert error_of(default_delete.value)["status"] == "FAILED_PRECONDITION"

    made_default = (
        ml.projects()
        .models()
        .versions()
        .setDefault(name=f"{model_name}/versions/v2", body={})
        .execute()
    )
    assert made_default["isDefault"] is True
    assert (
        ml.projects().predict(name=model_name, body={"instances": [[1.0, 0.0, 0.0]]}).execute()
        == xgb
    )

    patched = wait_operation(
        ml,
        ml.projects()
        .models()
        .versions()
        .patch(
            name=f"{model_name}/versions/v1", body={"description": "old"}, updateMask="description"
        )
        .execute()["name"],
    )
    assert patched["response"]["description"] == "old"

    listed = ml.projects().models().versions().list(parent=model_name).execute()
    assert [v["name"].rsplit("/", 1)[-1] for v in listed["versions"]] == ["v1", "v2"]

    removed = wait_operation(
        ml,
        ml.projects()
        .models()
        .versions()
        .delete(name=f"{model_name}/versions/v1")
        .execute()["name"],
    )
    assert removed["metadata"]["operationType"] == "DELETE_VERSION"
    removed = wait_operation(
        ml,
        ml.projects()
        .models()
        .versions()
        .delete(name=f"{model_name}/versions/v2")
        .execute()["name"],
    )
    assert "error" not in removed
    wait_operation(ml, ml.projects().models().delete(name=model_name).execute()["name"])


def test_version_that_cannot_load_fails_with_loader_message(
    ml: Any, cairn_server: Any, tmp_path: Path
) -> None:
    model = unique("broken")
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.joblib").write_bytes(b"this is not a joblib file")
    done = deploy(ml, cairn_server, model, "v1", broken)
    assert done["error"]["code"] == 9
    assert "Bad model detected" in done["error"]["message"]
    version = (
        ml.projects()
        .models()
        .versions()
        .get(name=f"{PROJECT}/models/{model}/versions/v1")
        .execute()
    )
    assert version["state"] == "FAILED"
    assert version["errorMessage"]
    with pytest.raises(HttpError) as no_default:
        ml.projects().predict(name=f"{PROJECT}/models/{model}", body={"instances": [[1]]}).execute()
    assert no_default.value.resp.status == 400


def test_operations_list_and_get(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    project = f"projects/{unique('ops')}"
    model = unique("opsmodel")
    ml.projects().models().create(parent=project, body={"name": model}).execute()
    uri = upload_dir(
        cairn_server.url,
        sklearn_model_dir(tmp_path / "m"),
        "ops-bucket",
        model,
        headers=cairn_server.headers(),
    )
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(parent=f"{project}/models/{model}", body={"name": "v1", "deploymentUri": uri})
        .execute()
    )
    wait_operation(ml, operation["name"])
    listed = ml.projects().operations().list(name=project).execute()
    assert [o["name"] for o in listed["operations"]] == [operation["name"]]
    assert ml.projects().operations().cancel(name=operation["name"]).execute() == {}
    with pytest.raises(HttpError) as missing:
        ml.projects().operations().get(name=f"{project}/operations/nope-1").execute()
    assert missing.value.resp.status == 404


@pytest.mark.slow
def test_tensorflow_version_serves_named_inputs(ml: Any, cairn_server: Any, tmp_path: Path) -> None:
    model = unique("tf")
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    done = deploy(
        ml, cairn_server, model, "v1", tensorflow_model_dir(tmp_path / "tf"), runtimeVersion="2.11"
    )
    assert "error" not in done, done
    assert done["response"]["framework"] == "TENSORFLOW"
    result = (
        ml.projects()
        .predict(
            name=f"{PROJECT}/models/{model}",
            body={"instances": [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]},
        )
        .execute()
    )
    assert result == {"predictions": [{"sum": 3.0, "product": 2.0}, {"sum": 7.0, "product": 12.0}]}
