"""A `ServingManager` whose prediction nodes run as an unprivileged user.

Loading a model runs user code (unpickling), so a root server starts its nodes as the
run-as user. Each node binds its Unix socket itself, so that user owns the socket
directory (still closed to everyone else); the server, as root, connects regardless.

This is a subclass only because `ServingManager` does not take the user yet: once it
accepts `run_as` and passes it to `NodeProcess`, this module can go.
"""

from __future__ import annotations

from pathlib import Path

from cairn.executors import RunAs
from cairn.executors.acl import SEARCH
from cairn.serving.manager import ServingManager
from cairn.serving.process import NodeProcess


class UnprivilegedServingManager(ServingManager):
    def __init__(self, run_root: Path, run_as: RunAs, **options: float) -> None:
        super().__init__(run_root, **options)
        self.run_as = run_as
        socket_dir = self._socket_dir
        if socket_dir.parent == self.run_root:
            run_as.grant(self.run_root, SEARCH)  # to reach the socket directory, no more
        run_as.give(socket_dir)

    def _new_node(self, key: str, index: int, model_dir: Path, framework: str) -> NodeProcess:
        node = super()._new_node(key, index, model_dir, framework)
        node.run_as = self.run_as
        return node
