"""Framework names and auto-detection from the files at the root of a model directory.

Detection never unpickles anything: `model.joblib`/`model.pkl` are told apart (scikit-learn
or XGBoost) by reading the class names the pickle refers to, because loading a user's model
would run the user's code inside the server process.
"""

from __future__ import annotations

import bz2
import lzma
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

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
# The fitted preparation `cairn data prepare` writes (cairn.data.artifact.ARTIFACT_NAME; serving
# does not import cairn.data). Beside a model file it is not a model of its own: the node
# applies it to raw instances before the model, so it never counts as a second model file.
PREPARATION_FILE = "preparation.joblib"


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
    for module in scan_pickle(path, first_module_only=True).modules:
        if module.startswith("xgboost"):
            return XGBOOST
        if module.startswith("sklearn"):
            return SCIKIT_LEARN
    return SCIKIT_LEARN


# ----- reading a pickle without unpickling it ---------------------------------------------
#
# The server reads users' pickles (detection here, the scikit-learn version check in
# serving.legacy) streamed: at most a chunk of the file, decompressed, is in memory at once,
# whatever the file's size or what it expands to, and reading stops after
# MAX_PICKLE_SCAN_BYTES of pickle (so a compression bomb costs bounded time, not memory).
MAX_PICKLE_SCAN_BYTES = 512 * 1024 * 1024
_SCAN_CHUNK = 1024 * 1024
# Longer than any match below (a module and class name are at most 255 bytes each, a version
# is read up to 40), so matches cut by a chunk boundary are found in the next chunk.
_SCAN_OVERLAP = 1024
# A real pickle names a few dozen modules; a crafted one could name millions.
_MAX_NAMES = 1000


@dataclass
class PickleScan:
    """What a pickle names, in the order it names it (nothing is unpickled)."""

    modules: list[str] = field(default_factory=list)  # sklearn/xgboost modules of its classes
    versions: list[str] = field(default_factory=list)  # `_sklearn_version` values


def scan_pickle(
    path: Path, *, first_module_only: bool = False, limit: int = MAX_PICKLE_SCAN_BYTES
) -> PickleScan:
    """The scikit-learn/XGBoost modules and scikit-learn versions a (joblib) pickle names.

    The bytes are searched rather than walked opcode by opcode: joblib writes numpy arrays'
    raw data between the opcodes, where a walk stops, and `_sklearn_version` comes last in
    an estimator's state, after its arrays. The top-level object's class comes first, so
    `first_module_only` stops at it.
    """
    scan = PickleScan()
    with path.open("rb") as handle:
        try:
            _scan_chunks(_pickle_chunks(handle), scan, first_module_only, limit)
        except _UNREADABLE:
            if scan.modules or scan.versions:
                return scan  # a truncated or corrupt stream: what was read before it
            # The magic bytes were a coincidence: not compressed after all, scan it as is.
            handle.seek(0)
            _scan_chunks(
                iter(lambda: handle.read(_SCAN_CHUNK), b""), scan, first_module_only, limit
            )
    return scan


def _scan_chunks(chunks: Iterator[bytes], scan: PickleScan, first_only: bool, limit: int) -> None:
    carry = b""
    read = 0
    for chunk in chunks:
        read += len(chunk)
        final = read >= limit
        buffer = carry + chunk[: len(chunk) - max(read - limit, 0)]
        # Matches starting in the last _SCAN_OVERLAP bytes are left to the next buffer.
        cut = len(buffer) if final else max(len(buffer) - _SCAN_OVERLAP, 0)
        _scan_buffer(buffer, cut, scan)
        if (first_only and scan.modules) or final:
            return
        carry = buffer[cut:]
    _scan_buffer(carry, len(carry), scan)


