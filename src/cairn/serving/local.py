"""In-process prediction for `cairn local predict` and benchmarks: no server, no node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from cairn.domain.errors import ApiError, Code
from cairn.serving.errors import ModelLoadError, PredictionError
from cairn.serving.loaders import load_predictor
from cairn.serving.requests import validate_instances
from cairn.serving.responses import predictions_body


def predict_local(
    model_dir: Path,
    framework: str | None,
    instances: list[Any],
    signature_name: str | None = None,
) -> list[Any]:
    """Predictions as an online node would answer them, computed in this process."""
    try:
        predictor = load_predictor(Path(model_dir), framework)
    except ModelLoadError as error:
        raise ApiError(Code.FAILED_PRECONDITION, str(error)) from None
    try:
        predictions = predictor.predict(validate_instances(instances), signature_name)
    except PredictionError as error:
        raise ApiError(Code.INVALID_ARGUMENT, error.message) from None
    body: dict[str, list[Any]] = orjson.loads(predictions_body(predictions))
    return body["predictions"]
