"""On a root server every deployed version's nodes run as a uid of the version's own."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from cairn.config import Settings
from cairn.executors import UidAllocator
from cairn.isolation import isolate_user_code
from cairn.serving import ServingManager

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only a server running as root switches nodes to other uids"
)


@pytest.fixture
def isolated(tmp_path: Path) -> Iterator[tuple[Settings, UidAllocator]]:
    umask = os.umask(0o022)  # isolating sets the process umask: restore it afterwards
    os.umask(umask)
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    try:
        isolation = isolate_user_code(settings)
        assert isolation.identities is not None
        yield settings, isolation.identities
    finally:
        os.umask(umask)


def test_each_version_runs_as_its_own_uid_and_gives_it_back_when_undeployed(
    isolated: tuple[Settings, UidAllocator], sklearn_dir: Path
) -> None:
    settings, identities = isolated
    model_dir = settings.models_root / "p" / "m" / "v"
    model_dir.mkdir(parents=True)  # models/ lets the group read what is created in it
    for source in sklearn_dir.iterdir():
        (model_dir / source.name).write_bytes(source.read_bytes())
    manager = ServingManager(settings.home / "serving", identities=identities)
    try:
        for key in ("p/m/v1", "p/m/v2"):
            manager.deploy(key, model_dir, "SCIKIT_LEARN", nodes=2 if key.endswith("1") else 1)
        uids = {}
        for key in ("p/m/v1", "p/m/v2"):
            (uid,) = {psutil.Process(pid).uids().effective for pid in manager.node_pids(key)}
            uids[key] = uid
            socket_dir = manager._socket_dir / str(uid)  # sockets/ unless the path is long
            info = socket_dir.stat()
            assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (uid, 0o700)
        assert uids["p/m/v1"] != uids["p/m/v2"]
        assert identities.base.uid not in uids.values()
        status, answer = asyncio.run(
            manager.predict("p/m/v2", orjson.dumps({"instances": [[1.0, 2.0, 0.0, 0.0]]}))
        )
        assert status == 200, answer

        manager.undeploy("p/m/v2")
        assert identities.find("versions/p/m/v2") is None
        assert not (manager._socket_dir / str(uids["p/m/v2"])).exists()
        assert identities.find("versions/p/m/v1") is not None
    finally:
        manager.shutdown()
    assert identities.owners("versions/") == []
