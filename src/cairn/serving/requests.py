"""Parsing of the raw predict body `{"instances": [...], "signature_name": "..."}`.

It runs inside the prediction node, so the server forwards request bytes untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from cairn.serving.errors import InvalidInputs

EXAMPLE = '{"instances": [[1.0, 2.0, 3.0]]}'


@dataclass(frozen=True)
class PredictRequest:
    instances: list[Any]
    signature_name: str | None = None
    # The body's other top-level fields: a custom prediction routine gets them as keyword
    # arguments of predict().
    options: dict[str, Any] = field(default_factory=dict)


def parse_request(body: bytes) -> PredictRequest:
    """The request's instances and signature, or InvalidInputs saying how to fix the body."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInputs(
            f"the request body is not valid JSON ({error}). Send a JSON object like {EXAMPLE}."
        ) from None
    if not isinstance(doc, dict):
        raise InvalidInputs(
            f"the request body must be a JSON object with an 'instances' list, like {EXAMPLE}."
        )
    if "instances" not in doc:
        raise InvalidInputs(f"the request has no 'instances' field. Send e.g. {EXAMPLE}.")
    options = {k: v for k, v in doc.items() if k not in ("instances", "signature_name")}
    return PredictRequest(validate_instances(doc["instances"]), signature_of(doc), options)


def validate_instances(instances: Any) -> list[Any]:
    if not isinstance(instances, list):
        raise InvalidInputs(
            f"'instances' must be a list (one entry per instance), not "
            f"{type(instances).__name__}. Send e.g. {EXAMPLE}."
        )
    if not instances:
        raise InvalidInputs("'instances' is empty; send at least one instance.")
    return instances


def signature_of(doc: dict[str, Any]) -> str | None:
    name = doc.get("signature_name")
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidInputs("'signature_name' must be a string naming a SavedModel signature.")
    return name
