"""Resolving gs:// URIs to local paths, and refusing every way out of a bucket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.domain.errors import ApiError, Code
from cairn.storage import BucketStorage, is_bucket_uri, parse_bucket_uri


@pytest.fixture
def storage(tmp_path: Path) -> BucketStorage:
    return BucketStorage(tmp_path / "storage")


def test_is_bucket_uri_accepts_gs_and_s3_only() -> None:
    assert is_bucket_uri("gs://b/p")
    assert is_bucket_uri("s3://b/p")
    assert not is_bucket_uri("/tmp/gs://b")
    assert not is_bucket_uri("file:///tmp/x")
    assert not is_bucket_uri("gs:/b")


def test_gs_uri_maps_under_the_bucket(storage: BucketStorage) -> None:
    assert storage.local_path("gs://my-bucket/a/b.txt") == storage.root / "my-bucket/a/b.txt"
    assert storage.local_path("gs://my-bucket") == storage.root / "my-bucket"
    assert storage.local_path("gs://my-bucket//a///b/") == storage.root / "my-bucket/a/b"


def test_local_paths_come_back_resolved(storage: BucketStorage, tmp_path: Path) -> None:
    assert storage.local_path(str(tmp_path / "x" / ".." / "y")) == (tmp_path / "y").resolve()
    assert storage.local_path(f"file://{tmp_path}/z") == (tmp_path / "z").resolve()


def test_uri_for_inverts_local_path(storage: BucketStorage, tmp_path: Path) -> None:
    for uri in ("gs://bkt/a/b.txt", "gs://bkt/deep/er/file"):
        assert storage.uri_for(storage.local_path(uri)) == uri
    assert storage.uri_for(storage.root / "bkt") == "gs://bkt/"
    with pytest.raises(ApiError) as outside:
        storage.uri_for(tmp_path / "elsewhere")
    assert outside.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(ApiError):
        storage.uri_for(storage.root)


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "Upper",
        "-dash",
        "dash-",
        "under_",
        "a..b",
        "x" * 64,
        "goog-x",
        "my-google",
        "192.168.1.1",
        "sp ace",
        "a/b",
        "*",
        "%2e%2e",
        "..",
    ],
)
def test_invalid_bucket_names_are_refused(storage: BucketStorage, bucket: str) -> None:
    with pytest.raises(ApiError) as refused:
        storage.local_path(f"gs://{bucket}/x")
    assert refused.value.code is Code.INVALID_ARGUMENT


@pytest.mark.parametrize("bucket", ["abc", "my_bucket-1", "a.b.c", "0zz", "x" * 63])
def test_valid_bucket_names_are_accepted(storage: BucketStorage, bucket: str) -> None:
    assert storage.local_path(f"gs://{bucket}/x") == storage.root / bucket / "x"


@pytest.mark.parametrize(
    "uri",
    [
        "gs://bkt/../other/x",
        "gs://bkt/a/../../x",
        "gs://bkt/..",
        "gs://bkt/./x",
        "gs://bkt/%2e%2e/x",
        "gs://bkt/%2E%2e/x",
        "gs://bkt/%252e%252e/x",
        "gs://bkt/a%2f..%2f..%2fx",
        "gs://bkt/..%5cx",
        "gs://bkt/a\\..\\..\\x",
        "gs://bkt/a\x00b",
        "gs://bkt/a%00b",
        "gs://bkt/line\nbreak",
        "gs://",
        "gs:///etc/passwd",
        "gs://bkt/" + "x" * 1025,
    ],
)
def test_escape_attempts_are_refused(storage: BucketStorage, uri: str) -> None:
    with pytest.raises(ApiError) as refused:
        storage.local_path(uri)
    assert refused.value.code is Code.INVALID_ARGUMENT
    assert "gs://" in refused.value.message


def test_absolute_looking_keys_stay_inside(storage: BucketStorage) -> None:
    path = storage.local_path("gs://bkt//etc/passwd")
    assert path == storage.root / "bkt/etc/passwd"


def test_symlinks_out_of_the_bucket_are_refused(storage: BucketStorage, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key").write_text("s3cr3t")
    bucket = storage.root / "bkt"
    bucket.mkdir(parents=True)
    (bucket / "door").symlink_to(outside)
    (bucket / "file-door").symlink_to(outside / "key")
    (bucket / "sibling").symlink_to(storage.root / "other")
    for uri in ("gs://bkt/door/key", "gs://bkt/file-door", "gs://bkt/sibling/x"):
        with pytest.raises(ApiError) as refused:
            storage.local_path(uri)
        assert refused.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(ApiError):
        storage.read_bytes("gs://bkt/file-door")
    assert storage.ls("gs://bkt") == []
    assert storage.glob("gs://bkt/**") == []


def test_symlinks_inside_the_bucket_are_followed(storage: BucketStorage) -> None:
    storage.write_bytes("gs://bkt/real/data.txt", b"ok")
    (storage.root / "bkt" / "alias").symlink_to(storage.root / "bkt" / "real")
    assert storage.read_bytes("gs://bkt/alias/data.txt") == b"ok"


def test_s3_parses_but_does_not_resolve(storage: BucketStorage) -> None:
    assert parse_bucket_uri("s3://bkt/x").bucket == "bkt"
    with pytest.raises(ApiError) as refused:
        storage.local_path("s3://bkt/x")
    assert refused.value.code is Code.UNIMPLEMENTED


def test_localize_arg(storage: BucketStorage) -> None:
    local = storage.root / "bkt" / "out"
    assert storage.localize_arg("gs://bkt/out") == str(local)
    assert storage.localize_arg("gs://bkt/out/") == f"{local}/"
    assert storage.localize_arg("--job-dir=gs://bkt/out") == f"--job-dir={local}"
    for unchanged in ("--epochs=3", "s3://b/x", "--data=s3://bkt/x", "plain", "x=gs://bkt/a"):
        assert storage.localize_arg(unchanged) == unchanged
    with pytest.raises(ApiError):
        storage.localize_arg("--job-dir=gs://bkt/../x")


_KEY_ALPHABET = st.sampled_from(list("ab./\\%2eE5cfF0\x00\n~:*?[]") + ["..", "%2e", "%25"])


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(_KEY_ALPHABET, max_size=12), text=st.text(max_size=20))
def test_no_generated_key_resolves_outside_its_bucket(
    storage: BucketStorage, parts: list[str], text: str
) -> None:
    bucket_dir = storage.root / "bkt"
    bucket_dir.mkdir(parents=True, exist_ok=True)
    for key in ("".join(parts), text, "".join(parts) + text):
        try:
            path = storage.local_path(f"gs://bkt/{key}")
        except ApiError as error:
            assert error.code is Code.INVALID_ARGUMENT
            continue
        real = Path(os.path.realpath(path))
        assert real == bucket_dir or real.is_relative_to(bucket_dir), key
