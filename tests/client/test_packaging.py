"""build_sdist builds a real source distribution the way gcloud does."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from cairn.client.packaging import build_sdist
from cairn.domain.errors import ApiError


def make_package(root: Path, name: str = "trainer") -> Path:
    package = root / name
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text("print('training')\n")
    (package / "sub" / "__init__.py").write_text("")
    return package


def test_without_setup_py_a_generated_one_packages_only_the_directory(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    (tmp_path / "src" / "unrelated.py").write_text("x = 1\n")
    (sdist,) = build_sdist(package, tmp_path / "out")
    assert sdist.name == "trainer-0.0.0.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {Path(n).relative_to("trainer-0.0.0").as_posix() for n in archive.getnames()[1:]}
    assert {"trainer/task.py", "trainer/sub/__init__.py", "setup.py"} <= names
    assert "unrelated.py" not in names
    assert not (tmp_path / "src" / "setup.py").exists(), "the user's tree stays untouched"


def test_an_existing_setup_py_is_used(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    (tmp_path / "src" / "setup.py").write_text(
        "from setuptools import setup, find_packages\n"
        "setup(name='census', version='1.2', packages=find_packages())\n"
    )
    (sdist,) = build_sdist(package, tmp_path / "out")
    assert sdist.name == "census-1.2.tar.gz"


def test_a_directory_without_init_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trainer").mkdir()
    with pytest.raises(ApiError, match="__init__.py"):
        build_sdist(tmp_path / "trainer", tmp_path / "out")


def test_a_broken_setup_py_reports_its_output(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    (tmp_path / "src" / "setup.py").write_text("raise SystemExit('nope, broken setup')\n")
    with pytest.raises(ApiError, match="nope, broken setup"):
        build_sdist(package, tmp_path / "out")
