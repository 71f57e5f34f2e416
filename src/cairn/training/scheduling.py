"""`trainingInput.scheduling`: how long a job may run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.domain.errors import invalid_field

# AI Platform's default maxRunningTime: seven days, counted from RUNNING.
DEFAULT_MAX_RUNNING_S = 7 * 24 * 3600.0


def parse_duration(text: str, field_path: str) -> float:
    """A proto3 JSON duration ("7200s", "1.5s") in seconds."""
    value = text.strip()
    if not value.endswith("s"):
        raise invalid_field(field_path, f"'{text}' is not a duration; write seconds, e.g. '3600s'.")
    try:
        seconds = float(value[:-1])
    except ValueError:
        raise invalid_field(
            field_path, f"'{text}' is not a duration; write seconds, e.g. '3600s'."
        ) from None
    if seconds <= 0:
        raise invalid_field(field_path, "The duration must be positive.")
    return seconds


def max_running_seconds(training_input: Mapping[str, Any]) -> float:
    scheduling = training_input.get("scheduling") or {}
    raw = scheduling.get("maxRunningTime")
    if not raw:
        return DEFAULT_MAX_RUNNING_S
    return parse_duration(str(raw), "job.training_input.scheduling.max_running_time")
