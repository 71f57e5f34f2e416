"""The log service over a home's files as the runner and the server write them: tuning
trials' logs, the service log across rotation, and what a filter on one job opens."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.api.logging import parse_list_request
from cairn.config import Settings
from cairn.monitoring import logfiles
from cairn.monitoring.logentries import timestamp_of
from cairn.monitoring.logsearch import Window, read_page
from cairn.monitoring.service_log import install_service_log
from cairn.server import build_app
from cairn.services.access import Principal
from cairn.services.logs import LogService, PagedSource
from cairn.services.request_logs import LoggingPolicy

OWNER = Principal("user:owner@cairn.local")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def logs(home: Path) -> Iterator[LogService]:
    _app, platform = build_app(Settings(home=home))
    platform.access.enforcing = False  # as under --insecure-no-auth: this test is not about IAM
    assert platform.logs is not None  # built by build_platform from the settings
    yield platform.logs
    platform.stop()


def list_entries(logs: LogService, body: dict[str, Any]) -> dict[str, Any]:
    """entries:list as the route calls it: the body parsed, then the service asked."""
    return logs.list_entries(OWNER, parse_list_request(body))


def write_replica_log(run_dir: Path, task: str, lines: list[tuple[float, str]]) -> None:
    """A replica's log and its arrival stamps, as the replica shim writes them."""
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{task}.log", "ab") as log, open(logs / f"{task}.times", "ab") as times:
        for moment, text in lines:
            times.write(f"{log.tell() + len(text) + 1} {moment:.6f}\n".encode())
            log.write(text.encode() + b"\n")


def texts(answer: dict[str, Any]) -> list[str]:
    return [e.get("textPayload") or e["jsonPayload"]["message"] for e in answer.get("entries", [])]


def test_tuning_trials_lines_carry_their_trial_id(logs: LogService, home: Path) -> None:
    job_dir = home / "jobs" / "p1" / "tuned"
    write_replica_log(job_dir, "service", [(100.0, "Installing trainer.tar.gz")])
    for trial, start in (("1", 200.0), ("2", 300.0)):
        write_replica_log(
            job_dir / "trials" / trial,
            "master-replica-0",
            [(start + n, f"trial {trial} step {n}") for n in range(3)],
        )
    answer = list_entries(
        logs,
        {
            "resourceNames": ["projects/p1"],
            "filter": 'resource.labels.job_id=tuned labels."ml.googleapis.com/trial_id"="2"',
        },
    )
    assert texts(answer) == [f"trial 2 step {n}" for n in range(3)]
    entry = answer["entries"][0]
    assert entry["timestamp"] == "1970-01-01T00:05:00Z"
    assert entry["resource"]["labels"] == {
        "project_id": "p1",
        "job_id": "tuned",
        "task_name": "master-replica-0",
    }
    newest = list_entries(
        logs, {"resourceNames": ["projects/p1"], "orderBy": "timestamp desc", "pageSize": 4}
    )
    assert texts(newest) == ["trial 2 step 2", "trial 2 step 1", "trial 2 step 0", "trial 1 step 2"]
    between = list_entries(
        logs,
        {
            "resourceNames": ["projects/p1"],
            "filter": 'timestamp>="1970-01-01T00:03:21Z" timestamp<"1970-01-01T00:05:01Z"',
        },
    )
    assert texts(between) == ["trial 1 step 1", "trial 1 step 2", "trial 2 step 0"]


