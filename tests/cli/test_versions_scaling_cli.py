"""`cairn versions create --prediction-class/--package-uris` and `versions update` scaling flags."""

from __future__ import annotations

from tests.client.cli_runner import invoke
from tests.client.fake_ml import FakeMl, fake_ml_fixture  # noqa: F401  (fixture)

P = "/v1/projects/proj"
V = f"{P}/models/m/versions"
OP = {"name": "projects/proj/operations/op-1"}
DONE = {**OP, "done": True, "response": {"name": "projects/proj/models/m/versions/v1"}}


def test_create_sends_a_custom_prediction_routine(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", V, OP)
    fake_ml.answer("GET", f"{P}/models/m", {"name": "projects/proj/models/m"})
    result = invoke(
        fake_ml.url, "versions", "create", "v1", "--model", "m", "--origin", "gs://b/model",
        "--prediction-class", "predictor.Scaled",
        "--package-uris", "gs://b/pkg/a-0.1.tar.gz, gs://b/pkg/b-0.1-py3-none-any.whl",
        "--async",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_ml.requests[-1].json() == {
        "name": "v1",
        "deploymentUri": "gs://b/model",
        "predictionClass": "predictor.Scaled",
        "packageUris": ["gs://b/pkg/a-0.1.tar.gz", "gs://b/pkg/b-0.1-py3-none-any.whl"],
    }


def test_package_uris_must_be_in_storage(fake_ml: FakeMl) -> None:
    result = invoke(
        fake_ml.url, "versions", "create", "v1", "--model", "m", "--origin", "gs://b/model",
        "--package-uris", "dist/a-0.1.tar.gz",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "cairn storage cp" in result.output
    assert fake_ml.requests == []


def test_update_scaling_flags_make_gclouds_mask(fake_ml: FakeMl) -> None:
    fake_ml.answer("PATCH", f"{V}/v1", OP)
    fake_ml.answer("GET", f"{P}/operations/op-1", DONE)
    result = invoke(
        fake_ml.url, "versions", "update", "v1", "--model", "m",
        "--min-nodes", "0", "--max-nodes", "4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    patch = fake_ml.requests[0]
    assert patch.json() == {"autoScaling": {"minNodes": 0, "maxNodes": 4}}
    assert patch.query["updateMask"] == "autoScaling.maxNodes,autoScaling.minNodes"
