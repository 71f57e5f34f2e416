"""Prediction errors in AI Platform's wording.

Online prediction answers a failed request with `{"error": "<message>"}` and no partial
predictions. Messages start with "Prediction failed: " and then say, in ml_sdk's words,
what went wrong ("Invalid inputs: ...", "Exception during sklearn prediction: ...").
"""

from __future__ import annotations


class PredictionError(Exception):
    """A request the model cannot answer; `message` is what the client sees."""

    def __init__(self, detail: str) -> None:
        self.message = f"Prediction failed: {detail}"
        super().__init__(self.message)


class InvalidInputs(PredictionError):
    """The request or its instances are malformed (ml_sdk error code 1)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Invalid inputs: {detail}")


class ModelLoadError(Exception):
    """The model directory could not be loaded; the text says what to fix."""
