"""Reading replica logs behind a cursor: forged cursors get a clean INVALID_ARGUMENT."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.training.logs import read_job_logs

LOG = "logs/master-replica-0.log"


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    (tmp_path / LOG).write_text("first\nsecond\n")
    return tmp_path


def cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def test_lines_are_read_once_and_the_cursor_goes_on(job_dir: Path) -> None:
    entries, after = read_job_logs(job_dir, None)
    assert [entry["text"] for entry in entries] == ["first", "second"]
    assert read_job_logs(job_dir, after)[0] == []


@pytest.mark.parametrize(
    "forged",
    [
        cursor({LOG: -1}),  # a negative seek once raised OSError: a 500
        base64.urlsafe_b64encode(b'{"a": Infinity}').decode(),  # int(inf): OverflowError
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),  # RecursionError in json
        "A" * 100_000,
        "not base64!",
    ],
)
def test_forged_cursors_are_invalid_argument(job_dir: Path, forged: str) -> None:
    with pytest.raises(ApiError) as raised:
        read_job_logs(job_dir, forged)
    assert raised.value.code is Code.INVALID_ARGUMENT
    assert raised.value.field_violations[0].field == "cursor"


@pytest.mark.parametrize("offset", [2**62, 2**70])
def test_offsets_past_the_end_read_from_the_end(job_dir: Path, offset: int) -> None:
    """A huge offset once raised OSError (EINVAL) or OverflowError from seek."""
    entries, after = read_job_logs(job_dir, cursor({LOG: offset}))
    assert entries == []
    with (job_dir / LOG).open("a") as log:
        log.write("third\n")
    assert [entry["text"] for entry in read_job_logs(job_dir, after)[0]] == ["third"]
