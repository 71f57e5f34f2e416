"""The store contract (docs/store.md), checked against every backend.

Each test takes the `store` fixture, which is parametrised over SQLite and PostgreSQL, so a
backend passes only if it meets every clause. Tests use real databases and real threads.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.domain.errors import ApiError, Code
from cairn.store import DocumentRepository, DuplicateKeyError, EtagMismatchError, MetadataStore
from cairn.store.migrate import head_revision
from cairn.store.schema import metadata

OpenStore = Callable[[str], MetadataStore]


def _repositories(store: MetadataStore) -> dict[str, tuple[DocumentRepository, tuple[str, ...]]]:
    """Each repository with a sample key of the right shape."""
    return {
        "jobs": (store.jobs, ("proj", "job_1")),
        "models": (store.models, ("proj", "census")),
        "versions": (store.versions, ("proj", "census", "v1")),
        "operations": (store.operations, ("proj", "op-1")),
    }


REPOSITORY_NAMES = ["jobs", "models", "versions", "operations"]


# --- insert / get ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", REPOSITORY_NAMES)
def test_insert_then_get_returns_the_document(store: MetadataStore, name: str) -> None:
    repo, key = _repositories(store)[name]
    doc = {"name": "/".join(key), "state": "QUEUED", "labels": {"team": "a"}}
    repo.insert(key, doc)
    assert repo.get(key) == doc
    assert repo.get((*key[:-1], "absent")) is None


def test_get_returns_a_copy_the_caller_may_change(store: MetadataStore) -> None:
    store.models.insert(("p", "m"), {"labels": {"a": "1"}})
    got = store.models.get(("p", "m"))
    assert got is not None
    got["labels"]["a"] = "changed"
    assert store.models.get(("p", "m")) == {"labels": {"a": "1"}}


@pytest.mark.parametrize("name", REPOSITORY_NAMES)
def test_duplicate_insert_is_refused_and_keeps_the_original(
    store: MetadataStore, name: str
) -> None:
    repo, key = _repositories(store)[name]
    repo.insert(key, {"v": 1})
    with pytest.raises(DuplicateKeyError) as raised:
        repo.insert(key, {"v": 2})
    assert raised.value.code is Code.ALREADY_EXISTS
    assert isinstance(raised.value, ApiError)
    assert repo.get(key) == {"v": 1}


def test_same_id_in_another_project_or_model_is_not_a_duplicate(store: MetadataStore) -> None:
    store.jobs.insert(("p1", "j"), {"p": 1})
    store.jobs.insert(("p2", "j"), {"p": 2})
    store.versions.insert(("p1", "a", "v1"), {"m": "a"})
    store.versions.insert(("p1", "b", "v1"), {"m": "b"})
    assert store.jobs.get(("p1", "j")) == {"p": 1}
    assert store.jobs.get(("p2", "j")) == {"p": 2}
    assert store.versions.get(("p1", "b", "v1")) == {"m": "b"}


def test_keys_of_the_wrong_shape_are_a_programming_error(store: MetadataStore) -> None:
    with pytest.raises(ValueError):
        store.versions.get(("p", "m"))
    with pytest.raises(ValueError):
        store.jobs.insert(("p", "j", "extra"), {})
    with pytest.raises(ValueError):
        store.jobs.page(("p", "j"))


# --- update ---------------------------------------------------------------------------------


def test_update_applies_mutate_and_returns_the_stored_document(store: MetadataStore) -> None:
    store.jobs.insert(("p", "j"), {"state": "QUEUED", "n": 1})
    seen: list[dict[str, Any]] = []

    def to_running(doc: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(doc))
        return {**doc, "state": "RUNNING", "n": doc["n"] + 1}

    assert store.jobs.update(("p", "j"), to_running) == {"state": "RUNNING", "n": 2}
    assert seen == [{"state": "QUEUED", "n": 1}]
    assert store.jobs.get(("p", "j")) == {"state": "RUNNING", "n": 2}


def test_update_of_a_missing_key_returns_none_without_calling_mutate(
    store: MetadataStore,
) -> None:
    calls: list[dict[str, Any]] = []

    def record(doc: dict[str, Any]) -> dict[str, Any]:
        calls.append(doc)
        return doc

    assert store.jobs.update(("p", "nope"), record) is None
    assert calls == []
    assert store.jobs.get(("p", "nope")) is None


def test_mutate_returning_none_leaves_the_document_even_if_it_edited_its_copy(
    store: MetadataStore,
) -> None:
    store.jobs.insert(("p", "j"), {"state": "SUCCEEDED"})

    def edit_copy_and_decline(doc: dict[str, Any]) -> None:
        doc["state"] = "RUNNING"

    assert store.jobs.update(("p", "j"), edit_copy_and_decline) == {"state": "SUCCEEDED"}
    assert store.jobs.get(("p", "j")) == {"state": "SUCCEEDED"}
    assert store.jobs.in_states(["RUNNING"]) == []


def test_mutate_that_raises_writes_nothing(store: MetadataStore) -> None:
    store.jobs.insert(("p", "j"), {"state": "SUCCEEDED"})

    def refuse(doc: dict[str, Any]) -> dict[str, Any]:
        raise ApiError(Code.FAILED_PRECONDITION, "already finished")

    with pytest.raises(ApiError, match="already finished"):
        store.jobs.update(("p", "j"), refuse)
    assert store.jobs.get(("p", "j")) == {"state": "SUCCEEDED"}
    # the failed update released its lock: the next one goes through
    assert store.jobs.update(("p", "j"), lambda d: {**d, "x": 1}) == {"state": "SUCCEEDED", "x": 1}


def test_concurrent_updates_lose_nothing(store: MetadataStore, open_store: OpenStore) -> None:
    """8 threads x 50 increments, half through a second store (own engine and connections)."""
    other = open_store(store.url)
    store.jobs.insert(("p", "counter"), {"count": 0})
    threads, increments = 8, 50
    start = threading.Barrier(threads)

    def increment(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "count": doc["count"] + 1}

    def worker(index: int) -> None:
        target = store if index % 2 else other
        start.wait()
        for _ in range(increments):
            assert target.jobs.update(("p", "counter"), increment) is not None

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    assert store.jobs.get(("p", "counter")) == {"count": threads * increments}


def test_etag_match_lets_the_update_through(store: MetadataStore) -> None:
    store.models.insert(("p", "m"), {"etag": "e1", "description": "old"})
    updated = store.models.update(
        ("p", "m"), lambda d: {**d, "description": "new", "etag": "e2"}, expect_etag="e1"
    )
    assert updated == {"etag": "e2", "description": "new"}


def test_etag_mismatch_is_refused_and_changes_nothing(store: MetadataStore) -> None:
    store.models.insert(("p", "m"), {"etag": "e2", "description": "current"})
    with pytest.raises(EtagMismatchError) as raised:
        store.models.update(("p", "m"), lambda d: {**d, "description": "lost"}, expect_etag="e1")
    assert raised.value.code is Code.ABORTED
    assert store.models.get(("p", "m")) == {"etag": "e2", "description": "current"}
    store.jobs.insert(("p", "j"), {})
    with pytest.raises(EtagMismatchError):  # a document without an etag matches no etag
        store.jobs.update(("p", "j"), lambda d: {"changed": True}, expect_etag="e1")
    assert store.jobs.get(("p", "j")) == {}


def test_of_racing_writers_with_one_etag_exactly_one_wins(store: MetadataStore) -> None:
    store.models.insert(("p", "m"), {"etag": "e0", "winner": None})
    writers = 8
    start = threading.Barrier(writers)

    def attempt(index: int) -> bool:
        start.wait()
        try:
            store.models.update(
                ("p", "m"),
                lambda d: {**d, "winner": index, "etag": uuid.uuid4().hex},
                expect_etag="e0",
            )
        except EtagMismatchError:
            return False
        return True

    with ThreadPoolExecutor(writers) as pool:
        results = list(pool.map(attempt, range(writers)))
    assert results.count(True) == 1
    doc = store.models.get(("p", "m"))
    assert doc is not None and doc["winner"] == results.index(True)


# --- delete ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REPOSITORY_NAMES)
def test_delete_removes_only_that_key(store: MetadataStore, name: str) -> None:
    repo, key = _repositories(store)[name]
    neighbour = (*key[:-1], "neighbour")
    repo.insert(key, {"a": 1})
    repo.insert(neighbour, {"b": 2})
    assert repo.delete(key) is True
    assert repo.get(key) is None
    assert repo.delete(key) is False
    assert repo.get(neighbour) == {"b": 2}
    repo.insert(key, {"again": True})  # the key is free again
    assert repo.get(key) == {"again": True}


# --- paging ---------------------------------------------------------------------------------


def _insert_jobs(store: MetadataStore, ids: list[str], project: str = "p") -> None:
    for job_id in ids:
        store.jobs.insert((project, job_id), {"jobId": job_id, "state": "QUEUED"})


def _all_pages(
    repo: DocumentRepository, parent: tuple[str, ...], limit: int, **filters: Any
) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        docs, cursor = repo.page(parent, after=cursor, limit=limit, **filters)
        pages.append(docs)
        if cursor is None:
            return pages


def test_pages_follow_creation_order_not_key_order(store: MetadataStore) -> None:
    ids = [f"job_{n:02d}" for n in (17, 3, 24, 1, 9)] + [f"j{n}" for n in range(20)]
    _insert_jobs(store, ids)
    pages = _all_pages(store.jobs, ("p",), limit=10)
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [doc["jobId"] for page in pages for doc in page] == ids


def test_last_full_page_has_no_cursor_and_empty_parent_has_one_empty_page(
    store: MetadataStore,
) -> None:
    assert store.jobs.page(("p",)) == ([], None)
    _insert_jobs(store, [f"j{n}" for n in range(20)])
    first, cursor = store.jobs.page(("p",), limit=10)
    second, end = store.jobs.page(("p",), after=cursor, limit=10)
    assert len(first) == len(second) == 10
    assert end is None
    everything, none = store.jobs.page(("p",), limit=20)
    assert len(everything) == 20 and none is None


def test_cursor_survives_deletes_and_later_inserts(store: MetadataStore) -> None:
    _insert_jobs(store, ["a", "b", "c", "d", "e"])
    first, cursor = store.jobs.page(("p",), limit=2)
    assert [d["jobId"] for d in first] == ["a", "b"]
    store.jobs.delete(("p", "b"))  # the cursor's own document
    store.jobs.delete(("p", "a"))
    _insert_jobs(store, ["a"])  # re-created: it is newer now, so it comes last
    rest = _all_pages(store.jobs, ("p",), limit=2)
    assert [d["jobId"] for d in rest[0]] == ["c", "d"]
    after_cursor = _all_pages_after(store.jobs, cursor)
    assert [d["jobId"] for d in after_cursor] == ["c", "d", "e", "a"]


def _all_pages_after(repo: DocumentRepository, cursor: str | None) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    while cursor is not None:
        page, cursor = repo.page(("p",), after=cursor, limit=3)
        docs.extend(page)
    return docs


def test_an_updated_document_keeps_its_place(store: MetadataStore) -> None:
    _insert_jobs(store, ["a", "b", "c"])
    store.jobs.update(("p", "a"), lambda d: {**d, "state": "RUNNING"})
    docs, _ = store.jobs.page(("p",))
    assert [d["jobId"] for d in docs] == ["a", "b", "c"]


@pytest.mark.parametrize("token", ["garbage", "", "czE6LTE", "eDp5"])
def test_a_cursor_we_did_not_issue_is_invalid_argument(store: MetadataStore, token: str) -> None:
    with pytest.raises(ApiError) as raised:
        store.jobs.page(("p",), after=token)
    assert raised.value.code is Code.INVALID_ARGUMENT
    assert "pageToken" in raised.value.message


def test_state_filter_pages_only_matching_documents(store: MetadataStore) -> None:
    for n in range(12):
        state = "FAILED" if n % 3 == 0 else "SUCCEEDED"
        store.jobs.insert(("p", f"j{n}"), {"n": n, "state": state})
    pages = _all_pages(store.jobs, ("p",), limit=2, states=["FAILED"])
    assert [d["n"] for page in pages for d in page] == [0, 3, 6, 9]
    both = _all_pages(store.jobs, ("p",), limit=5, states={"FAILED", "SUCCEEDED"})
    assert [d["n"] for page in both for d in page] == list(range(12))
    assert store.jobs.page(("p",), states=[]) == ([], None)


# --- parents --------------------------------------------------------------------------------


def test_versions_are_listed_and_counted_under_their_own_model_only(
    store: MetadataStore,
) -> None:
    for version in ("v1", "v2", "v3"):
        store.versions.insert(("p", "a", version), {"name": f"a/{version}"})
    store.versions.insert(("p", "b", "v1"), {"name": "b/v1"})
    store.versions.insert(("other", "a", "v9"), {"name": "other/a/v9"})
    assert [d["name"] for d in store.versions.page(("p", "a"))[0]] == ["a/v1", "a/v2", "a/v3"]
    assert [d["name"] for d in store.versions.page(("p", "b"))[0]] == ["b/v1"]
    assert store.versions.count(("p", "a")) == 3
    assert store.versions.count(("p", "b")) == 1
    assert store.versions.count(("p", "c")) == 0
    assert store.versions.count(("p",)) == 4  # a shorter prefix covers every model


@pytest.mark.parametrize("name", ["jobs", "models", "operations"])
def test_projects_are_isolated(store: MetadataStore, name: str) -> None:
    repo, _ = _repositories(store)[name]
    repo.insert(("alpha", "x"), {"project": "alpha"})
    repo.insert(("beta", "x"), {"project": "beta"})
    repo.insert(("beta", "y"), {"project": "beta"})
    assert repo.page(("alpha",)) == ([{"project": "alpha"}], None)
    assert repo.count(("beta",)) == 2
    assert repo.count(("gamma",)) == 0
    repo.delete(("beta", "x"))
    assert repo.get(("alpha", "x")) == {"project": "alpha"}


# --- states and recovery --------------------------------------------------------------------


def test_in_states_finds_unfinished_work_in_every_project(store: MetadataStore) -> None:
    store.jobs.insert(("p1", "done"), {"state": "SUCCEEDED"})
    store.jobs.insert(("p1", "busy"), {"state": "RUNNING"})
    store.jobs.insert(("p2", "busy"), {"state": "RUNNING"})
    store.jobs.insert(("p2", "cancelling"), {"state": "CANCELLING"})
    store.versions.insert(("p3", "m", "v1"), {"state": "CREATING"})
    found = store.jobs.in_states(["RUNNING", "CANCELLING"])
    assert [key for key, _ in found] == [("p1", "busy"), ("p2", "busy"), ("p2", "cancelling")]
    assert found[0][1] == {"state": "RUNNING"}
    assert store.versions.in_states({"CREATING"}) == [(("p3", "m", "v1"), {"state": "CREATING"})]
    assert store.jobs.in_states([]) == []


def test_state_column_follows_the_document(store: MetadataStore) -> None:
    store.jobs.insert(("p", "j"), {"state": "QUEUED"})
    store.jobs.update(("p", "j"), lambda d: {**d, "state": "RUNNING"})
    assert [k for k, _ in store.jobs.in_states(["RUNNING"])] == [("p", "j")]
    store.jobs.update(("p", "j"), lambda d: {**d, "state": "SUCCEEDED"})
    assert store.jobs.in_states(["RUNNING", "QUEUED"]) == []
    assert store.jobs.page(("p",), states=["SUCCEEDED"])[0] == [{"state": "SUCCEEDED"}]


def test_explicit_state_serves_documents_without_a_state_field(store: MetadataStore) -> None:
    store.operations.insert(("p", "op"), {"done": False}, state="RUNNING")
    assert store.operations.in_states(["RUNNING"]) == [(("p", "op"), {"done": False})]
    store.operations.update(("p", "op"), lambda d: {**d, "metadata": {}})  # state unchanged
    assert len(store.operations.in_states(["RUNNING"])) == 1
    store.operations.update(("p", "op"), lambda d: {**d, "done": True}, state="DONE")
    assert store.operations.in_states(["RUNNING"]) == []
    final = {"done": True, "metadata": {}}
    assert store.operations.in_states(["DONE"]) == [(("p", "op"), final)]
    store.operations.update(("p", "op"), lambda d: None, state="ARCHIVED")
    assert store.operations.in_states(["ARCHIVED"]) == [(("p", "op"), final)]


# --- runtime key-value ----------------------------------------------------------------------


def test_runtime_put_get_replace_delete(store: MetadataStore) -> None:
    assert store.runtime.get("replica/p/j/master-0") is None
    store.runtime.put("replica/p/j/master-0", {"pid": 41, "host": "127.0.0.1"})
    assert store.runtime.get("replica/p/j/master-0") == {"pid": 41, "host": "127.0.0.1"}
    store.runtime.put("replica/p/j/master-0", {"pid": 42})
    assert store.runtime.get("replica/p/j/master-0") == {"pid": 42}
    assert store.runtime.delete("replica/p/j/master-0") is True
    assert store.runtime.delete("replica/p/j/master-0") is False
    assert store.runtime.get("replica/p/j/master-0") is None


def test_runtime_items_lists_a_prefix_exactly(store: MetadataStore) -> None:
    store.runtime.put("replica/b", {"pid": 2})
    store.runtime.put("replica/a", {"pid": 1})
    store.runtime.put("Replica/c", {"pid": 3})
    store.runtime.put("replica%x", {"pid": 4})  # LIKE wildcards must not leak in
    store.runtime.put("lease", {"owner": "me"})
    assert store.runtime.items("replica/") == {"replica/a": {"pid": 1}, "replica/b": {"pid": 2}}
    assert len(store.runtime.items()) == 5


def test_concurrent_runtime_puts_of_one_key_never_fail(store: MetadataStore) -> None:
    def put(index: int) -> None:
        store.runtime.put("lease", {"owner": index})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(40)))
    value = store.runtime.get("lease")
    assert value is not None and value["owner"] in range(40)


# --- migrations -----------------------------------------------------------------------------


def test_reopening_migrates_nothing_and_keeps_data(store_url: str, open_store: OpenStore) -> None:
    first = open_store(store_url)
    first.jobs.insert(("p", "j"), {"state": "RUNNING"})
    first.close()
    second = open_store(store_url)
    assert second.jobs.get(("p", "j")) == {"state": "RUNNING"}
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
    finally:
        engine.dispose()


def test_stores_opened_at_once_on_a_fresh_database_all_work(
    store_url: str, open_store: OpenStore
) -> None:
    start = threading.Barrier(4)

    def open_and_insert(index: int) -> None:
        start.wait()
        store = MetadataStore(store_url)
        try:
            store.jobs.insert(("p", f"j{index}"), {"n": index})
        finally:
            store.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(open_and_insert, range(4)))
    assert open_store(store_url).jobs.count(("p",)) == 4


def test_migrations_build_exactly_the_tables_the_code_queries(store: MetadataStore) -> None:
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


# --- documents round-trip -------------------------------------------------------------------


def test_unicode_and_nested_json_round_trip(store: MetadataStore) -> None:
    doc = {
        "description": 'Prévision 天気 🌦️ — «quotes» "escaped" \\ back\nslash\ttab \u0000 nul',
        "labels": {"ключ": "значение", "emoji_🔑": "✓"},
        "trainingInput": {
            "args": ["--lr", "0.1", ""],
            "hyperparameters": {"params": [{"minValue": 1e-9, "maxValue": 1.5e300}]},
            "workerCount": "9007199254740993",
        },
        "nested": [[[{"deep": [None, True, False, 0, -1, 2**63 - 1, -(2**63)]}]]],
        "empty": {"list": [], "map": {}, "string": ""},
    }
    store.jobs.insert(("p", "ユニコード"), doc)
    assert store.jobs.get(("p", "ユニコード")) == doc
    docs, _ = store.jobs.page(("p",))
    assert docs == [doc]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(doc=st.dictionaries(st.text(), _json, max_size=5))
def test_any_json_object_round_trips(store: MetadataStore, doc: dict[str, Any]) -> None:
    key = ("p", uuid.uuid4().hex)
    store.models.insert(key, doc)
    assert store.models.get(key) == doc
    assert store.models.update(key, lambda d: d) == doc
