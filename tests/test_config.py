"""Settings read from CAIRN_* variables: the replica limit, the local roots, the run uids."""

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


def test_the_environment_sets_the_uids_user_code_runs_as(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CAIRN_RUN_UID_RANGE", raising=False)
    assert Settings.from_env(home=tmp_path).run_uid_range == (200_000, 265_535)
    monkeypatch.setenv("CAIRN_RUN_UID_RANGE", " 400000-400999 ")
    assert Settings.from_env(home=tmp_path).run_uid_range == (400_000, 400_999)
    for wrong in ("400000", "a-b", "500-600", "9-3", f"1000-{2**32}"):
        monkeypatch.setenv("CAIRN_RUN_UID_RANGE", wrong)
        with pytest.raises(ValueError, match="CAIRN_RUN_UID_RANGE"):
            Settings.from_env(home=tmp_path)


def test_the_executor_is_local_and_ray_is_refused_until_it_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings.from_env().executor == "local"
    monkeypatch.setenv("CAIRN_EXECUTOR", "ray")
    with pytest.raises(ValueError, match="not built yet"):
        Settings.from_env()
    monkeypatch.setenv("CAIRN_EXECUTOR", "kubernetes")
    with pytest.raises(ValueError, match="unknown"):
        Settings.from_env()
