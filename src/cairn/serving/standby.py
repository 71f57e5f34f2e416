"""A standby prediction node: an interpreter with the frameworks already imported, waiting to
become a node. It makes cold starts (scale from zero) fast.

Starting a node is mostly importing scikit-learn (with scipy and pandas) and XGBoost: seconds
on a busy machine. The manager keeps one standby process while some version may scale to
zero; a cold start hands it its node arguments as one JSON line on stdin instead of spawning
a fresh interpreter. Until then it has run no user code: it only imported libraries. On its
assignment it opens the node's log, takes the node's environment, drops to the version's
uid (the server's, when not root) and runs `cairn.serving.node.main`, which then loads the
model. stdin stays the server's lifeline, as for any node: EOF ends the process.

    python -P -m cairn.serving.standby    (started by serving.process.Standby)
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

import orjson

# What the common models need; one that does not import is skipped (the node then reports
# the error itself when its model needs it).
PRELOAD = (
    "numpy",
    "joblib",
    "sklearn.base",
    "sklearn.pipeline",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "xgboost",
    "cairn.serving.node",
    "cairn.serving.loaders",
)


def main() -> None:
    for module in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    line = sys.stdin.buffer.readline()
    if not line:
        return  # the server ended before needing this standby
    assignment = orjson.loads(line)
    log = os.open(assignment["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(assignment["env"])
    uid, gid = assignment.get("uid"), assignment.get("gid")
    if uid is not None and gid is not None:
        # As subprocess does for a fresh node: no group of the server's is kept.
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    from cairn.serving.node import main as node_main

    sys.argv = ["cairn.serving.node", *assignment["argv"]]
    node_main(assignment["argv"])


if __name__ == "__main__":
    main()
