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


def _write(job_dir: Path, task: str, lines_and_times: list[tuple[str, float]]) -> None:
    """Append lines to a replica's log, each stamped at its time, as the shim does."""
    log = job_dir / "logs" / f"{task}.log"
    with log.open("ab") as handle, (job_dir / "logs" / f"{task}.times").open("ab") as times:
        for text, moment in lines_and_times:
            handle.write(text.encode() + b"\n")
            times.write(f"{handle.tell()} {moment:.6f}\n".encode())


def _texts(entries: list[dict]) -> list[str]:
    return [f"{e['taskName']}: {e['text']}" for e in entries]


def test_lines_of_every_log_come_in_time_order_and_the_cursor_goes_on(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    _write(tmp_path, "master-replica-0", [("m1", 100.0), ("m2", 103.0)])
    _write(tmp_path, "worker-replica-0", [("w1", 101.0), ("w2", 104.0)])
    _write(tmp_path, "service", [("installed", 99.0), ("restarting", 102.0)])

    entries, after = read_job_logs(tmp_path, None)
    assert _texts(entries) == [
        "service: installed",
        "master-replica-0: m1",
        "worker-replica-0: w1",
        "service: restarting",
        "master-replica-0: m2",
        "worker-replica-0: w2",
    ]
    assert entries[0]["timestamp"] == "1970-01-01T00:01:39Z"
    assert read_job_logs(tmp_path, after)[0] == []
    _write(tmp_path, "worker-replica-0", [("w3", 105.0)])
    _write(tmp_path, "master-replica-0", [("m3", 106.0)])
    assert _texts(read_job_logs(tmp_path, after)[0]) == [
        "worker-replica-0: w3",
        "master-replica-0: m3",
    ]


def test_task_name_keeps_one_replicas_lines(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    _write(tmp_path, "master-replica-0", [("m1", 100.0)])
    _write(tmp_path, "worker-replica-1", [("w1", 101.0)])
    entries, _ = read_job_logs(tmp_path, None, task_name="worker-replica-1")
    assert _texts(entries) == ["worker-replica-1: w1"]
    assert read_job_logs(tmp_path, None, task_name="nobody")[0] == []


def test_lines_stamped_too_recently_wait_for_the_next_read(tmp_path: Path) -> None:
    """While a job runs, a line stamped after the settle point may have company on its way
    into another log: it is held back, and the cursor does not pass it."""
    import time

    (tmp_path / "logs").mkdir()
    now = time.time()
    _write(tmp_path, "master-replica-0", [("old", now - 10), ("fresh", now - 0.5)])
    entries, after = read_job_logs(tmp_path, None, settle_s=5.0)
    assert _texts(entries) == ["master-replica-0: old"]
    _write(tmp_path, "worker-replica-0", [("between", now - 5)])
    entries, _ = read_job_logs(tmp_path, after)
    assert _texts(entries) == ["worker-replica-0: between", "master-replica-0: fresh"]


def test_unstamped_logs_and_forged_stamps_are_read_in_file_order(tmp_path: Path) -> None:
    """A log nobody stamped (an older run) counts as written at its last change; a times
    file is the replica's own, so lines in it that are not stamps are skipped."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "master-replica-0.log").write_text("a\nb\n")
    (tmp_path / "logs" / "worker-replica-0.log").write_text("c\n")
    (tmp_path / "logs" / "worker-replica-0.times").write_bytes(b"junk\n2 nan\n-\n")
    entries, _ = read_job_logs(tmp_path, None)
    assert sorted(_texts(entries)) == [
        "master-replica-0: a",
        "master-replica-0: b",
        "worker-replica-0: c",
    ]
    assert _texts(entries).index("master-replica-0: a") < _texts(entries).index(
        "master-replica-0: b"
    )
