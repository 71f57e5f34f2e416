"""predictionClass and packageUris on a new version: what AI Platform accepts, clear errors."""

from __future__ import annotations

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.domain.models import Version, validate_new_version

BASE = {"name": "v", "deploymentUri": "gs://b/m"}


def refused(body: dict[str, object]) -> str:
    with pytest.raises(ApiError) as raised:
        validate_new_version(Version.parse({**BASE, **body}, "version"))
    assert raised.value.code is Code.INVALID_ARGUMENT, raised.value
    return raised.value.field_violations[0].field


def test_a_routine_and_a_package_only_pipeline_are_accepted() -> None:
    validate_new_version(
        Version.parse({**BASE, "predictionClass": "pkg.mod.P", "packageUris": ["gs://b/p"]}, "v")
    )
    validate_new_version(
        Version.parse({**BASE, "framework": "SCIKIT_LEARN", "packageUris": ["gs://b/p"]}, "v")
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"predictionClass": "NoModule", "packageUris": ["gs://b/p"]}, "version.prediction_class"),
        ({"predictionClass": "a.b c", "packageUris": ["gs://b/p"]}, "version.prediction_class"),
        ({"predictionClass": "m.P"}, "version.package_uris"),
        (
            {"predictionClass": "m.P", "packageUris": ["gs://b/p"], "framework": "XGBOOST"},
            "version.framework",
        ),
        ({"packageUris": ["gs://b/p"] * 101}, "version.package_uris"),
        ({"packageUris": [""]}, "version.package_uris[0]"),
    ],
)
def test_bad_custom_code_fields_are_named(body: dict[str, object], field: str) -> None:
    assert refused(body) == field


def test_cairn_serving_is_output_only_and_accepted_back() -> None:
    """A client may send back what describe showed; the field is dropped, not refused."""
    version = Version.parse({**BASE, "cairnServing": {"nodes": 2, "coldStarts": 1}}, "version")
    assert version.cairn_serving is not None and version.cairn_serving.nodes == 2
