"""Framework auto-detection from the files of a model directory (no unpickling)."""

from __future__ import annotations

import bz2
import lzma
import pickle
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pytest

from cairn.domain.errors import ApiError, Code
from cairn.serving import detect_framework, frameworks
from cairn.serving.frameworks import normalize_framework, scan_pickle


def test_sklearn_joblib(sklearn_dir: Path) -> None:
    assert detect_framework(sklearn_dir) == "SCIKIT_LEARN"


def test_compressed_joblib_is_read(sklearn_dir: Path, tmp_path: Path) -> None:
    compressed = tmp_path / "compressed"
    compressed.mkdir()
    joblib.dump(joblib.load(sklearn_dir / "model.joblib"), compressed / "model.joblib", compress=3)
    assert detect_framework(compressed) == "SCIKIT_LEARN"


def test_booster_files(booster_dir: Path) -> None:
    assert detect_framework(booster_dir) == "XGBOOST"


def test_pickled_xgboost_objects(xgb_classifier_dir: Path, pickled_booster_dir: Path) -> None:
    assert detect_framework(xgb_classifier_dir) == "XGBOOST"
    assert detect_framework(pickled_booster_dir) == "XGBOOST"


def test_saved_model_file(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert detect_framework(tmp_path) == "TENSORFLOW"


def test_multiple_model_files(sklearn_dir: Path) -> None:
    (sklearn_dir / "model.bst").write_bytes(b"x")
    with pytest.raises(ApiError) as caught:
        detect_framework(sklearn_dir)
    assert caught.value.code is Code.FAILED_PRECONDITION
    assert caught.value.message.startswith("Multiple model files")
    assert "model.joblib" in caught.value.message and "model.bst" in caught.value.message


def test_no_model_file_names_the_expected_files(tmp_path: Path) -> None:
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ApiError) as caught:
        detect_framework(tmp_path)
    assert "saved_model.pb" in caught.value.message
    assert "model.joblib" in caught.value.message
    assert "model.bst" in caught.value.message


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ApiError, match="does not exist"):
        detect_framework(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("scikit-learn", "SCIKIT_LEARN"),
        ("SCIKIT_LEARN", "SCIKIT_LEARN"),
        ("xgboost", "XGBOOST"),
        ("tensorflow", "TENSORFLOW"),
        ("FRAMEWORK_UNSPECIFIED", None),
        (None, None),
    ],
)
def test_framework_spellings(given: str | None, canonical: str | None) -> None:
    assert normalize_framework(given) == canonical


def test_unknown_framework() -> None:
    with pytest.raises(ApiError) as caught:
        normalize_framework("pytorch")
    assert caught.value.code is Code.INVALID_ARGUMENT


# ----- reading pickles: bounded whatever they hold ---------------------------------------

_MiB = 1024 * 1024
# What joblib's compress= writes: zlib, gzip, bz2, xz and lzma streams.
COMPRESSORS: dict[str, Callable[[], Any]] = {
    "zlib": lambda: zlib.compressobj(9),
    "gzip": lambda: zlib.compressobj(9, wbits=31),
    "bz2": lambda: bz2.BZ2Compressor(9),
    "xz": lambda: lzma.LZMACompressor(preset=0),
    "lzma": lambda: lzma.LZMACompressor(format=lzma.FORMAT_ALONE, preset=0),
}


def _compressed(path: Path, kind: str, head: bytes, zeros: int, tail: bytes = b"") -> Path:
    """head + `zeros` zero bytes + tail, compressed as `kind`, written a MiB at a time."""
    compressor = COMPRESSORS[kind]()
    block = bytes(_MiB)
    with path.open("wb") as out:
        out.write(compressor.compress(head))
        for _ in range(zeros // _MiB):
            out.write(compressor.compress(block))
        out.write(compressor.compress(tail))
        out.write(compressor.flush())
    return path


# A pickle's first class, as protocol 4+ writes it, so the scan has something to read past.
_HEAD = b"\x80\x05\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x10sklearn.pipeline\x94\x8c\x08Pipeline\x94\x93"
_VERSION_STATE = b"\x8c\x10_sklearn_version\x94\x8c\x050.1.2\x94"


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_a_compression_bomb_is_read_in_bounded_memory(tmp_path: Path, kind: str) -> None:
    """~200 KB that expands to 200 MiB: the scan never holds more than a few MiB of it."""
    bomb = _compressed(tmp_path / "model.joblib", kind, _HEAD, 200 * _MiB, _VERSION_STATE)
    assert bomb.stat().st_size < 2 * _MiB
    tracemalloc.start()
    started = time.monotonic()
    try:
        scan = scan_pickle(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * _MiB, f"the scan held {peak / _MiB:.0f} MiB"
    assert time.monotonic() - started < 120  # generous: a loaded 2-core machine
    # It read all of it (below the scan limit): the version after the zeros is found.
    assert scan.modules == ["sklearn.pipeline"] and scan.versions == ["0.1.2"]
    assert detect_framework(tmp_path) == "SCIKIT_LEARN"


def test_the_scan_stops_at_its_limit(tmp_path: Path) -> None:
    path = _compressed(tmp_path / "model.joblib", "zlib", _HEAD, 8 * _MiB, _VERSION_STATE)
    assert scan_pickle(path).versions == ["0.1.2"]
    assert scan_pickle(path, limit=4 * _MiB).versions == []
    assert scan_pickle(path, limit=4 * _MiB).modules == ["sklearn.pipeline"]


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_names_cut_by_chunk_boundaries_are_found(
    sklearn_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: object
) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(joblib.load(sklearn_dir / "model.joblib"), path, compress=compress)
    whole = scan_pickle(path)
    assert {"sklearn.pipeline", "sklearn.preprocessing._data"} <= set(whole.modules)
    assert whole.versions
    for chunk in (7, 61, 1031):  # chunks shorter than the names: each is cut somewhere
        monkeypatch.setattr(frameworks, "_SCAN_CHUNK", chunk)
        assert scan_pickle(path) == whole


def test_pickle_protocols_name_their_first_class(tmp_path: Path, sklearn_dir: Path) -> None:
    pipeline = joblib.load(sklearn_dir / "model.joblib")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"model{protocol}.pkl"
        path.write_bytes(pickle.dumps(pipeline, protocol=protocol))
        assert scan_pickle(path, first_module_only=True).modules[0] == "sklearn.pipeline"


def test_garbage_with_a_compression_magic_is_scanned_as_is(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"BZh" + b"\x00" * 100 + b"csklearn.tree._classes\nDecisionTreeClassifier\n")
    assert scan_pickle(path).modules == ["sklearn.tree._classes"]
