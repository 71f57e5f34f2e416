"""Batch prediction: a job's input split between worker processes that each load the model
once and write their share of the results (`docs/batch_prediction.md`)."""

from cairn.serving.batch.inputs import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    InputFile,
    split_text,
    worker_count,
)
from cairn.serving.batch.plan import ERRORS_PREFIX, RESULTS_PREFIX, BatchPlan
from cairn.serving.batch.runner import BatchOutcome, BatchRunner

__all__ = [
    "ERRORS_PREFIX",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "RESULTS_PREFIX",
    "BatchOutcome",
    "BatchPlan",
    "BatchRunner",
    "InputFile",
    "split_text",
    "worker_count",
]
