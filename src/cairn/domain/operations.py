"""Long-running operations (google.longrunning.Operation) and their ml v1 metadata."""

from __future__ import annotations

from typing import Any, Literal

from cairn.domain.models import Version
from cairn.domain.wire import Int64, Message, Timestamp

OperationType = Literal[
    "OPERATION_TYPE_UNSPECIFIED",
    "CREATE_VERSION",
    "DELETE_VERSION",
    "DELETE_MODEL",
    "UPDATE_MODEL",
    "UPDATE_VERSION",
    "UPDATE_CONFIG",
]

METADATA_TYPE = "type.googleapis.com/google.cloud.ml.v1.OperationMetadata"
MODEL_TYPE = "type.googleapis.com/google.cloud.ml.v1.Model"
VERSION_TYPE = "type.googleapis.com/google.cloud.ml.v1.Version"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"


class OperationMetadata(Message):
    create_time: Timestamp | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    is_cancellation_requested: bool | None = None
    operation_type: OperationType | None = None
    model_name: str | None = None
    version: Version | None = None
    labels: dict[str, str] | None = None
    project_number: Int64 | None = None

    def to_any(self) -> dict[str, Any]:
        """The metadata as a google.protobuf.Any: its JSON with an `@type`."""
        return {"@type": METADATA_TYPE, **self.to_json()}


def operation_doc(
    name: str,
    metadata: OperationMetadata,
    *,
    done: bool = False,
    response: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An Operation as stored and rendered (`done` omitted while false, like Google)."""
    doc: dict[str, Any] = {"name": name, "metadata": metadata.to_any()}
    if done:
        doc["done"] = True
    if response is not None:
        doc["response"] = response
    if error is not None:
        doc["error"] = error
    return doc
