"""POSIX ACL entries written as extended attributes, on real files (any owner may set them)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from cairn.executors import RunAs
from cairn.executors.acl import (
    READ,
    SEARCH,
    WRITE,
    AclUnsupported,
    grant_group,
    grant_group_tree,
    grant_user,
    grant_user_tree,
    group_grant,
    make_private,
    open_tree_to_group,
    remove_default,
    revoke_user,
    seal_tree,
    user_grant,
)

SOMEONE = 4242  # an entry may name any uid, whether or not such a user exists


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "private"
    directory.mkdir(mode=0o700)
    try:
        grant_user(directory, SOMEONE, 0)
    except AclUnsupported:
        pytest.skip(f"{tmp_path} is on a file system without POSIX ACLs")
    return directory


def test_an_entry_lets_one_user_in_without_opening_the_mode_to_others(private_dir: Path) -> None:
    grant_user(private_dir, SOMEONE, SEARCH)
    assert user_grant(private_dir, SOMEONE) == SEARCH
    assert user_grant(private_dir, SOMEONE + 1) is None
    assert stat.S_IMODE(private_dir.stat().st_mode) == 0o710  # group bits show the mask
    assert not private_dir.stat().st_mode & stat.S_IRWXO


def test_a_chmod_that_clears_the_group_bits_silences_the_entry(private_dir: Path) -> None:
    grant_user(private_dir, SOMEONE, SEARCH)
    private_dir.chmod(0o700)  # what pytest does to its temporary root
    assert user_grant(private_dir, SOMEONE) == 0


def test_the_way_to_user_code_paths_is_opened_again_when_closed() -> None:
    # Outside pytest's private temporary directories, so only ours need opening.
    with tempfile.TemporaryDirectory() as top:
        Path(top).chmod(0o711)
        private = Path(top) / "private"
        private.mkdir(mode=0o700)
        run_as = RunAs("someone", SOMEONE, SOMEONE, "/nonexistent", reaches=(private / "x",))
        try:
            assert run_as.open_the_way() == [private]
        except AclUnsupported:
            pytest.skip(f"{top} is on a file system without POSIX ACLs")
        assert run_as.open_the_way() == []
        private.chmod(0o700)
        assert run_as.open_the_way() == [private]
        # The entry names the group, which every uid of user code shares, not the user.
        assert group_grant(private, SOMEONE) == SEARCH
        assert user_grant(private, SOMEONE) is None


def test_making_private_closes_group_and_others_but_keeps_named_users_in(
    private_dir: Path,
) -> None:
    grant_user(private_dir, SOMEONE, SEARCH)
    private_dir.chmod(0o715)  # others may enter; the mask (group bits) keeps the user in
    make_private(private_dir)
    assert user_grant(private_dir, SOMEONE) == SEARCH
    assert not private_dir.stat().st_mode & stat.S_IRWXO


def test_inherited_entries_reach_what_is_created_later_whatever_the_umask(
    private_dir: Path,
) -> None:
    grant_user(private_dir, SOMEONE, READ | WRITE | SEARCH, inherit=True)
    umask = os.umask(0o077)
    try:
        (private_dir / "sub").mkdir()
        (private_dir / "sub" / "file").write_text("x")
    finally:
        os.umask(umask)
    assert user_grant(private_dir / "sub", SOMEONE) == READ | WRITE | SEARCH
    assert user_grant(private_dir / "sub", SOMEONE, inherited=True) == READ | WRITE | SEARCH
    assert user_grant(private_dir / "sub" / "file", SOMEONE) == READ | WRITE
    assert not (private_dir / "sub" / "file").stat().st_mode & stat.S_IRWXO


def test_a_tree_grant_covers_what_exists_and_leaves_symlinks_alone(
    private_dir: Path, tmp_path: Path
) -> None:
    (private_dir / "a").mkdir()
    (private_dir / "a" / "data.csv").write_text("1,2\n")
    script = private_dir / "a" / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o700)
    outside = tmp_path / "outside"
    outside.write_text("not to be shared")
    (private_dir / "a" / "link").symlink_to(outside)

    grant_user_tree(private_dir, SOMEONE, READ | SEARCH)

    assert user_grant(private_dir / "a", SOMEONE, inherited=True) == READ | SEARCH
    assert user_grant(private_dir / "a" / "data.csv", SOMEONE) == READ
    assert user_grant(script, SOMEONE) == READ | SEARCH
    assert user_grant(outside, SOMEONE) is None


def test_a_group_entry_lets_the_group_in_and_is_inherited(private_dir: Path) -> None:
    grant_group(private_dir, SOMEONE, READ | SEARCH, inherit=True)
    assert group_grant(private_dir, SOMEONE) == READ | SEARCH
    assert group_grant(private_dir, SOMEONE + 1) is None
    (private_dir / "file").write_text("x")
    assert group_grant(private_dir / "file", SOMEONE) == READ
    remove_default(private_dir)
    remove_default(private_dir)  # none left is fine
    (private_dir / "later").write_text("x")
    assert group_grant(private_dir / "later", SOMEONE) is None
    assert group_grant(private_dir, SOMEONE, inherited=True) is None


def test_a_group_tree_grant_covers_what_exists(private_dir: Path) -> None:
    (private_dir / "a").mkdir()
    (private_dir / "a" / "data.csv").write_text("1,2\n")
    grant_group_tree(private_dir, SOMEONE, READ | SEARCH)
    assert group_grant(private_dir / "a", SOMEONE, inherited=True) == READ | SEARCH
    assert group_grant(private_dir / "a" / "data.csv", SOMEONE) == READ


def test_revoking_a_user_removes_its_entries_and_leaves_the_others(private_dir: Path) -> None:
    grant_user(private_dir, SOMEONE, READ | SEARCH, inherit=True)
    grant_user(private_dir, SOMEONE + 1, SEARCH)
    revoke_user(private_dir, SOMEONE)
    assert user_grant(private_dir, SOMEONE) is None
    assert user_grant(private_dir, SOMEONE, inherited=True) is None
    assert user_grant(private_dir, SOMEONE + 1) == SEARCH
    assert stat.S_IMODE(private_dir.stat().st_mode) == 0o710  # the mask shrank with it
    revoke_user(private_dir, SOMEONE)  # nothing left to revoke is fine


def test_a_sealed_tree_is_readable_by_the_group_and_writable_by_nobody_else(
    private_dir: Path, tmp_path: Path
) -> None:
    group = os.getgid()
    env = private_dir / "env"
    (env / "bin").mkdir(parents=True)
    script = env / "bin" / "tool"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o777)
    module = env / "module.py"
    module.write_text("x = 1\n")
    module.chmod(0o666)
    grant_user(module, SOMEONE, READ | WRITE)
    grant_user(env, SOMEONE, READ | WRITE | SEARCH, inherit=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the environment's")
    outside.chmod(0o600)
    os.link(outside, env / "linked.txt")
    (env / "python").symlink_to(outside)
    os.mkfifo(env / "fifo")

    seal_tree(env, group)

    for path, mode in ((env, 0o750), (env / "bin", 0o750), (script, 0o750), (module, 0o640)):
        info = path.lstat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (mode, group), path
        assert user_grant(path, SOMEONE) is None, path
    assert user_grant(env, SOMEONE, inherited=True) is None
    # The hard link became a copy of its own; the file outside kept its mode.
    assert (env / "linked.txt").stat().st_ino != outside.stat().st_ino
    assert (env / "linked.txt").read_text() == "not the environment's"
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600
    assert (env / "python").is_symlink() and not (env / "fifo").exists()


def test_a_tree_user_code_made_narrow_is_opened_to_the_group_without_following_links(
    private_dir: Path,
) -> None:
    """TensorFlow makes directories 0o755, which caps the buckets' inherited group entry:
    the next job (another uid) could not write into a job dir an earlier one made."""
    grant_group(private_dir, 4343, READ | WRITE | SEARCH, inherit=True)
    made = private_dir / "job-dir" / "metric_tb"
    made.mkdir(parents=True, mode=0o755)
    os.chmod(private_dir / "job-dir", 0o755)  # the default ACL's mask, capped as mkdir does
    os.chmod(made, 0o755)
    events = made / "events.out"
    events.write_text("x")
    os.chmod(events, 0o644)
    secret = private_dir / "secret"
    secret.write_text("the server's")
    os.chmod(secret, 0o600)
    (made / "link").symlink_to(secret)

    open_tree_to_group(private_dir / "job-dir")

    assert group_grant(made, 4343) == READ | WRITE | SEARCH
    assert group_grant(events, 4343) == READ | WRITE
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600  # the link was not followed
