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


# AI Platform's least scheduling.maxWaitTime (Settings.min_max_wait_seconds may lower it).
DEFAULT_MIN_MAX_WAIT_S = 1800.0
MAX_PRIORITY = 1000


def max_wait_seconds(training_input: Mapping[str, Any]) -> float | None:
    """How long the job may wait in QUEUED (`scheduling.maxWaitTime`); None: for ever."""
    scheduling = training_input.get("scheduling") or {}
    raw = scheduling.get("maxWaitTime")
    if not raw:
        return None
    return parse_duration(str(raw), "job.training_input.scheduling.max_wait_time")


def check_max_wait(training_input: Mapping[str, Any], minimum_s: float) -> None:
    """Refuse a maxWaitTime below the server's least (AI Platform's is 1800s)."""
    wait = max_wait_seconds(training_input)
    if wait is not None and wait < minimum_s:
        raise invalid_field(
            "job.training_input.scheduling.max_wait_time",
            f"maxWaitTime must be at least {minimum_s:g}s on this server (AI Platform's "
            f"least is {DEFAULT_MIN_MAX_WAIT_S:g}s); leave it unset to wait for ever.",
        )


def priority(training_input: Mapping[str, Any]) -> int:
    """`scheduling.priority`, 0 (the default) to 1000: higher runs first."""
    scheduling = training_input.get("scheduling") or {}
    try:
        return int(scheduling.get("priority") or 0)
    except (TypeError, ValueError):
        return 0
