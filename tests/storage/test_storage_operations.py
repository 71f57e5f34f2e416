"""gsutil semantics of cp, ls, glob, rm and snapshots on real local buckets."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.filesystems import read_only

from cairn.domain.errors import ApiError, Code
from cairn.storage import BucketStorage


@pytest.fixture
def storage(tmp_path: Path) -> BucketStorage:
    store = BucketStorage(tmp_path / "storage")
    for key, data in {
        "data/train.csv": b"a,b\n1,2\n",
        "data/eval.csv": b"a,b\n3,4\n",
        "data/notes.txt": b"notes",
        "data/raw/part-0.csv": b"x\n",
        "model/saved_model.pb": b"pb",
        "model/variables/variables.index": b"idx",
    }.items():
        store.write_bytes(f"gs://bkt/{key}", data)
    return store


def test_read_write_and_open(storage: BucketStorage) -> None:
    assert storage.read_bytes("gs://bkt/data/notes.txt") == b"notes"
    with storage.open("gs://new-bucket/deep/file.bin", "wb") as handle:
        handle.write(b"\x00\x01")
    assert storage.read_bytes("gs://new-bucket/deep/file.bin") == b"\x00\x01"
    assert storage.exists("gs://bkt/data") and storage.isdir("gs://bkt/data")
    assert storage.exists("gs://bkt/data/notes.txt") and not storage.isdir(
        "gs://bkt/data/notes.txt"
    )
    assert not storage.exists("gs://bkt/missing")


def test_reading_missing_or_directory_fails_clearly(storage: BucketStorage) -> None:
    with pytest.raises(ApiError) as missing:
        storage.read_bytes("gs://bkt/nope.txt")
    assert missing.value.code is Code.NOT_FOUND
    with pytest.raises(ApiError) as directory:
        storage.read_bytes("gs://bkt/data")
    assert directory.value.code is Code.INVALID_ARGUMENT


def test_writing_under_a_file_fails_clearly(storage: BucketStorage) -> None:
    with pytest.raises(ApiError) as blocked:
        storage.write_bytes("gs://bkt/data/notes.txt/inner", b"x")
    assert blocked.value.code is Code.FAILED_PRECONDITION


def test_ls_lists_one_level_with_directories_marked(storage: BucketStorage) -> None:
    assert storage.ls("gs://bkt") == ["gs://bkt/data/", "gs://bkt/model/"]
    assert storage.ls("gs://bkt/data/") == [
        "gs://bkt/data/eval.csv",
        "gs://bkt/data/notes.txt",
        "gs://bkt/data/raw/",
        "gs://bkt/data/train.csv",
    ]
    assert storage.ls("gs://bkt/data/notes.txt") == ["gs://bkt/data/notes.txt"]


def test_ls_recursive_lists_every_object(storage: BucketStorage) -> None:
    assert storage.ls("gs://bkt/model", recursive=True) == [
        "gs://bkt/model/saved_model.pb",
        "gs://bkt/model/variables/variables.index",
    ]
    assert len(storage.ls("gs://bkt", recursive=True)) == 6


def test_ls_missing_things(storage: BucketStorage) -> None:
    with pytest.raises(ApiError) as missing:
        storage.ls("gs://bkt/absent")
    assert missing.value.code is Code.NOT_FOUND
    with pytest.raises(ApiError) as no_bucket:
        storage.ls("gs://no-such-bucket")
    assert no_bucket.value.code is Code.NOT_FOUND
    assert "mb" in no_bucket.value.message


def test_glob_wildcards(storage: BucketStorage) -> None:
    assert storage.glob("gs://bkt/data/*.csv") == [
        "gs://bkt/data/eval.csv",
        "gs://bkt/data/train.csv",
    ]
    assert storage.glob("gs://bkt/**.csv") == [
        "gs://bkt/data/eval.csv",
        "gs://bkt/data/raw/part-0.csv",
        "gs://bkt/data/train.csv",
    ]
    assert storage.glob("gs://bkt/**/variables.index") == [
        "gs://bkt/model/variables/variables.index"
    ]
    assert storage.glob("gs://bkt/data/????.csv") == ["gs://bkt/data/eval.csv"]
    assert storage.glob("gs://bkt/data/[e]*") == ["gs://bkt/data/eval.csv"]
    assert storage.glob("gs://bkt/data/[!e]*.csv") == ["gs://bkt/data/train.csv"]
    assert storage.glob("gs://bkt/*") == ["gs://bkt/data/", "gs://bkt/model/"]
    assert storage.glob("gs://bkt/*/raw/*") == ["gs://bkt/data/raw/part-0.csv"]
    assert storage.glob("gs://bkt/nothing*") == []


def test_cp_file_to_file_and_into_directories(storage: BucketStorage, tmp_path: Path) -> None:
    assert storage.copy("gs://bkt/data/notes.txt", "gs://bkt/copy.txt") == ["gs://bkt/copy.txt"]
    assert storage.read_bytes("gs://bkt/copy.txt") == b"notes"
    # An existing directory, or a trailing slash, keeps the basename.
    assert storage.copy("gs://bkt/data/notes.txt", "gs://bkt/model") == ["gs://bkt/model/notes.txt"]
    assert storage.copy("gs://bkt/data/notes.txt", "gs://bkt/fresh/") == [
        "gs://bkt/fresh/notes.txt"
    ]
    assert storage.copy("gs://bkt/data/notes.txt", "gs://other") == ["gs://other/notes.txt"]
    local = tmp_path / "local.txt"
    local.write_bytes(b"from disk")
    assert storage.copy(str(local), "gs://bkt/up/") == ["gs://bkt/up/local.txt"]
    down = tmp_path / "down"
    down.mkdir()
    assert storage.copy("gs://bkt/up/local.txt", str(down)) == [str(down / "local.txt")]
    assert (down / "local.txt").read_bytes() == b"from disk"


def test_cp_overwrites_and_leaves_no_partial_files(storage: BucketStorage) -> None:
    storage.copy("gs://bkt/data/notes.txt", "gs://bkt/data/train.csv")
    assert storage.read_bytes("gs://bkt/data/train.csv") == b"notes"
    names = [path.name for path in (storage.root / "bkt" / "data").iterdir()]
    assert not [name for name in names if name.startswith(".cairn")]


def test_cp_recursive_trees(storage: BucketStorage, tmp_path: Path) -> None:
    written = storage.copy("gs://bkt/model", "gs://bkt/export", recursive=True)
    assert written == [
        "gs://bkt/export/saved_model.pb",
        "gs://bkt/export/variables/variables.index",
    ]
    # Into an existing directory the tree keeps its name.
    written = storage.copy("gs://bkt/model", "gs://bkt/export", recursive=True)
    assert "gs://bkt/export/model/variables/variables.index" in written
    local = storage.copy("gs://bkt/model/", str(tmp_path / "m"), recursive=True)
    assert (tmp_path / "m" / "variables" / "variables.index").read_bytes() == b"idx"
    assert len(local) == 2
    assert storage.copy(str(tmp_path / "m"), "gs://back/", recursive=True) == [
        "gs://back/m/saved_model.pb",
        "gs://back/m/variables/variables.index",
    ]


def test_cp_wildcards_expand(storage: BucketStorage, tmp_path: Path) -> None:
    out = tmp_path / "csvs"
    written = storage.copy("gs://bkt/data/*.csv", str(out))
    assert sorted(Path(path).name for path in written) == ["eval.csv", "train.csv"]
    assert (out / "eval.csv").read_bytes() == b"a,b\n3,4\n"
    # A wildcard that also matches a directory skips it without -r ...
    assert len(storage.copy("gs://bkt/data/*", "gs://bkt/flat/")) == 3
    # ... and copies it with -r.
    assert "gs://bkt/all/raw/part-0.csv" in storage.copy("gs://bkt/data/*", "gs://bkt/all/", True)
    # Wildcards in local sources work too.
    assert storage.copy(f"{out}/e*.csv", "gs://bkt/from-local/") == ["gs://bkt/from-local/eval.csv"]


def test_cp_refusals(storage: BucketStorage) -> None:
    cases = {
        ("gs://bkt/missing.txt", "gs://bkt/x"): Code.NOT_FOUND,
        ("gs://bkt/nothing*", "gs://bkt/x"): Code.NOT_FOUND,
        ("gs://bkt/data", "gs://bkt/x"): Code.INVALID_ARGUMENT,
        ("gs://bkt/data/raw*", "gs://bkt/x/"): Code.INVALID_ARGUMENT,
        ("gs://bkt/data/*.csv", "gs://bkt/data/notes.txt"): Code.INVALID_ARGUMENT,
        ("gs://bkt/data/notes.txt", "gs://bkt/data/notes.txt"): Code.INVALID_ARGUMENT,
        ("gs://bkt/data/notes.txt", "gs://bkt/x*"): Code.INVALID_ARGUMENT,
        ("gs://no-bucket/a", "gs://bkt/x"): Code.NOT_FOUND,
    }
    for (src, dst), code in cases.items():
        with pytest.raises(ApiError) as refused:
            storage.copy(src, dst)
        assert refused.value.code is code, (src, dst)
    with pytest.raises(ApiError) as into_itself:
        storage.copy("gs://bkt/data", "gs://bkt/data/sub", recursive=True)
    assert into_itself.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(ApiError) as directory:
        storage.copy("gs://bkt/data", "gs://bkt/x")
    assert "-r" in directory.value.message


def test_rm_files_trees_and_refusals(storage: BucketStorage) -> None:
    assert storage.remove("gs://bkt/data/notes.txt") == ["gs://bkt/data/notes.txt"]
    assert not storage.exists("gs://bkt/data/notes.txt")
    with pytest.raises(ApiError) as directory:
        storage.remove("gs://bkt/data")
    assert directory.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(ApiError) as missing:
        storage.remove("gs://bkt/data/notes.txt")
    assert missing.value.code is Code.NOT_FOUND
    assert storage.remove("gs://bkt/data/*.csv") == [
        "gs://bkt/data/eval.csv",
        "gs://bkt/data/train.csv",
    ]
    removed = storage.remove("gs://bkt/model", recursive=True)
    assert removed == ["gs://bkt/model/saved_model.pb", "gs://bkt/model/variables/variables.index"]
    assert storage.ls("gs://bkt") == ["gs://bkt/data/"]
    # Removing the last object drops the emptied "folder", as GCS has none.
    storage.remove("gs://bkt/data/raw/part-0.csv")
    assert storage.ls("gs://bkt") == []


def test_rm_never_follows_symlinks_out(storage: BucketStorage, tmp_path: Path) -> None:
    outside = tmp_path / "keep"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (storage.root / "bkt" / "data" / "link").symlink_to(outside)
    storage.remove("gs://bkt/data", recursive=True)
    assert (outside / "precious").read_text() == "keep me"


def test_buckets_and_make_bucket(storage: BucketStorage) -> None:
    assert storage.make_bucket("gs://fresh-bucket") == "gs://fresh-bucket/"
    assert storage.buckets() == ["gs://bkt/", "gs://fresh-bucket/"]
    assert storage.ls("gs://fresh-bucket") == []
    with pytest.raises(ApiError) as exists:
        storage.make_bucket("gs://fresh-bucket")
    assert exists.value.code is Code.ALREADY_EXISTS
    with pytest.raises(ApiError) as bad:
        storage.make_bucket("gs://Bad_Name")
    assert bad.value.code is Code.INVALID_ARGUMENT


def test_copy_tree_to_local_snapshots(storage: BucketStorage, tmp_path: Path) -> None:
    snapshot = storage.copy_tree_to_local("gs://bkt/model", tmp_path / "snap")
    assert snapshot == (tmp_path / "snap").resolve()
    assert (snapshot / "saved_model.pb").read_bytes() == b"pb"
    assert (snapshot / "variables" / "variables.index").read_bytes() == b"idx"
    # Local directories work the same way.
    again = storage.copy_tree_to_local(str(snapshot), tmp_path / "snap2")
    assert (again / "variables" / "variables.index").read_bytes() == b"idx"
    # A single file lands inside the directory.
    single = storage.copy_tree_to_local("gs://bkt/data/notes.txt", tmp_path / "one")
    assert (single / "notes.txt").read_bytes() == b"notes"
    with pytest.raises(ApiError) as missing:
        storage.copy_tree_to_local("gs://bkt/absent", tmp_path / "none")
    assert missing.value.code is Code.NOT_FOUND


def test_fs_is_an_fsspec_filesystem_rooted_at_storage(storage: BucketStorage) -> None:
    assert storage.fs.cat_file("bkt/data/notes.txt") == b"notes"


@pytest.mark.parametrize("uri", ["gs://bkt", "gs://bkt/", "gs://bkt/data/new/"])
def test_writing_to_a_bucket_or_directory_name_is_refused(storage: BucketStorage, uri: str) -> None:
    with pytest.raises(ApiError) as refused:
        storage.write_bytes(uri, b"x")
    assert refused.value.code is Code.INVALID_ARGUMENT


def test_put_file_stores_exactly_the_named_object(storage: BucketStorage, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"payload")
    assert storage.put_file(source, "gs://bkt/new/object.bin") == "gs://bkt/new/object.bin"
    assert storage.read_bytes("gs://bkt/new/object.bin") == b"payload"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("gs://bkt/data", "a folder of that name"),  # `cp` would write gs://bkt/data/<spool name>
        ("gs://bkt/data/notes.txt/inside", "gs://bkt/data/notes.txt is an object"),
        ("gs://bkt/data/raw/part-0.csv/x/y", "gs://bkt/data/raw/part-0.csv is an object"),
    ],
)
def test_put_file_refuses_names_a_local_disk_cannot_hold(
    storage: BucketStorage, tmp_path: Path, uri: str, says: str
) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"payload")
    with pytest.raises(ApiError) as raised:
        storage.put_file(source, uri)
    assert raised.value.code is Code.FAILED_PRECONDITION
    assert says in raised.value.message
    assert sorted(p.name for p in (storage.root / "bkt/data").iterdir()) == [
        "eval.csv",
        "notes.txt",
        "raw",
        "train.csv",
    ]


def test_object_name_parts_longer_than_the_disk_allows_are_invalid(storage: BucketStorage) -> None:
    with pytest.raises(ApiError) as raised:
        storage.write_bytes("gs://bkt/" + "n" * 256, b"x")
    assert raised.value.code is Code.INVALID_ARGUMENT
    assert "at most 255 bytes" in raised.value.message
    storage.write_bytes("gs://bkt/" + "n" * 255, b"x")


def test_read_only_storage_is_failed_precondition(storage: BucketStorage, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"payload")
    with read_only(storage.root / "bkt"):
        for write in (
            lambda: storage.put_file(source, "gs://bkt/new.bin"),
            lambda: storage.write_bytes("gs://bkt/deeper/new.bin", b"x"),
            lambda: storage.copy(str(source), "gs://bkt/copied.bin"),
        ):
            with pytest.raises(ApiError) as raised:
                write()
            assert raised.value.code is Code.FAILED_PRECONDITION
            assert "refuses access to gs://bkt/" in raised.value.message
