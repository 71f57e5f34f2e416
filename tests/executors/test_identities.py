"""The uid allocator: one uid per owner, handed out in turn, kept across restarts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
import pytest

from cairn.executors import RunAs, RunAsError, UidAllocator

BASE = RunAs("cairn-runner", 999, 995, "/nonexistent", reaches=(Path("/somewhere"),))
FIRST = 300_000


def allocator(state: Path, count: int = 4, home_id: str = "home-1") -> UidAllocator:
    claims = state.parent / "claims"  # the machine-wide claims, kept to this test
    return UidAllocator(
        BASE, range(FIRST, FIRST + count), state, home_id=home_id, claims_dir=claims
    )


def test_each_owner_gets_a_uid_of_its_own_in_the_group_of_the_run_as_user(
    tmp_path: Path,
) -> None:
    uids = allocator(tmp_path / "ids")
    job_a = uids.allocate("jobs/p/a")
    job_b = uids.allocate("jobs/p/b")
    assert (job_a.uid, job_b.uid) == (FIRST, FIRST + 1)
    assert uids.allocate("jobs/p/a") == job_a  # asking again changes nothing
    assert (job_a.gid, job_a.reaches, job_a.name) == (995, BASE.reaches, f"cairn-runner-{FIRST}")
    assert job_a.popen_options() == {"user": FIRST, "group": 995, "extra_groups": []}
    assert uids.find("jobs/p/b") == job_b and uids.find("jobs/p/c") is None
    assert uids.owners("jobs/") == ["jobs/p/a", "jobs/p/b"]
    assert stat_mode(tmp_path / "ids") == 0o700


def test_allocations_survive_a_restart_and_freed_uids_come_round_last(tmp_path: Path) -> None:
    first = allocator(tmp_path / "ids")
    a = first.allocate("jobs/p/a").uid
    b = first.allocate("jobs/p/b").uid
    assert first.release("jobs/p/a") == a
    assert first.release("jobs/p/a") is None  # released already

    first.close()  # the server stops: its claims go with it
    again = allocator(tmp_path / "ids")  # a restarted server
    assert again.find("jobs/p/b") is not None and again.find("jobs/p/b").uid == b  # type: ignore[union-attr]
    assert again.find("jobs/p/a") is None
    # In turn: the uids never handed out come first, the freed one after them.
    assert [again.allocate(f"jobs/p/{n}").uid for n in "cde"] == [FIRST + 2, FIRST + 3, a]
    with pytest.raises(RunAsError, match="CAIRN_RUN_UID_RANGE"):
        again.allocate("jobs/p/f")


def test_a_recorded_uid_is_adopted_after_a_restart(tmp_path: Path) -> None:
    uids = allocator(tmp_path / "ids")
    adopted = uids.adopt("jobs/p/a", FIRST + 2)
    assert adopted.uid == FIRST + 2
    uids.close()
    uids = allocator(tmp_path / "ids")
    assert uids.find("jobs/p/a") == adopted
    assert FIRST + 2 not in {uids.allocate(f"jobs/p/{n}").uid for n in "bcd"}


def test_the_state_of_a_copied_home_is_dropped_without_touching_anything(
    tmp_path: Path,
) -> None:
    original = allocator(tmp_path / "ids")
    original.allocate("jobs/p/a")
    original.close()
    copy = allocator(tmp_path / "ids", home_id="home-2")
    assert copy.owners() == []
    assert allocator(tmp_path / "ids", home_id="home-2").owners() == []


def test_uids_of_password_database_users_are_never_handed_out(tmp_path: Path) -> None:
    uids = UidAllocator(BASE, range(0, 1), tmp_path / "ids", claims_dir=tmp_path / "claims")
    with pytest.raises(RunAsError):
        uids.allocate("jobs/p/a")


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another uid needs root")
def test_a_uid_in_use_is_skipped_and_releasing_ends_its_processes(tmp_path: Path) -> None:
    uids = allocator(tmp_path / "ids")
    sleeper = subprocess.Popen(
        ["sleep", "60"],
        user=FIRST,
        group=os.getgid(),
        extra_groups=[],
        cwd="/",
        start_new_session=True,
    )
    try:
        wait_until_running_as(sleeper.pid, FIRST)
        # A process (a leftover no allocation knows of) runs as FIRST: never hand it out.
        job = uids.allocate("jobs/p/a")
        assert job.uid == FIRST + 1
        uids.adopt("jobs/p/old", FIRST)
        assert uids.release("jobs/p/old") == FIRST
        sleeper.wait(timeout=10)  # psutil may have reaped it already
        assert not psutil.pid_exists(sleeper.pid)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def wait_until_running_as(pid: int, uid: int) -> None:
    process = psutil.Process(pid)
    for _ in range(100):
        if process.uids().real == uid:
            return
        psutil.wait_procs([process], timeout=0.05)
    raise AssertionError(f"process {pid} never ran as {uid}")


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_two_servers_of_one_machine_never_hold_the_same_uid(tmp_path: Path) -> None:
    one = allocator(tmp_path / "home-one" / "ids")
    two = UidAllocator(
        BASE,
        range(FIRST, FIRST + 4),
        tmp_path / "home-two" / "ids",
        home_id="home-2",
        claims_dir=tmp_path / "home-one" / "claims",  # the same machine
    )
    held = {one.allocate("jobs/p/a").uid, one.allocate("jobs/p/b").uid}
    theirs = {two.allocate("jobs/q/a").uid, two.allocate("jobs/q/b").uid}
    assert held == {FIRST, FIRST + 1} and theirs == {FIRST + 2, FIRST + 3}
    with pytest.raises(RunAsError):
        two.allocate("jobs/q/c")
    one.release("jobs/p/a")
    assert two.allocate("jobs/q/c").uid == FIRST
    # While one server is down, another may take a uid the first had recorded (nothing ran
    # as it yet). Restarted, the first keeps its record but holds no claim on that uid.
    one.close()
    two.release("jobs/q/a")  # FIRST + 2 is free again
    assert two.allocate("jobs/q/d").uid == FIRST + 1
    restarted = allocator(tmp_path / "home-one" / "ids")
    assert restarted.find("jobs/p/b") is not None
    assert restarted.allocate("jobs/p/c").uid == FIRST + 2
    assert restarted.release("jobs/p/b") == FIRST + 1  # without ending two's processes
