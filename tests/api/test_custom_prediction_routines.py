"""A custom prediction routine from packageUris, deployed and called over HTTP on a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_dir, upload_file, wait_operation

PROJECT = "projects/test_project"

ROUTINE = '''
import json
import os


class Scaled:
    """Sums each row, times the factor in the model directory, times the request's `scale`."""

    def __init__(self, factor):
        self.factor = factor

    @classmethod
    def from_path(cls, model_dir):
        with open(os.path.join(model_dir, "factor.json")) as handle:
            return cls(json.load(handle))

    def predict(self, instances, scale=1, **kwargs):
        if scale == 0:
            raise ValueError("scale must not be zero")
        return [sum(row) * self.factor * scale for row in instances]
'''


def _create_version(
    ml: Any, server: Any, tmp_path: Path, prediction_class: str
) -> tuple[str, dict[str, Any]]:
    model = unique("routine")
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    model_dir = tmp_path / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "factor.json").write_text("10")
    sdist = build_trainer_sdist(tmp_path / model, ROUTINE, name=f"scaled_{model[-6:]}")
    headers = server.headers()
    deployment = upload_dir(server.url, model_dir, "models-bucket", f"{model}/v1", headers)
    package = upload_file(server.url, sdist, "packages-bucket", f"{model}/{sdist.name}", headers)
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"{PROJECT}/models/{model}",
            body={
                "name": "v1",
                "deploymentUri": deployment,
                "predictionClass": prediction_class.format(package=f"scaled_{model[-6:]}"),
                "packageUris": [package],
                "runtimeVersion": "2.11",
            },
        )
        .execute()
    )
    return model, wait_operation(ml, operation["name"], timeout=600)


@pytest.mark.slow
def test_routine_from_package_uris_uses_a_keyword_argument(
    ml: Any, cairn_server: Any, tmp_path: Path
) -> None:
    model, done = _create_version(ml, cairn_server, tmp_path, "{package}.task.Scaled")
    assert "error" not in done, done
    assert done["response"]["state"] == "READY"
    assert "framework" not in done["response"]  # unset for routines, as on AI Platform
    url = f"{cairn_server.url}/v1/{PROJECT}/models/{model}/versions/v1:predict"
    headers = cairn_server.headers()

    plain = httpx.post(url, json={"instances": [[1, 2], [3, 4]]}, headers=headers, timeout=60)
    assert (plain.status_code, plain.json()) == (200, {"predictions": [30, 70]})
    scaled = httpx.post(
        url, json={"instances": [[1, 2], [3, 4]], "scale": 2}, headers=headers, timeout=60
    )
    assert (scaled.status_code, scaled.json()) == (200, {"predictions": [60, 140]})

    failed = httpx.post(url, json={"instances": [[1]], "scale": 0}, headers=headers, timeout=60)
    assert failed.status_code == 400
    message = failed.json()["error"]
    assert "Scaled.predict: ValueError: scale must not be zero" in message
    assert "Traceback" not in message


@pytest.mark.slow
def test_class_that_does_not_import_fails_the_version_with_the_reason(
    ml: Any, cairn_server: Any, tmp_path: Path
) -> None:
    model, done = _create_version(ml, cairn_server, tmp_path, "{package}.nowhere.Scaled")
    assert "error" in done, done
    version = (
        ml.projects()
        .models()
        .versions()
        .get(name=f"{PROJECT}/models/{model}/versions/v1")
        .execute()
    )
    assert version["state"] == "FAILED"
    assert "has no attribute 'nowhere'" in version["errorMessage"], json.dumps(version)