def _scan_buffer(data: bytes, cut: int, scan: PickleScan) -> None:
    """Add what `data` names in matches that start before `cut`, in the order they come."""
    found = [(m.start(), m.group(1).decode()) for m in _GLOBAL.finditer(data)]
    found += [
        (m.start(), m.group(2).decode())
        for m in _STACK_GLOBAL.finditer(data)
        if m.group(1)[0] == len(m.group(2))  # the string's own length byte: a real opcode
    ]
    for start, module in sorted(found):
        if start < cut and module not in scan.modules and len(scan.modules) < _MAX_NAMES:
            scan.modules.append(module)
    for m in _VERSION.finditer(data):
        if m.start() >= cut:
            break
        size = m.group(1)[0] if m.group(1) else int.from_bytes(m.group(2), "little")
        version = data[m.end() : m.end() + min(size, 40)].decode("ascii", "replace")
        if version not in scan.versions and len(scan.versions) < _MAX_NAMES:
            scan.versions.append(version)


_MODULE = rb"((?:sklearn|xgboost)(?:\.\w+)*)"
_MEMO = rb"(?:\x94|q.|r....)?"  # MEMOIZE (protocol 4+), BINPUT or LONG_BINPUT
_FRAME = rb"(?:\x95.{8})?"  # protocol 4+ may start a frame between two opcodes
# Protocols 0-3: GLOBAL 'module\nname\n'.
_GLOBAL = re.compile(rb"c" + _MODULE + rb"\n[\w.]{1,255}\n")
# Protocol 4+: the module as a SHORT_BINUNICODE string, then the name (or a memo get), then
# STACK_GLOBAL.
_STACK_GLOBAL = re.compile(
    rb"\x8c(.)"
    + _MODULE
    + _MEMO
    + _FRAME
    + rb"(?:\x8c.[\w.]{1,255}|h.|j....)"
    + _MEMO
    + _FRAME
    + rb"\x93",
    re.DOTALL,
)
# `_sklearn_version`, an optional memo opcode, then its value as a short or long string.
_VERSION = re.compile(rb"_sklearn_version" + _MEMO + _FRAME + rb"(?:\x8c(.)|X(....))", re.DOTALL)


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Zlib:
    """zlib's decompressor with bz2's and lzma's interface (it keeps unread input apart)."""

    def __init__(self, wbits: int) -> None:
        self._inflate = zlib.decompressobj(wbits)
        self._tail = b""

    @property
    def eof(self) -> bool:
        return self._inflate.eof

    @property
    def needs_input(self) -> bool:
        return not self._tail

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._inflate.decompress(self._tail + data, max_length)
        self._tail = self._inflate.unconsumed_tail
        return out


# What joblib's `compress=` writes (zlib, gzip, bz2, xz, lzma), told by the first bytes.
_COMPRESSIONS: tuple[tuple[bytes, Callable[[], _Decompressor]], ...] = (
    (b"\x78", lambda: _Zlib(zlib.MAX_WBITS)),
    (b"\x1f\x8b", lambda: _Zlib(16 + zlib.MAX_WBITS)),
    (b"BZh", bz2.BZ2Decompressor),
    (b"\xfd7zXZ", lzma.LZMADecompressor),
    (b"\x5d\x00", lzma.LZMADecompressor),
)
_UNREADABLE = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)


def _pickle_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """The pickle's bytes, decompressed if need be, at most _SCAN_CHUNK at a time."""
    head = handle.read(6)
    handle.seek(0)
    for magic, make in _COMPRESSIONS:
        if head.startswith(magic):
            return _inflate(handle, make())
    return iter(lambda: handle.read(_SCAN_CHUNK), b"")


def _inflate(handle: BinaryIO, decompressor: _Decompressor) -> Iterator[bytes]:
    idle = 0  # calls in a row that took no input and gave no output
    while not decompressor.eof and idle < 3:
        data = b""
        if decompressor.needs_input:
            data = handle.read(_SCAN_CHUNK)
            if not data:
                return  # truncated: what it held has been scanned
        out = decompressor.decompress(data, _SCAN_CHUNK)
        idle = 0 if out or data else idle + 1
        if out:
            yield out