def test_a_filter_on_one_job_reads_only_that_jobs_files(
    logs: LogService, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for job in ("wanted", "other"):
        write_replica_log(home / "jobs" / "p1" / job, "master-replica-0", [(50.0, job)])
    opened: list[str] = []
    real_open = logfiles.open_regular

    def recording_open(path: Path) -> Any:
        opened.append(Path(path).relative_to(home / "jobs" / "p1").as_posix())
        return real_open(path)

    monkeypatch.setattr(logfiles, "open_regular", recording_open)
    # `=` ignores case, as in Cloud Logging.
    body = {"resourceNames": ["projects/p1"], "filter": "resource.labels.job_id=Wanted"}
    assert texts(list_entries(logs, body)) == ["wanted"]
    assert sorted(opened) == [
        "wanted/logs/master-replica-0.log",
        "wanted/logs/master-replica-0.times",
    ]
    opened.clear()
    assert sorted(texts(list_entries(logs, {"resourceNames": ["projects/p1"]}))) == [
        "other",
        "wanted",
    ]
    assert {path.split("/")[0] for path in opened} == {"other", "wanted"}


def test_fifos_and_links_in_a_log_directory_are_passed_over(logs: LogService, home: Path) -> None:
    secret = home / "secret.txt"
    secret.write_text("the server's secret\n")
    logs_dir = home / "jobs" / "p1" / "sneaky" / "logs"
    logs_dir.mkdir(parents=True)
    (logs_dir / "master-replica-0.log").symlink_to(secret)
    os.mkfifo(logs_dir / "worker-replica-0.log")  # opening it plainly would wait forever
    answers: list[dict[str, Any]] = []
    reader = threading.Thread(
        target=lambda: answers.append(list_entries(logs, {"resourceNames": ["projects/p1"]}))
    )
    reader.start()
    reader.join(timeout=60)
    try:
        assert not reader.is_alive(), "the reader waits on a FIFO"
    finally:
        if reader.is_alive():  # let it go: a writer ends its wait
            with open(logs_dir / "worker-replica-0.log", "wb"):
                pass
            reader.join()
    assert answers == [{}]


def test_the_service_log_pages_across_a_rotation(logs: LogService, home: Path) -> None:
    handler = install_service_log(home)
    try:
        logger = logging.getLogger("cairn.test_service_log")
        for n in range(6):
            logger.warning("record %d", n)
        handler.flush()
        body = {
            "resourceNames": ["organizations/cairn"],
            "filter": 'jsonPayload.message:"record"',
            "orderBy": "timestamp desc",
            "pageSize": 2,
        }
        first = list_entries(logs, body)
        assert texts(first) == ["record 5", "record 4"]
        assert {e["severity"] for e in first["entries"]} == {"WARNING"}
        assert first["entries"][0]["jsonPayload"]["logger"] == "cairn.test_service_log"
        handler.doRollover()  # the current file becomes cairn.jsonl.1 between two pages
        logger.warning("record after rotation")
        handler.flush()
        rest: list[str] = []
        token = first["nextPageToken"]
        while token:
            page = list_entries(logs, {**body, "pageToken": token})
            rest += texts(page)
            token = page.get("nextPageToken")
        assert rest == ["record 3", "record 2", "record 1", "record 0"]
        again = list_entries(logs, {**body, "pageSize": 1})
        assert texts(again) == ["record after rotation"]
        lines = (home / "logs" / "cairn.jsonl.1").read_text().splitlines()
        assert json.loads(lines[-1])["message"] == "record 5"
    finally:
        logging.getLogger("cairn").removeHandler(handler)
        handler.close()


@pytest.mark.parametrize("order", ["timestamp desc", "timestamp asc"])
def test_paging_through_an_unstamped_log_that_grows_between_pages(
    logs: LogService, home: Path, order: str
) -> None:
    # A log nobody stamps (a node's console log is one): every line takes the file's
    # modification time, which a write between two pages moves past the listing's start.
    log = home / "jobs" / "p1" / "console" / "logs" / "master-replica-0.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {n}\n" for n in range(7)))
    past = time.time() - 60
    os.utime(log, (past, past))
    body = {
        "resourceNames": ["projects/p1"],
        "filter": "resource.labels.job_id=console",
        "orderBy": order,
        "pageSize": 2,
    }
    first = list_entries(logs, body)
    seen = texts(first)
    with log.open("a") as out:
        out.write("written after the first page\n")
    later = time.time() + 5  # as a write a moment later would leave it
    os.utime(log, (later, later))
    token = first.get("nextPageToken")
    while token:
        page = list_entries(logs, {**body, "pageToken": token})
        seen += texts(page)
        token = page.get("nextPageToken")
    expected = [f"line {n}" for n in range(7)]
    assert seen == (expected[::-1] if order.endswith("desc") else expected)


