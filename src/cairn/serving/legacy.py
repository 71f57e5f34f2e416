"""Models saved by AI Platform's runtimes: made loadable by today's libraries at deploy time.

`prepare_legacy_model` runs once per deployment, in the server, on the version's local copy:

* **XGBoost's legacy binary `model.bst`** (XGBoost < 2.1; runtime 2.11 had 1.7), which
  XGBoost 3 cannot read, is converted to XGBoost's JSON by `serving.legacy_xgboost` and
  written under `.cairn/` in the copy with the original's margins on synthetic rows, where
  the XGBoost loader finds it and checks XGBoost 3's margins against them before serving
  (nodes can read the copy, not write it). `model.bst` is kept. The file's format, not
  `runtimeVersion`, decides: a legacy binary cannot be loaded by XGBoost 3 whatever the
  version says, and a JSON/UBJSON `model.bst` loads as it is; the runtime version only goes
  into the note. Files over SERVER_CONVERSION_LIMIT are left to the nodes, whose loader
  converts in memory the same way (as it does for any directory nobody prepared, e.g.
  `cairn local predict`): conversion takes ~3.4 times the file's size in memory and
  0.08-0.33 s a MB, which the server should not spend on any size of upload.
* **Old scikit-learn pickles.** scikit-learn does not promise that a pickle loads in another
  version: most load with an `InconsistentVersionWarning` and predict the same; some refer
  to modules that were removed (`sklearn.ensemble.forest` before 0.22 ...) and cannot load.
  Without unpickling anything (which would run user code in the server), the versions the
  estimators were written with and the modules the pickle refers to are read with
  `frameworks.scan_pickle` (streamed, bounded in memory); the note says when the version
  differs from the installed one, and a pickle that names a module this scikit-learn lacks
  is refused at deploy time with what to do about it.
"""

from __future__ import annotations

import importlib.util
import logging
from importlib import metadata
from pathlib import Path

from cairn.domain.errors import ApiError, Code
from cairn.serving.frameworks import PICKLE_FILES, XGBOOST_FILES, PickleScan, scan_pickle
from cairn.serving.legacy_xgboost import (
    CONVERTED_DIR,
    LegacyFormatError,
    convert,
    is_legacy_binary,
    legacy_fix,
    prepared_conversion,
    write_conversion,
)

log = logging.getLogger(__name__)

# Legacy binaries larger than this are converted by each node instead of the server.
# Measured on the 2-core dev machine (8000 depth-8 trees): 67 MB converts with 225 MB traced
# at the peak (350 MB resident) in 0.08-0.33 s a MB, as loaded; docs/serving.md has more.
SERVER_CONVERSION_LIMIT = 64 * 1024 * 1024


def prepare_legacy_model(model_dir: Path, runtime_version: str | None = None) -> str | None:
    """Make a deployed copy of a model loadable by today's libraries; a note, or None.

    XGBoost's legacy binary `model.bst` (or `.json`/`.ubj` holding it) is converted to JSON
    under `<model_dir>/.cairn/`, keeping the original. A scikit-learn pickle is checked
    against the installed scikit-learn. Raises ApiError(FAILED_PRECONDITION) with the fix
    when the file cannot be used; the note says what was done, for the version's log.
    """
    model_dir = Path(model_dir)
    runtime = f" (runtime {runtime_version})" if runtime_version else ""
    for name in XGBOOST_FILES:
        path = model_dir / name
        if path.is_file() and _starts_legacy(path):
            return _prepare_xgboost(path, runtime)
    for name in PICKLE_FILES:
        path = model_dir / name
        if path.is_file():
            note = _sklearn_note(path, runtime)
            if note:
                log.info("%s: %s", model_dir, note)
            return note
    return None


# ----- XGBoost's legacy binary format -------------------------------------------------------


def _starts_legacy(path: Path) -> bool:
    with path.open("rb") as handle:
        return is_legacy_binary(handle.read(64))


def _prepare_xgboost(path: Path, runtime: str) -> str:
    size = path.stat().st_size
    if size > SERVER_CONVERSION_LIMIT:
        note = (
            f"{path.name} ({size / 2**20:.0f} MiB) is in XGBoost's legacy binary format{runtime}, "
            "which XGBoost 3 cannot read; it is larger than the server converts "
            f"({SERVER_CONVERSION_LIMIT // 2**20} MiB), so each node converts it to XGBoost's "
            "JSON format in memory when it starts and checks the result against the original's "
            "predictions before serving. Deploy it re-saved as model.json to skip that."
        )
        log.info("%s: %s", path.parent, note)
        return note
    data = path.read_bytes()
    # A redeploy (rescale, server restart) reuses the conversion its copy already has.
    conversion = prepared_conversion(path, data)
    if conversion is None:
        try:
            conversion = convert(data, path.name)
        except LegacyFormatError as error:
            raise ApiError(
                Code.FAILED_PRECONDITION,
                f"{path.name} is not a JSON or UBJSON XGBoost model, and reading it as XGBoost's "
                f"legacy binary format failed: {error}. {legacy_fix(path.name)}",
            ) from None
        write_conversion(path, data, conversion)
    note = (
        f"{path.name} was saved by {conversion.written_by}{runtime} in XGBoost's legacy "
        "binary format, which XGBoost 3 cannot read; Cairn converted it to XGBoost's JSON "
        f"format at deploy time ({CONVERTED_DIR}/{path.name}.json, the original kept), and "
        f"each node checks the converted model against the original's predictions on "
        f"{len(conversion.rows)} synthetic rows before serving."
    )
    log.info("%s: %s", path.parent, note)
    return note


# ----- scikit-learn pickles -----------------------------------------------------------------


def sklearn_pickle_info(path: Path) -> PickleScan:
    """The scikit-learn versions (`_sklearn_version`) and modules a pickle names, unpickled."""
    return scan_pickle(path)


def installed_sklearn_version() -> str | None:
    try:
        return metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        return None


def missing_sklearn_modules(modules: list[str]) -> list[str]:
    """The sklearn modules that the installed scikit-learn lacks, judged from its files."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations))).parent
    missing = []
    for module in modules:
        if not module.startswith("sklearn"):
            continue
        base = root.joinpath(*module.split("."))
        if not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()):
            compiled = list(base.parent.glob(f"{base.name}.*.so")) if base.parent.is_dir() else []
            if not compiled:
                missing.append(module)
    return missing


def _sklearn_note(path: Path, runtime: str) -> str | None:
    installed = installed_sklearn_version()
    if installed is None:
        return None
    info = sklearn_pickle_info(path)
    missing = missing_sklearn_modules(info.modules)
    written = ", ".join(info.versions) or "an unknown version"
    if missing:
        raise ApiError(
            Code.FAILED_PRECONDITION,
            f"{path.name} was written by scikit-learn {written}{runtime} and refers to "
            f"{', '.join(missing)}, which scikit-learn {installed} (the version Cairn serves "
            f"with) no longer has, so it cannot be loaded. Retrain and save the model with "
            f"scikit-learn {installed}, or deploy it on a server whose environment has the "
            "scikit-learn that wrote it.",
        )
    older = [version for version in info.versions if version != installed]
    if not older:
        return None
    return (
        f"{path.name} was written by scikit-learn {', '.join(older)}{runtime}; Cairn serves it "
        f"with scikit-learn {installed}, which loaded it (scikit-learn does not promise "
        "identical predictions across versions: compare a few before relying on it)."
    )
