"""Where local packages and model directories are uploaded, through the upload endpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.client.fake_ml import FakeMl

from cairn.client import CairnClient
from cairn.client.staging import (
    package_destination,
    split_gs_uri,
    stage_directory,
    stage_packages,
)
from cairn.domain.errors import ApiError


def test_destination_prefers_the_staging_bucket() -> None:
    assert package_destination("job1", "gs://stage/pre", "gs://out/x") == "gs://stage/pre/job1"
    assert package_destination("job1", None, "gs://out/x/") == "gs://out/x/packages"
    with pytest.raises(ApiError, match="--staging-bucket"):
        package_destination("job1", None, "/local/dir")


def test_split_gs_uri_rejects_other_schemes() -> None:
    assert split_gs_uri("gs://b/a/c", "--x") == ("b", "a/c")
    with pytest.raises(ApiError, match="--x"):
        split_gs_uri("s3://b/a", "--x")


def test_packages_land_under_the_digest_of_all_files(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("POST", "/upload/storage/v1/b/stage/o", {"bucket": "stage"})
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.whl"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    digest = hashlib.sha256(b"onetwo").hexdigest()
    uris = stage_packages(CairnClient(fake_ml.url, "p"), [first, second], "gs://stage/job1")
    assert uris == [f"gs://stage/job1/{digest}/a.tar.gz", f"gs://stage/job1/{digest}/b.whl"]
    assert [(r.query["name"], r.body) for r in fake_ml.requests] == [
        (f"job1/{digest}/a.tar.gz", b"one"),
        (f"job1/{digest}/b.whl", b"two"),
    ]


def test_duplicate_basenames_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    files = [tmp_path / "x" / "p.tar.gz", tmp_path / "y" / "p.tar.gz"]
    for path in files:
        path.write_bytes(b"1")
    with pytest.raises(ApiError, match="p.tar.gz"):
        stage_packages(CairnClient("http://127.0.0.1:1", "p"), files, "gs://s/j")


def test_a_directory_keeps_its_layout(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("POST", "/upload/storage/v1/b/stage/o", {"bucket": "stage"})
    (tmp_path / "variables").mkdir()
    (tmp_path / "saved_model.pb").write_bytes(b"pb")
    (tmp_path / "variables" / "v.index").write_bytes(b"ix")
    folder = stage_directory(CairnClient(fake_ml.url, "p"), tmp_path, "gs://stage/m_v1")
    assert folder.startswith("gs://stage/m_v1/") and folder.endswith("/")
    prefix = folder[len("gs://stage/") :]
    assert sorted(r.query["name"] for r in fake_ml.requests) == [
        f"{prefix}saved_model.pb",
        f"{prefix}variables/v.index",
    ]
