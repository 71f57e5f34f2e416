"""Framework names and auto-detection from the files at the root of a model directory.

Detection never unpickles anything: `model.joblib`/`model.pkl` are told apart (scikit-learn
or XGBoost) by reading the class names the pickle refers to, because loading a user's model
would run the user's code inside the server process.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import pickletools
import zlib
from pathlib import Path

from cairn.domain.errors import ApiError, Code

TENSORFLOW = "TENSORFLOW"
SCIKIT_LEARN = "SCIKIT_LEARN"
XGBOOST = "XGBOOST"
FRAMEWORKS = (TENSORFLOW, SCIKIT_LEARN, XGBOOST)

# Accepted spellings: the Version enum values and gcloud's `--framework` choices.
_ALIASES = {
    "TENSORFLOW": TENSORFLOW,
    "SCIKIT_LEARN": SCIKIT_LEARN,
    "SCIKIT-LEARN": SCIKIT_LEARN,
    "SKLEARN": SCIKIT_LEARN,
    "XGBOOST": XGBOOST,
}
UNSPECIFIED = ("", "FRAMEWORK_UNSPECIFIED")

TF_FILES = ("saved_model.pb", "saved_model.pbtxt")
PICKLE_FILES = ("model.joblib", "model.pkl")
XGBOOST_FILES = ("model.bst", "model.json", "model.ubj")
ALL_MODEL_FILES = TF_FILES + PICKLE_FILES + XGBOOST_FILES

_MAX_PICKLE_SCAN_BYTES = 512 * 1024 * 1024


def normalize_framework(framework: str | None) -> str | None:
    """The canonical enum value, or None when the caller asks for auto-detection."""
    if framework is None or framework.strip().upper() in UNSPECIFIED:
        return None
    canonical = _ALIASES.get(framework.strip().upper())
    if canonical is None:
        raise ApiError(
            Code.INVALID_ARGUMENT,
            f"Unknown framework '{framework}'. Use one of TENSORFLOW, SCIKIT_LEARN, XGBOOST "
            "(or leave it unset to detect it from the model files).",
        )
    return canonical


def model_files_in(model_dir: Path) -> list[str]:
    """The recognised model files present at the root of `model_dir`, in a stable order."""
    return [name for name in ALL_MODEL_FILES if (model_dir / name).is_file()]


def detect_framework(model_dir: Path) -> str:
    """TENSORFLOW, SCIKIT_LEARN or XGBOOST, judged from the files at the root of model_dir."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ApiError(
            Code.FAILED_PRECONDITION,
            f"Model directory {model_dir} does not exist or is not a directory. "
            "Point deploymentUri (or --model-dir) at the folder that holds the exported model.",
        )
    found = model_files_in(model_dir)
    tf_found = [name for name in found if name in TF_FILES]
    if len(found) > 1 and not (len(found) == len(tf_found)):
        raise multiple_model_files(model_dir, found)
    if not found:
        raise no_model_file(model_dir)
    name = found[0]
    if name in TF_FILES:
        return TENSORFLOW
    if name in XGBOOST_FILES:
        return XGBOOST
    return pickled_framework(model_dir / name)


def multiple_model_files(model_dir: Path, found: list[str]) -> ApiError:
    return ApiError(
        Code.FAILED_PRECONDITION,
        f"Multiple model files were found in {model_dir}: {', '.join(found)}. "
        "Keep exactly one model file in the directory.",
    )


def no_model_file(model_dir: Path, expected: tuple[str, ...] = ALL_MODEL_FILES) -> ApiError:
    return ApiError(
        Code.FAILED_PRECONDITION,
        f"Could not find a model file in {model_dir}: expected one of {', '.join(expected)} "
        "at the root of the directory (saved_model.pb for TensorFlow, model.joblib or "
        "model.pkl for scikit-learn or XGBoost, model.bst/model.json/model.ubj for XGBoost).",
    )


def pickled_framework(path: Path) -> str:
    """SCIKIT_LEARN or XGBOOST from the first sklearn/xgboost class a pickle names.

    The top-level object's class is written first, so a scikit-learn Pipeline holding an
    XGBoost step counts as scikit-learn, as in AI Platform (which looks at the loaded object's
    module). Anything unrecognised is served as scikit-learn, which calls `predict` on it.
    """
    for module in _pickle_modules(_pickle_bytes(path)):
        if module.startswith("xgboost"):
            return XGBOOST
        if module.startswith("sklearn"):
            return SCIKIT_LEARN
    return SCIKIT_LEARN


def _pickle_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    decompressors = (
        (b"\x78", zlib.decompress),
        (b"\x1f\x8b", gzip.decompress),
        (b"BZh", bz2.decompress),
        (b"\xfd7zXZ", lzma.decompress),
        (b"\x5d\x00", lzma.decompress),
    )
    for magic, decompress in decompressors:
        if raw.startswith(magic):
            try:
                return decompress(raw)[:_MAX_PICKLE_SCAN_BYTES]
            except Exception:  # noqa: BLE001 - not compressed after all: scan as is
                return raw
    return raw


def _pickle_modules(data: bytes) -> list[str]:
    """Module names referenced by GLOBAL/STACK_GLOBAL opcodes, in order (no code runs)."""
    modules: list[str] = []
    recent_strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL" and isinstance(arg, str):
                modules.append(arg.split(" ", 1)[0])
            elif opcode.name == "STACK_GLOBAL" and len(recent_strings) >= 2:
                modules.append(recent_strings[-2])
            elif isinstance(arg, str) and "UNICODE" in opcode.name:
                recent_strings = [*recent_strings[-1:], arg]
            if modules and modules[-1].startswith(("sklearn", "xgboost")):
                break
    except Exception:  # noqa: BLE001 - a truncated or odd pickle: use what was read
        pass
    return modules
