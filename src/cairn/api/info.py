"""`GET /cairn/v1/info`: what a local client needs to know about this server.

`cairn storage` runs in-process on the buckets' directory, like gsutil talks to Cloud
Storage directly; asking the server where its buckets live keeps the CLI and the server
on the same files without the user repeating `--home`.
"""

from __future__ import annotations

from pathlib import Path

import cairn
from cairn.api.gate import public
from cairn.api.http import Call, Reply, Router


def register(router: Router, *, home: Path, storage_root: Path) -> None:
    info = {"version": cairn.__version__, "home": str(home), "storageRoot": str(storage_root)}

    async def get_info(call: Call) -> Reply:
        return Reply.json(info)

    # Public: a local CLI asks it where the home (and so its credential) is before it has one.
    router.add("GET", "/cairn/v1/info", get_info, public())
