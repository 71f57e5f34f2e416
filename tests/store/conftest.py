"""Store fixtures: every contract test runs once on SQLite and once on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cairn.store import MetadataStore

from .postgres_harness import PostgresCluster, missing_reason, start_cluster

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the whole session, removed at the end."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(f"PostgreSQL backend not testable here: {reason}")
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_store_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], str]:
    """A factory of URLs of fresh, empty databases on the backend under test."""
    counter = iter(range(1_000_000))

    def make() -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'cairn-{next(counter)}.db'}"
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        return cluster.create_database()

    return make


@pytest.fixture
def open_store() -> Iterator[Callable[[str], MetadataStore]]:
    """A factory opening MetadataStores on a URL; all are closed after the test."""
    opened: list[MetadataStore] = []

    def open_(url: str) -> MetadataStore:
        store = MetadataStore(url)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store_url(new_store_url: Callable[[], str]) -> str:
    return new_store_url()


@pytest.fixture
def store(store_url: str, open_store: Callable[[str], MetadataStore]) -> MetadataStore:
    """A freshly migrated, empty store on the backend under test."""
    return open_store(store_url)
