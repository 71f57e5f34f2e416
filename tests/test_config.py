"""Settings read from CAIRN_* variables: the replica limit and the local roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cairn.config import Settings


def test_by_default_jobs_have_64_replicas_and_requests_no_local_roots(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CAIRN_MAX_REPLICAS", raising=False)
    monkeypatch.delenv("CAIRN_LOCAL_ROOTS", raising=False)
    settings = Settings.from_env(home=tmp_path)
    assert settings.max_replicas == 64
    assert settings.local_roots == ()


def test_the_environment_sets_the_replica_limit_and_local_roots(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAIRN_MAX_REPLICAS", "8")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    roots = [str(tmp_path / "data" / ".." / "data"), "", "~/shared"]
    monkeypatch.setenv("CAIRN_LOCAL_ROOTS", os.pathsep.join(roots))
    settings = Settings.from_env(home=tmp_path)
    assert settings.max_replicas == 8
    assert settings.local_roots == (tmp_path / "data", tmp_path / "home" / "shared")
