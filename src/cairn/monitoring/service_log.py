"""Cairn's own service log: what the server's loggers say, kept as JSON lines in the home.

`install_service_log(home)` adds a rotating handler to the `cairn` logger: one JSON object
per record in `<home>/logs/cairn.jsonl` (`time`, `severity`, `logger`, `message`, and
`exception` when there is one), rotated at 10 MiB into `cairn.jsonl.1` … `.5`. Warnings
still reach stderr as before. `service_log_files(home)` lists the files newest first, for
the readers of `cairn logging read`.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from pathlib import Path

SERVICE_LOG_NAME = "cairn.jsonl"
_MAX_BYTES = 10 * 2**20
_BACKUPS = 5
_MAX_MESSAGE_CHARS = 16 * 1024


def service_log_dir(home: Path) -> Path:
    return home / "logs"


def service_log_files(home: Path) -> list[Path]:
    """The service log's files, the current one first, then older rotations."""
    directory = service_log_dir(home)
    files = [directory / SERVICE_LOG_NAME]
    files += [directory / f"{SERVICE_LOG_NAME}.{n}" for n in range(1, _BACKUPS + 1)]
    return [path for path in files if path.is_file()]


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, object] = {
            "time": f"{record.created:.6f}",
            "severity": record.levelname,
            "logger": record.name,
            "message": message[:_MAX_MESSAGE_CHARS],
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)[:_MAX_MESSAGE_CHARS]
        return json.dumps(line, ensure_ascii=False)


def install_service_log(home: Path, level: int = logging.INFO) -> logging.Handler:
    """Log the `cairn` loggers to the home's service log from now on; returns the handler.

    A logger with a handler of its own no longer falls back to Python's last-resort stderr
    handler, so warnings get a stderr handler of their own, printed as before.
    """
    directory = service_log_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # the server's alone: it names every project's jobs and errors
    handler = logging.handlers.RotatingFileHandler(
        directory / SERVICE_LOG_NAME, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(JsonLinesFormatter())
    handler.setLevel(level)
    handler._cairn_service_log = True  # type: ignore[attr-defined]
    logger = logging.getLogger("cairn")
    for earlier in [h for h in logger.handlers if getattr(h, "_cairn_service_log", False)]:
        # A server started again in this process (tests) logs to its own home only.
        logger.removeHandler(earlier)
        earlier.close()
    logger.addHandler(handler)
    if not any(getattr(h, "_cairn_stderr", False) for h in logger.handlers):
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setLevel(logging.WARNING)
        stderr._cairn_stderr = True  # type: ignore[attr-defined]
        logger.addHandler(stderr)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    logger.info("Service log opened at %s (server pid %d)", directory, os.getpid())
    return handler