def test_entries_outside_the_time_range_count_against_the_scan_budget() -> None:
    # The audit log cannot seek by time: entries before the range are read and passed over.
    # Each counts, so one request reads no more than its budget however long the log is.
    rows = [{"timestamp": timestamp_of(1_000_000 * n), "n": n} for n in range(1000)]
    fetched: list[int] = []

    def fetch(window: Window, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        start = int(token or 0)
        fetched.append(start)
        following = start + 100
        return rows[start:following], (str(following) if following < len(rows) else None)

    audit = PagedSource("audit", fetch, sorted_by_time=False)
    window = Window(False, 900 * 1_000_000, None)
    seen: list[int] = []
    token = None
    requests = 0
    while True:
        page = read_page(
            [audit],
            lambda entry: True,
            window,
            page_size=50,
            token=token,
            digest="d",
            key=b"k" * 32,
            now_us=10**16,
            scan_budget=150,
        )
        requests += 1
        assert len(fetched) <= 3  # a request reads about its budget's worth, no more
        fetched.clear()
        seen += [entry["n"] for entry in page.entries]
        token = page.next_token
        if token is None:
            break
    assert seen == list(range(900, 1000))
    assert requests > 5  # the 900 passed over took several budgets' worth of requests

    # Newest first with an upper bound, and oldest first past it: the read stops at the
    # far end of the range (allowing a minute for entries written out of order).
    fetched.clear()
    read_page(
        [audit],
        lambda entry: True,
        Window(False, None, 100 * 1_000_000),
        page_size=1000,
        token=None,
        digest="d",
        key=b"k" * 32,
        now_us=10**16,
    )
    assert fetched == [0, 100]  # entries up to 160 s read, then it stops


@pytest.mark.parametrize("job_id", ["a" * 300, "x\u0000y", "..", "p2/secret", "*", "nl\n", "-dash"])
def test_a_job_id_no_job_can_have_matches_nothing(
    logs: LogService, home: Path, job_id: str
) -> None:
    write_replica_log(home / "jobs" / "p1" / "real", "master-replica-0", [(50.0, "real")])
    write_replica_log(home / "jobs" / "p2" / "secret", "master-replica-0", [(50.0, "secret")])
    quoted = json.dumps(job_id)
    for model_field in ("job_id", "model_id"):
        body = {
            "resourceNames": ["projects/p1"],
            "filter": f"resource.labels.{model_field}={quoted}",
        }
        assert list_entries(logs, body) == {}  # an empty answer, not an error


@pytest.mark.parametrize("order", ["timestamp desc", "timestamp asc"])
def test_access_log_pages_resume_at_the_stores_cursor_when_rows_arrive_late(
    home: Path, order: str
) -> None:
    _app, platform = build_app(Settings(home=home))
    platform.access.enforcing = False
    try:
        assert platform.logs is not None
        platform.models.create("p1", {"name": "m"})
        writer = platform.request_logs.writer
        policy = LoggingPolicy("p1", "m", "v1", access_log=True)
        base = (int(time.time()) - 3600) * 1_000_000  # an hour ago: before the listing
        for second in range(1, 7):
            writer.offer_access(policy, base + second * 1_000_000, 0.01, 200 + second, 10, 20)
        writer.flush()
        body = {
            "resourceNames": ["projects/p1"],
            "filter": "resource.labels.model_id=m",
            "orderBy": order,
            "pageSize": 2,
        }
        first = list_entries(platform.logs, body)
        # A row of an earlier moment flushed late (the writer batches): it sorts among the
        # rows already shown, so resuming by position would repeat or skip one.
        middle = 6 if order.endswith("desc") else 2  # between the two rows shown
        writer.offer_access(policy, base + middle * 1_000_000 - 500_000, 0.01, 999, 10, 20)
        writer.flush()
        entries = list(first["entries"])
        token = first.get("nextPageToken")
        while token:
            page = list_entries(platform.logs, {**body, "pageToken": token})
            entries += page.get("entries", [])
            token = page.get("nextPageToken")
        statuses = [e["httpRequest"]["status"] for e in entries]
        expected = [201, 202, 203, 204, 205, 206]
        assert statuses == (expected[::-1] if order.endswith("desc") else expected)
        ids = [e["insertId"] for e in entries]
        assert len(set(ids)) == 6 and all(i.startswith("access-") for i in ids)
    finally:
        platform.stop()


def test_links_to_directories_are_not_followed(logs: LogService, home: Path) -> None:
    other = home / "jobs" / "p2" / "secret"
    write_replica_log(other, "master-replica-0", [(50.0, "p2's secret line")])
    write_replica_log(other / "trials" / "1", "master-replica-0", [(50.0, "p2's trial line")])
    sneaky = home / "jobs" / "p1" / "sneaky"
    (sneaky / "trials").mkdir(parents=True)
    (sneaky / "logs").symlink_to(other / "logs")
    (sneaky / "trials" / "7").symlink_to(other / "trials" / "1")
    (home / "jobs" / "p1" / "linked_job").symlink_to(other)
    assert list_entries(logs, {"resourceNames": ["projects/p1"]}) == {}
