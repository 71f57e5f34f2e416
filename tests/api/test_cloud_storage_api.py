"""Cloud Storage's JSON API on local buckets, driven by Google's own client libraries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.remote import unique


def bucket_name(prefix: str) -> str:
    return unique(prefix).replace("_", "-").lower()


def project_name(prefix: str) -> str:
    return unique(prefix).replace("_", "-")


def storage_client(server: Any, project: str):  # type: ignore[no-untyped-def]
    from google.cloud import storage

    return storage.Client(
        project=project,
        credentials=server.credentials(),
        client_options={"api_endpoint": server.url},
    )


def test_google_cloud_storage_round_trip(cairn_server: Any, tmp_path: Path) -> None:
    project = project_name("gcs")
    client = storage_client(cairn_server, project)
    name = bucket_name("gcs")
    bucket = client.create_bucket(name)
    assert bucket.name == name
    assert name in [b.name for b in client.list_buckets()]
    assert client.get_bucket(name).name == name

    small = bucket.blob("models/run 1/model.txt")
    small.upload_from_string("hello cairn")  # multipart upload
    assert small.download_as_bytes() == b"hello cairn"
    # A resumable upload in several chunks (the library's path for files above 8 MiB).
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 4096 * 3)  # 3 MiB
    blob = bucket.blob("models/big.bin", chunk_size=1024 * 1024)
    blob.upload_from_filename(str(big))
    fetched = tmp_path / "fetched.bin"
    bucket.blob("models/big.bin").download_to_filename(str(fetched))
    assert fetched.read_bytes() == big.read_bytes()
    assert (
        bucket.blob("models/big.bin").download_as_bytes(start=10, end=19) == big.read_bytes()[10:20]
    )

    info = bucket.get_blob("models/big.bin")
    assert info is not None and info.size == big.stat().st_size
    assert bucket.get_blob("models/missing") is None

    listed = [b.name for b in client.list_blobs(name, prefix="models/")]
    assert listed == ["models/big.bin", "models/run 1/model.txt"]
    pages = client.list_blobs(name, max_results=None, page_size=1)
    assert [b.name for b in pages] == ["models/big.bin", "models/run 1/model.txt"]
    folders = client.list_blobs(name, delimiter="/")
    assert list(folders) == [] and folders.prefixes == {"models/"}
    folders = client.list_blobs(name, prefix="models/", delimiter="/")
    assert [b.name for b in folders] == ["models/big.bin"]
    assert folders.prefixes == {"models/run 1/"}

    bucket.copy_blob(small, bucket, "copies/model.txt")
    assert bucket.blob("copies/model.txt").download_as_bytes() == b"hello cairn"
    bucket.blob("copies/rewritten.txt").rewrite(small)
    assert bucket.blob("copies/rewritten.txt").download_as_text() == "hello cairn"

    small.delete()
    assert not small.exists()
    from google.api_core.exceptions import NotFound

    with pytest.raises(NotFound):
        small.delete()
    with pytest.raises(NotFound):
        small.download_as_bytes()


def test_gcsfs_lists_and_reads(cairn_server: Any) -> None:
    # The plain file system: gcsfs's experimental one first asks a gRPC API Cairn lacks.
    from gcsfs.core import GCSFileSystem

    project = project_name("gcsfs")
    client = storage_client(cairn_server, project)
    name = bucket_name("gcsfs")
    bucket = client.create_bucket(name)
    bucket.blob("data/train.csv").upload_from_string("a,b\n1,2\n")
    bucket.blob("data/eval/part-0.csv").upload_from_string("a,b\n3,4\n")
    fs = GCSFileSystem(
        project=project, token=cairn_server.credentials(), endpoint_url=cairn_server.url
    )
    assert sorted(fs.ls(f"{name}/data")) == [f"{name}/data/eval", f"{name}/data/train.csv"]
    with fs.open(f"gs://{name}/data/train.csv", "rb") as handle:
        assert handle.read() == b"a,b\n1,2\n"
    assert fs.cat(f"{name}/data/eval/part-0.csv") == b"a,b\n3,4\n"
    assert fs.info(f"{name}/data/train.csv")["size"] == 8
    with fs.open(f"{name}/out/written.txt", "wb") as handle:
        handle.write(b"from gcsfs")
    assert bucket.blob("out/written.txt").download_as_bytes() == b"from gcsfs"
    assert sorted(fs.find(f"{name}/data")) == [
        f"{name}/data/eval/part-0.csv",
        f"{name}/data/train.csv",
    ]


def test_object_api_edges(cairn_server: Any) -> None:
    project = project_name("edges")
    name = bucket_name("edges")
    headers = cairn_server.headers()
    url = cairn_server.url
    created = httpx.post(
        f"{url}/storage/v1/b", params={"project": project}, json={"name": name}, headers=headers
    )
    assert created.status_code == 200, created.text
    again = httpx.post(
        f"{url}/storage/v1/b", params={"project": project}, json={"name": name}, headers=headers
    )
    assert again.status_code == 409
    put = httpx.post(
        f"{url}/upload/storage/v1/b/{name}/o",
        params={"uploadType": "media", "name": "a/b.txt"},
        content=b"0123456789",
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 200, put.text
    assert put.json()["size"] == "10" and put.json()["md5Hash"]

    missing = httpx.get(f"{url}/storage/v1/b/{name}/o/nope.txt", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 404
    assert missing.json()["error"]["message"] == f"No such object: {name}/nope.txt"
    no_bucket = httpx.get(f"{url}/storage/v1/b/no-such-bucket-x/o/a", headers=headers)
    assert no_bucket.status_code == 404 and "bucket" in no_bucket.json()["error"]["message"]
    folder = httpx.get(f"{url}/storage/v1/b/{name}/o/a", headers=headers)
    assert folder.status_code == 404  # a folder is not an object

    media = f"{url}/storage/v1/b/{name}/o/a%2Fb.txt"
    ranged = httpx.get(media, params={"alt": "media"}, headers={**headers, "Range": "bytes=2-4"})
    assert ranged.status_code == 206 and ranged.content == b"234"
    assert ranged.headers["content-range"] == "bytes 2-4/10"
    tail = httpx.get(media, params={"alt": "media"}, headers={**headers, "Range": "bytes=-3"})
    assert tail.content == b"789"
    open_ended = httpx.get(media, params={"alt": "media"}, headers={**headers, "Range": "bytes=8-"})
    assert open_ended.content == b"89"
    beyond = httpx.get(media, params={"alt": "media"}, headers={**headers, "Range": "bytes=10-"})
    assert beyond.status_code == 416 and beyond.json()["error"]["code"] == 416

    for escape in ("..%2F..%2Fetc%2Fpasswd", "a%2F..%2F..%2Fx", "%2E%2E%2Fx"):
        response = httpx.get(f"{url}/storage/v1/b/{name}/o/{escape}", headers=headers)
        assert response.status_code == 400, (escape, response.text)
        upload = httpx.post(
            f"{url}/upload/storage/v1/b/{name}/o",
            params={"uploadType": "media", "name": escape.replace("%2F", "/")},
            content=b"x",
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 400, (escape, upload.text)
    for bad_bucket in ("%2E%2E", "UPPER", "a"):
        response = httpx.get(f"{url}/storage/v1/b/{bad_bucket}/o", headers=headers)
        assert response.status_code == 400, (bad_bucket, response.text)
    token = httpx.get(f"{url}/storage/v1/b/{name}/o", params={"pageToken": "%%%"}, headers=headers)
    assert token.status_code == 400
    unknown = httpx.post(
        f"{url}/upload/storage/v1/b/{name}/o",
        params={"uploadType": "chunked", "name": "x"},
        content=b"x",
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert unknown.status_code == 400
    deleted = httpx.delete(f"{url}/storage/v1/b/{name}/o/a%2Fb.txt", headers=headers)
    assert deleted.status_code == 204
    listed = httpx.get(f"{url}/storage/v1/b/{name}/o", headers=headers).json()
    assert "items" not in listed and "prefixes" not in listed


def test_an_object_swapped_for_a_link_after_its_lookup_is_not_served(tmp_path: Path) -> None:
    """A job writes into buckets and could replace an object with a link to a server file
    between the lookup and the read: the read opens no link and checks what it opened."""
    from cairn.api.storage import _StorageApi
    from cairn.domain.errors import ApiError
    from cairn.storage import BucketStorage
    from cairn.storage.listing import stat

    storage = BucketStorage(tmp_path / "storage")
    (tmp_path / "storage" / "bkt").mkdir(parents=True)
    (tmp_path / "storage" / "bkt" / "decoy.bin").write_bytes(b"decoy")
    secret = tmp_path / "owner.json"
    secret.write_text("the server's credential")
    api = object.__new__(_StorageApi)
    api.storage = storage
    entry = stat(storage.locate("gs://bkt/decoy.bin"))
    assert entry is not None
    with api._open_inside(entry) as handle:
        assert handle.read() == b"decoy"
    (tmp_path / "storage" / "bkt" / "decoy.bin").unlink()
    (tmp_path / "storage" / "bkt" / "decoy.bin").symlink_to(secret)
    with pytest.raises(ApiError) as refused:
        api._open_inside(entry)
    assert refused.value.code.name == "NOT_FOUND"
