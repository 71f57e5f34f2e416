"""Log lines as Cloud Logging's LogEntry: resource types, log names, severities.

Where AI Platform had a resource type, Cairn uses it: `ml_job` (labels project_id, job_id,
task_name) for training and batch prediction jobs, `cloudml_model_version` (project_id,
model_id, version_id) for online prediction. The audit log keeps its `audited_resource`;
Cairn's own service log is `cairn_server` (Cairn's type: AI Platform had no server).

A line of text carries no severity of its own; one is read from how the line starts, the
way Cloud Logging's agents parse common formats: Python's logging (`ERROR:root:…`,
`… - WARNING - …`), absl/glog (`E1130 10:00:00.000 …`), a bracketed or colon-ended level
(`[ERROR]`, `WARNING:`), or a traceback's first line. Other lines take the source's default.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn.domain.wire import format_timestamp
from cairn.iam.policy import INSTANCE
from cairn.monitoring.logfilter import instant_us

JOB_TYPE = "ml_job"
VERSION_TYPE = "cloudml_model_version"
AUDIT_TYPE = "audited_resource"
SERVER_TYPE = "cairn_server"

# (text, time_us, end offset) -> entry: how a file source renders one line.
LineRenderer = Callable[[str, int, int], dict[str, Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LEVEL_WORDS = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "NOTICE": "NOTICE",
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
    "FATAL": "CRITICAL",
    "ALERT": "ALERT",
    "EMERGENCY": "EMERGENCY",
}
_WORDS = "|".join(sorted(_LEVEL_WORDS, key=len, reverse=True))
# `ERROR:root:…`, `[ERROR] …`, `WARNING: …`, `2026-11-30 10:00:00,123 - x - ERROR - …`,
# `2026-11-30 10:00:00 ERROR …`, `10:00:00.123 [ERROR] …`. A level word after anything but
# a time (`2 ERROR samples dropped`) is just a word.
_TIME = r"(?:\d{4}-\d\d-\d\d[T ])?\d\d:\d\d:\d\d[.,]?\d*(?:Z|[+-]\d\d:?\d\d)?"
_WORD_LEVEL = re.compile(
    rf"^(?:\[?(?P<first>{_WORDS})\]?[:\s]"
    rf"|\S.{{0,64}}?\s-\s(?P<dashed>{_WORDS})\s-\s"
    rf"|\[?{_TIME}\]?\s+\[?(?P<stamped>{_WORDS})[\]:\s])"
)
_GLOG_LEVEL = re.compile(r"^(?P<letter>[DIWEF])\d{4} \d\d:\d\d:\d\d")
_GLOG = {"D": "DEBUG", "I": "INFO", "W": "WARNING", "E": "ERROR", "F": "CRITICAL"}
PYTHON_LEVELS = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
}


def severity_of_text(text: str, default: str) -> str:
    """The severity a log line's own words give it, else `default`."""
    head = text[:200]
    if head.startswith("Traceback (most recent call last)"):
        return "ERROR"
    glog = _GLOG_LEVEL.match(head)
    if glog:
        return _GLOG[glog.group("letter")]
    word = _WORD_LEVEL.match(head)
    if word:
        return _LEVEL_WORDS[word.group("first") or word.group("dashed") or word.group("stamped")]
    return default


@functools.lru_cache(maxsize=4096)
def timestamp_of(time_us: int) -> str:
    """RFC 3339 (cached: the lines of one write share their time)."""
    return format_timestamp(_EPOCH + timedelta(microseconds=time_us))


def text_entry(
    *,
    log_name: str,
    resource_type: str,
    resource_labels: dict[str, str],
    time_us: int,
    text: str,
    insert_id: str,
    default_severity: str,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "logName": log_name,
        "resource": {"type": resource_type, "labels": resource_labels},
        "timestamp": (moment := timestamp_of(time_us)),
        "receiveTimestamp": moment,
        "severity": severity_of_text(text, default_severity),
        "insertId": insert_id,
        "textPayload": text,
    }
    if labels:
        entry["labels"] = labels
    return entry


def log_name(parent: str, log_id: str) -> str:
    """`projects/P/logs/LOG_ID` with the log id URL-encoded as Cloud Logging writes it."""
    return f"{parent}/logs/{log_id.replace('/', '%2F')}"


def short_id(text: str) -> str:
    """A short stable digest: a source's key in page tokens, its entries' insertId prefix."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def entry_time(entry: dict[str, Any]) -> int:
    """An entry's timestamp in microseconds since the epoch (0 when it has none)."""
    moment = instant_us(str(entry.get("timestamp") or entry.get("time") or ""))
    return 0 if moment is None else moment


