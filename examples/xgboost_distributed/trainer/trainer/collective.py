"""Joining the job's XGBoost collective: the few lines a trainer needs. Copy this file.

Cairn gives the master and every worker of a job the variables of XGBoost's collective
(dmlc-submit's convention): DMLC_TRACKER_URI and DMLC_TRACKER_PORT (where the tracker
listens: a port Cairn reserved on the master's host), DMLC_NUM_WORKER (how many members)
and DMLC_TASK_ID (this member's number: the master is 0, worker-replica-i is i + 1).
Parameter servers and evaluators get none of them: they are not members.

The master hosts the tracker, in its own process, and then every member (the master too)
joins; XGBoost's training then sums its histograms over all members at each step, so each
member trains on its own rows and all of them end with the same booster. Without the
variables (a BASIC job, or `python -m trainer.task` on a laptop) the block runs alone.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from xgboost import collective
from xgboost.core import XGBoostError
from xgboost.tracker import RabitTracker


@dataclass(frozen=True)
class Member:
    rank: int  # 0 .. world_size - 1; rank 0 is the master
    world_size: int

    @property
    def is_master(self) -> bool:
        return self.rank == 0


@contextmanager
def xgboost_collective(timeout_s: int = 600) -> Iterator[Member]:
    """Be a member of the job's collective for the duration of the block."""
    world_size = int(os.environ.get("DMLC_NUM_WORKER", "1"))
    if world_size <= 1:
        yield Member(0, 1)
        return
    host = os.environ["DMLC_TRACKER_URI"]
    port = int(os.environ["DMLC_TRACKER_PORT"])
    task_id = os.environ["DMLC_TASK_ID"]
    tracker = None
    if task_id == "0":
        # sortby="task": ranks follow DMLC_TASK_ID (as text), so the master is rank 0.
        tracker = RabitTracker(
            n_workers=world_size, host_ip=host, port=port, sortby="task", timeout=timeout_s
        )
        tracker.start()
    try:
        with warnings.catch_warnings():
            # Workers start before the master, so their first connections are refused
            # while the tracker comes up; XGBoost retries (dmlc_retry) and says so each time.
            warnings.filterwarnings("ignore", message=r".*(Failed to connect|Retrying connect)")
            collective.init(
                dmlc_tracker_uri=host,
                dmlc_tracker_port=port,
                dmlc_task_id=task_id,
                dmlc_retry=10,  # about 110 s of retries in all: the master may start late
                dmlc_timeout=timeout_s,
            )
    except XGBoostError as error:
        raise RuntimeError(
            f"Could not join XGBoost's collective: the tracker at {host}:{port} (hosted by "
            f"the master) did not take member {task_id} of {world_size}."
        ) from error
    try:
        yield Member(collective.get_rank(), collective.get_world_size())
    finally:
        collective.finalize()
        if tracker is not None:
            tracker.wait_for(timeout_s)
