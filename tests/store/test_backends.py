"""What only one backend promises: SQLite's pragmas and writers in separate processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from cairn.store import MetadataStore
from cairn.store.database import SQLITE_BUSY_TIMEOUT_MS


def test_sqlite_file_is_in_wal_mode_with_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "cairn.db"
    with MetadataStore(f"sqlite:///{path}") as store:
        store.jobs.insert(("p", "j"), {})
        with store._database.engine.connect() as conn:
            pragma = conn.exec_driver_sql
            assert pragma("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
            assert pragma("PRAGMA foreign_keys").scalar() == 1
    # WAL is a property of the file: a plain sqlite3 connection sees it too
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_sqlite_is_one_database_shared_by_threads() -> None:
    with MetadataStore("sqlite://") as store:
        store.models.insert(("p", "m"), {"n": 0})
        from concurrent.futures import ThreadPoolExecutor

        def bump(_: int) -> None:
            store.models.update(("p", "m"), lambda d: {"n": d["n"] + 1})

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(bump, range(40)))
        assert store.models.get(("p", "m")) == {"n": 40}


def _increment_many(url: str, times: int) -> None:
    with MetadataStore(url) as store:
        for _ in range(times):
            store.jobs.update(("p", "counter"), lambda d: {"count": d["count"] + 1})


@pytest.mark.slow
def test_sqlite_writers_in_separate_processes_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cairn.db'}"
    with MetadataStore(url) as store:
        store.jobs.insert(("p", "counter"), {"count": 0})
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_increment_many, args=(url, 30)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    with MetadataStore(url) as store:
        assert store.jobs.get(("p", "counter")) == {"count": 120}