def version_resource(project: str, model_id: str, version: str) -> dict[str, Any]:
    return {
        "type": VERSION_TYPE,
        "labels": {"project_id": project, "model_id": model_id, "version_id": version},
    }


def job_line_renderer(
    project: str, job_id: str, task_name: str, trial: str | None, source_id: str
) -> LineRenderer:
    """A job's replica (or service) log line as an `ml_job` entry."""
    service = task_name == "service"
    name = log_name(f"projects/{project}", f"ml.googleapis.com/{job_id}" if service else task_name)
    labels = {"ml.googleapis.com/trial_id": trial} if trial is not None else None
    prefix = short_id(source_id)

    def render(text: str, time_us: int, end: int) -> dict[str, Any]:
        return text_entry(
            log_name=name,
            resource_type=JOB_TYPE,
            resource_labels={"project_id": project, "job_id": job_id, "task_name": task_name},
            time_us=time_us,
            text=text,
            insert_id=f"{prefix}-{end}",
            default_severity="INFO",
            labels=labels,
        )

    return render


def console_renderer(
    project: str, model_id: str, version: str, node: str, source_id: str
) -> LineRenderer:
    """A prediction node's console line as a `cloudml_model_version` entry."""
    name = log_name(f"projects/{project}", "ml.googleapis.com/console")
    prefix = short_id(source_id)

    def render(text: str, time_us: int, end: int) -> dict[str, Any]:
        return text_entry(
            log_name=name,
            resource_type=VERSION_TYPE,
            resource_labels=version_resource(project, model_id, version)["labels"],
            time_us=time_us,
            text=text,
            insert_id=f"{prefix}-{end}",
            default_severity="DEFAULT",
            labels={"node": node},
        )

    return render


def service_renderer(source_id: str) -> LineRenderer:
    """A line of Cairn's service log (`monitoring/service_log.py`) as a `cairn_server`
    entry; its time is the record's own (the line's arrival time if it has none)."""
    prefix = short_id(source_id)
    name = log_name(INSTANCE, "cairn.googleapis.com/server")

    def render(text: str, time_us: int, end: int) -> dict[str, Any]:
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            moment = int(float(record["time"]) * 1_000_000)
        except (ValueError, TypeError, KeyError, OverflowError):
            record, moment = {"message": text}, time_us
        payload = {k: v for k, v in record.items() if k in ("message", "logger", "exception")}
        return {
            "logName": name,
            "resource": {"type": SERVER_TYPE, "labels": {}},
            "timestamp": timestamp_of(moment),
            "receiveTimestamp": timestamp_of(moment),
            "severity": PYTHON_LEVELS.get(str(record.get("severity")), "DEFAULT"),
            "insertId": f"{prefix}-{end}",
            "jsonPayload": payload,
        }

    return render


def access_entry(project: str, model_id: str, seq: int, row: dict[str, Any]) -> dict[str, Any]:
    """An access-log row as read back by `services/request_logs.py` (`time` RFC 3339),
    with its store sequence number, as an entry with an `httpRequest`."""
    status = int(row.get("status") or 0)
    severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    version = str(row.get("model_version") or "")
    return {
        "logName": log_name(f"projects/{project}", "ml.googleapis.com/access"),
        "resource": version_resource(project, model_id, version),
        "timestamp": row["time"],
        "receiveTimestamp": row["time"],
        "severity": severity,
        "insertId": f"access-{seq}",
        "httpRequest": {
            "requestMethod": "POST",
            "status": status,
            "latency": f"{row.get('latency_seconds', 0)}s",
            "requestSize": str(row.get("request_bytes", 0)),
            "responseSize": str(row.get("response_bytes", 0)),
        },
    }


def request_entry(project: str, model_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """A sampled request as read back by `services/request_logs.py` (`requestId`, the BigQuery
    table's columns) as an entry whose `jsonPayload` holds those columns."""
    version = str(row.get("model_version") or "")
    payload = {
        key: value
        for key, value in row.items()
        if key not in ("model", "model_version", "time") and value is not None
    }
    return {
        "logName": log_name(f"projects/{project}", "ml.googleapis.com/requests"),
        "resource": version_resource(project, model_id, version),
        "timestamp": row["time"],
        "receiveTimestamp": row["time"],
        "severity": "INFO",
        "insertId": f"request-{row.get('requestId')}",
        "jsonPayload": payload,
    }
