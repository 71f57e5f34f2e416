"""JSON bodies of prediction answers, serialised straight from numpy where possible."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def predictions_body(predictions: Any) -> bytes:
    return orjson.dumps({"predictions": predictions}, default=json_default, option=_OPTIONS)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


def json_default(value: Any) -> Any:
    """Fallback for what orjson cannot write natively (string/object arrays, numpy scalars)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
