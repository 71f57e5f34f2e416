"""Framework auto-detection from the files of a model directory (no unpickling)."""

from __future__ import annotations

from pathlib import Path

import joblib
import pytest

from cairn.domain.errors import ApiError, Code
from cairn.serving import detect_framework
from cairn.serving.frameworks import normalize_framework


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
