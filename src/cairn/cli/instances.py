"""Reading prediction instances from files the way gcloud does, for `predict` and `local predict`.

`--json-request` is a whole request body, `--json-instances` one JSON instance per line,
`--text-instances` one string instance per line; `-` reads stdin; a UTF-8 BOM is allowed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from cairn.domain.errors import invalid_field

MAX_INSTANCES = 100  # gcloud reads at most 100 instances per request
INPUT_FLAGS = ("--json-request", "--json-instances", "--text-instances")


def chosen_input(**given: str | None) -> tuple[str, str]:
    """The one input flag given (keyword names as click passes them), or INVALID_ARGUMENT."""
    chosen = [(f"--{name.replace('_', '-')}", value) for name, value in given.items() if value]
    if len(chosen) != 1:
        raise invalid_field(
            "--json-instances",
            "Give exactly one of --json-request, --json-instances or --text-instances.",
        )
    return chosen[0]


def read_instances(flag: str, source: str) -> tuple[list[Any], str | None]:
    """Instances (and a request's signature_name) from the file (or `-`) named by `flag`."""
    text = _read_text(flag, source)
    if flag == "--json-request":
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise invalid_field(flag, f"the file is not valid JSON: {error}.") from None
        if not isinstance(request, dict) or not isinstance(request.get("instances"), list):
            raise invalid_field(flag, 'the file must hold a JSON object with an "instances" list.')
        signature = request.get("signature_name")
        instances: list[Any] = request["instances"]
        return _bounded(flag, instances), signature if isinstance(signature, str) else None
    lines = _lines(text)
    if flag == "--text-instances":
        return _bounded(flag, list(lines)), None
    instances = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise invalid_field(flag, f"line {number} is empty; write one instance per line.")
        try:
            instances.append(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            raise invalid_field(flag, f"line {number} is not valid JSON: {error}.") from None
    return _bounded(flag, instances), None


def _lines(text: str) -> list[str]:
    """Lines split on newlines only (a form feed or U+2028 inside an instance is data)."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def _bounded(flag: str, instances: list[Any]) -> list[Any]:
    if not instances:
        raise invalid_field(flag, "the input holds no instances.")
    if len(instances) > MAX_INSTANCES:
        raise invalid_field(
            flag,
            f"the input has {len(instances)} instances; online prediction takes at most "
            f"{MAX_INSTANCES} per request. Split it, or use a batch prediction job.",
        )
    return instances


def _read_text(flag: str, source: str) -> str:
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as error:
        raise invalid_field(flag, f"cannot read {source}: {error.strerror}.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise invalid_field(flag, f"{source} is not UTF-8 text ({error.reason}).") from None
