"""Build a trainer package the way `gcloud ai-platform jobs submit training` does.

gcloud turns `--package-path DIR` into a source distribution: the package root is DIR's
parent; its `setup.py` is used when there is one, otherwise a minimal one is generated that
packages just DIR. Doing the same here means a trainer that works on Google works on Cairn.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cairn.domain.errors import ApiError, Code, invalid_field

_GENERATED_SETUP = """\
from setuptools import find_packages, setup

setup(
    name={name!r},
    version="0.0.0",
    packages=find_packages(include=[{name!r}, {name!r} + ".*"]),
)
"""


def build_sdist(package_path: Path, out_dir: Path) -> list[Path]:
    """Build `package_path` into `out_dir`; return the files produced (normally one .tar.gz)."""
    package_dir = package_path.expanduser().resolve()
    if not package_dir.is_dir():
        raise invalid_field("--package-path", f"{package_path} is not a directory.")
    if not (package_dir / "__init__.py").is_file():
        raise invalid_field(
            "--package-path",
            f"{package_path} has no __init__.py; point --package-path at the Python "
            "package directory itself (the one holding your trainer module).",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cairn-sdist-") as scratch:
        work = Path(scratch)
        root = package_dir.parent
        if not (root / "setup.py").is_file():
            # Build from a copy so the user's tree never gains a setup.py or build litter.
            root = work / "src"
            shutil.copytree(
                package_dir,
                root / package_dir.name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            (root / "setup.py").write_text(_GENERATED_SETUP.format(name=package_dir.name))
        _run_setup(root, work / "build", out_dir)
    produced = sorted(p for p in out_dir.iterdir() if p.is_file())
    if not produced:
        raise ApiError(Code.INTERNAL, f"Building {package_path} produced no files.")
    return produced


def _run_setup(root: Path, build_dir: Path, out_dir: Path) -> None:
    """Run setup.py with gcloud's fallbacks: the full command first, then simpler ones."""
    build_dir.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "setup.py"]
    egg_info = ["egg_info", "--egg-base", str(build_dir)]
    build = ["build", "--build-base", str(build_dir), "--build-temp", str(build_dir)]
    sdist = ["sdist", "--dist-dir", str(out_dir)]
    attempts = [base + egg_info + build + sdist, base + build + sdist, base + sdist]
    failure = ""
    for command in attempts:
        result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        failure = (result.stderr or result.stdout).strip()
    tail = "\n".join(failure.splitlines()[-15:])
    raise ApiError(
        Code.INVALID_ARGUMENT,
        f"Could not build a source distribution from {root} (`python setup.py sdist` "
        f"failed). Fix setup.py or the package and retry. Last output:\n{tail}",
    )
