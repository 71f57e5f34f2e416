"""Scaling and packageUris through the API on a real server: scale to zero and back, live
`versions.patch` of scaling, Cairn's `cairnServing` output, 429 under saturation, and a
scikit-learn pipeline whose custom transformer comes from packageUris."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from tests.conftest import RunningServer
from tests.factories import build_trainer_sdist, sklearn_model_dir
from tests.remote import unique, upload_dir, upload_file, wait_operation

pytestmark = pytest.mark.slow

PROJECT = "projects/test_project"
ROWS = [[0.5, -1.0, 2.0, 0.1], [-2.0, 0.3, 0.0, 1.5]]

TRANSFORMER = """
import time

from sklearn.base import BaseEstimator, TransformerMixin


class Slow(BaseEstimator, TransformerMixin):
    \"\"\"Doubles the features, after `delay` seconds (a model that is easy to saturate).\"\"\"

    def __init__(self, delay=0.0):
        self.delay = delay

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        time.sleep(self.delay)
        return x * 2
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose idle nodes stop after a second and whose nodes hold 2 requests each."""
    running = RunningServer(
        home=tmp_path_factory.mktemp("scaling-home"),
        extra_env={
            "CAIRN_AUTOSCALE_IDLE_SECONDS": "1",
            "CAIRN_SERVING_MAX_INFLIGHT_PER_NODE": "2",
        },
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ml(server: RunningServer) -> Any:
    return server.client()


def versions(ml: Any) -> Any:
    return ml.projects().models().versions()


def create_version(ml: Any, server: RunningServer, body: dict[str, Any], model_dir: Path) -> str:
    """A new model with version v1 from `model_dir`; its name once the create finished."""
    model = unique("scaling")
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    uri = upload_dir(server.url, model_dir, "scaling-models", model, server.headers())
    operation = (
        versions(ml)
        .create(
            parent=f"{PROJECT}/models/{model}", body={"name": "v1", "deploymentUri": uri, **body}
        )
        .execute()
    )
    done = wait_operation(ml, operation["name"], timeout=600)
    assert "error" not in done, (done, server.log()[-3000:])
    return f"{PROJECT}/models/{model}/versions/v1"


def describe(ml: Any, name: str) -> dict[str, Any]:
    version: dict[str, Any] = versions(ml).get(name=name).execute()
    return version


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def predict(server: RunningServer, name: str, instances: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/{name}:predict",
        json={"instances": instances},
        headers=server.headers(),
        timeout=120,
    )


def patch(ml: Any, name: str, body: dict[str, Any], mask: str) -> dict[str, Any]:
    operation = versions(ml).patch(name=name, body=body, updateMask=mask).execute()
    done: dict[str, Any] = wait_operation(ml, operation["name"], timeout=300)
    return done


def test_scale_to_zero_cold_start_and_live_updates(
    ml: Any, server: RunningServer, tmp_path: Path
) -> None:
    model_dir = sklearn_model_dir(tmp_path / "model")
    expected = joblib.load(model_dir / "model.joblib").predict(np.array(ROWS)).tolist()
    name = create_version(ml, server, {"autoScaling": {"minNodes": 0, "maxNodes": 2}}, model_dir)

    wait_for(lambda: describe(ml, name)["cairnServing"]["nodes"] == 0, "scale to zero")
    version = describe(ml, name)
    assert version["state"] == "READY"  # scaled to zero, still deployed and READY
    assert version["cairnServing"]["readyNodes"] == 0

    answer = predict(server, name, ROWS)  # held while a node starts, not failed
    assert (answer.status_code, answer.json()) == (200, {"predictions": expected})
    serving = describe(ml, name)["cairnServing"]
    # (Not nodes == 1: on a loaded machine the node may idle out again before describe.)
    assert serving["coldStarts"] == 1 and serving["lastColdStartSeconds"] > 0

    # A floor of two: both nodes run when the update finishes, and stay.
    done = patch(ml, name, {"autoScaling": {"minNodes": 2}}, "autoScaling.minNodes")
    assert "error" not in done, done
    assert done["response"]["autoScaling"] == {"minNodes": 2, "maxNodes": 2}
    assert describe(ml, name)["cairnServing"]["nodes"] == 2
    time.sleep(2.0)
    assert describe(ml, name)["cairnServing"]["readyNodes"] == 2
    assert predict(server, name, ROWS).status_code == 200

    # maxNodes above the server's limit is refused with the field named.
    refused = httpx.patch(
        f"{server.url}/v1/{name}",
        params={"updateMask": "autoScaling.maxNodes"},
        json={"autoScaling": {"maxNodes": 99}},
        headers=server.headers(),
    )
    assert refused.status_code == 400
    violations = refused.json()["error"]["details"][0]["fieldViolations"]
    assert violations[0]["field"] == "version.auto_scaling.max_nodes"

    # What describe printed can be sent back: cairnServing is output only.
    echoed = httpx.patch(
        f"{server.url}/v1/{name}",
        params={"updateMask": "description"},
        json={**describe(ml, name), "description": "echoed"},
        headers=server.headers(),
    )
    assert echoed.status_code == 200, echoed.text


def test_manual_nodes_and_their_update(ml: Any, server: RunningServer, tmp_path: Path) -> None:
    model_dir = sklearn_model_dir(tmp_path / "model")
    name = create_version(ml, server, {"manualScaling": {"nodes": 2}}, model_dir)
    assert describe(ml, name)["cairnServing"]["nodes"] == 2
    time.sleep(2.0)  # manual nodes never stop for idleness
    assert describe(ml, name)["cairnServing"]["readyNodes"] == 2
    done = patch(ml, name, {"manualScaling": {"nodes": 1}}, "manualScaling.nodes")
    assert "error" not in done, done
    assert describe(ml, name)["cairnServing"]["nodes"] == 1
    assert predict(server, name, ROWS).status_code == 200


def test_pipeline_from_package_uris_serves_then_saturates_into_429(
    ml: Any, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = f"slowtf_{unique('p')[-6:]}"
    sdist = build_trainer_sdist(tmp_path, TRANSFORMER, name=package)
    # Fit here with the package's class, as a user would before uploading the pipeline.
    monkeypatch.syspath_prepend(str(sdist.parent.parent / f"{package}-src"))
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    slow = __import__(f"{package}.task", fromlist=["Slow"]).Slow
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4))
    pipeline = make_pipeline(slow(delay=1.5), LogisticRegression()).fit(x, x[:, 0] > 0)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    joblib.dump(pipeline, model_dir / "model.joblib")
    sys.modules.pop(f"{package}.task", None)
    uri = upload_file(server.url, sdist, "scaling-packages", sdist.name, server.headers())

    name = create_version(
        ml,
        server,
        {
            "framework": "SCIKIT_LEARN",
            "packageUris": [uri],
            "autoScaling": {"minNodes": 1, "maxNodes": 1},
        },
        model_dir,
    )
    answer = predict(server, name, ROWS)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": pipeline.predict(np.array(ROWS)).tolist()}

    # One node holding two requests, at maxNodes: the others are refused at once.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: predict(server, name, ROWS), range(8)))
    codes = sorted(a.status_code for a in answers)
    assert set(codes) == {200, 429}, codes
    assert codes.count(200) >= 2
    refused = next(a for a in answers if a.status_code == 429).json()["error"]
    assert refused["status"] == "RESOURCE_EXHAUSTED"
    assert "maxNodes" in refused["message"]


def test_missing_package_is_refused_at_create(
    ml: Any, server: RunningServer, tmp_path: Path
) -> None:
    model = unique("scaling")
    ml.projects().models().create(parent=PROJECT, body={"name": model}).execute()
    uri = upload_dir(
        server.url, sklearn_model_dir(tmp_path / "m"), "scaling-models", model, server.headers()
    )
    answer = httpx.post(
        f"{server.url}/v1/{PROJECT}/models/{model}/versions",
        json={"name": "v1", "deploymentUri": uri, "packageUris": ["gs://scaling-packages/no.whl"]},
        headers=server.headers(),
    )
    assert answer.status_code == 400
    violation = answer.json()["error"]["details"][0]["fieldViolations"][0]
    assert violation["field"] == "version.package_uris[0]"
    assert "does not exist" in violation["description"]
    # Nor may a package name a file on the server's disk.
    answer = httpx.post(
        f"{server.url}/v1/{PROJECT}/models/{model}/versions",
        json={"name": "v2", "deploymentUri": uri, "packageUris": ["/etc/passwd"]},
        headers=server.headers(),
    )
    assert answer.status_code == 400
    violation = answer.json()["error"]["details"][0]["fieldViolations"][0]
    assert violation["field"] == "version.package_uris[0]"
