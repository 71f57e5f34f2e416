"""Granting one user (or one group) access to a path through POSIX ACLs, without the `acl`
tools.

A root server shares job directories, buckets and environments with the unprivileged
users that run user code, while its own files stay private. Mode bits cannot say "this
one user, and nobody else", an ACL entry can; default ACLs make whatever is created in a
directory later (by the server or by user code, whatever its umask) carry the entry too.
`seal_tree` goes the other way: it hands a finished tree (a package environment) to the
server, readable by one group, writable by nobody else.

Linux stores ACLs in the `system.posix_acl_access` / `system.posix_acl_default` extended
attributes in a small binary format (`include/uapi/linux/posix_acl_xattr.h`), which is
read and written here with `os.getxattr`/`os.setxattr`, so Cairn needs no `setfacl`.
Writing the access ACL also updates the mode bits (the group bits show the mask).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

READ, WRITE, SEARCH = 4, 2, 1  # SEARCH is "execute" for files

_ACCESS = "system.posix_acl_access"
_DEFAULT = "system.posix_acl_default"
_VERSION = 2
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
_UNDEFINED_ID = 0xFFFFFFFF
# Entry tags, in the order the kernel requires them.
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

Entries = dict[tuple[int, int], int]  # (tag, id) -> permission bits


class AclUnsupported(OSError):
    """The file system of a path does not store POSIX ACLs."""


def grant_user(path: Path, uid: int, perms: int, *, inherit: bool = False) -> None:
    """Give user `uid` exactly `perms` on `path`; with `inherit` (directories), also on
    everything created inside it from now on."""
    _grant(path, (_USER, uid), perms, inherit)


def grant_group(path: Path, gid: int, perms: int, *, inherit: bool = False) -> None:
    """`grant_user` for the members of group `gid` (processes whose group it is)."""
    _grant(path, (_GROUP, gid), perms, inherit)


def revoke_user(path: Path, uid: int) -> None:
    """Remove the entries naming user `uid` from `path`'s access and default ACLs."""
    mode = os.lstat(path).st_mode
    for name, entries in (
        (_ACCESS, _read(path, _ACCESS, mode)),
        (_DEFAULT, _read(path, _DEFAULT, None)),
    ):
        if entries.pop((_USER, uid), None) is not None:
            entries[(_MASK, _UNDEFINED_ID)] = _group_class(entries)
            _write(path, name, entries)


def remove_default(path: Path) -> None:
    """Drop `path`'s default ACL: what is created in it later inherits no entries."""
    try:
        os.removexattr(path, _DEFAULT, follow_symlinks=False)
    except OSError as error:
        if error.errno != errno.ENODATA:
            raise _translated(error, path) from None


def _grant(path: Path, key: tuple[int, int], perms: int, inherit: bool) -> None:
    mode = os.lstat(path).st_mode
    _write(path, _ACCESS, _with_entry(_read(path, _ACCESS, mode), key, perms))
    if inherit and stat.S_ISDIR(mode):
        # A default ACL starts from the directory's own base entries, as setfacl does.
        base = _read(path, _DEFAULT, None) or _base_entries(_read(path, _ACCESS, mode))
        _write(path, _DEFAULT, _with_entry(base, key, perms))


def make_private(path: Path) -> None:
    """Take every permission from the owning group and from others, like `chmod go=`, but
    keep what entries naming a user grant, so those users never lose access meanwhile."""
    entries = _read(path, _ACCESS, os.lstat(path).st_mode)
    entries[(_GROUP_OBJ, _UNDEFINED_ID)] = 0
    entries[(_OTHER, _UNDEFINED_ID)] = 0
    if any(tag in (_USER, _GROUP) for tag, _ in entries):
        entries[(_MASK, _UNDEFINED_ID)] = _group_class(entries)
    _write(path, _ACCESS, entries)


def grant_user_tree(root: Path, uid: int, perms: int) -> None:
    """`grant_user` on `root` and everything below it (symlinks are left alone).

    Directories get `perms` and pass them on; files get `perms` without SEARCH unless
    their owner may execute them (like setfacl's `X`).
    """
    _grant_tree(root, (_USER, uid), perms)


def grant_group_tree(root: Path, gid: int, perms: int) -> None:
    """`grant_user_tree` for the members of group `gid`."""
    _grant_tree(root, (_GROUP, gid), perms)


def _grant_tree(root: Path, key: tuple[int, int], perms: int) -> None:
    _grant(root, key, perms, True)
    for directory, subdirs, files in os.walk(root):
        for name in subdirs:
            path = Path(directory, name)
            if not path.is_symlink():
                _grant(path, key, perms, True)
        for name in files:
            path = Path(directory, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                executable = SEARCH if mode & stat.S_IXUSR else 0
                _grant(path, key, (perms & ~SEARCH) | (perms & executable), False)


def user_grant(path: Path, uid: int, *, inherited: bool = False) -> int | None:
    """What `path`'s access ACL (or default ACL) lets `uid` do through an entry naming it.

    The mask counts: a `chmod g-rwx` (pytest does one on its temporary root) silences an
    entry without removing it. None: no entry names `uid`.
    """
    return _granted(path, (_USER, uid), inherited)


def group_grant(path: Path, gid: int, *, inherited: bool = False) -> int | None:
    """`user_grant` for an entry naming group `gid`."""
    return _granted(path, (_GROUP, gid), inherited)


def _granted(path: Path, key: tuple[int, int], inherited: bool) -> int | None:
    if inherited:
        entries = _read(path, _DEFAULT, None)
    else:
        entries = _read(path, _ACCESS, os.lstat(path).st_mode)
    granted = entries.get(key)
    if granted is None:
        return None
    return granted & entries.get((_MASK, _UNDEFINED_ID), 7)


def seal_tree(root: Path, gid: int) -> None:
    """Make `root` and everything below it the server's: this process's user owns it, group
    `gid` may read it (and run what is executable), nobody else may do anything, and no
    ACL entries remain.

    Safe while the tree's former owner still runs processes: every step acts on a file
    opened without following links, relative to a directory already sealed (so nobody
    but root can swap its entries meanwhile). Hard-linked files are replaced by copies (a
    link could share the inode with a file outside the tree), and what is neither file,
    directory nor symlink (fifos, sockets) is removed.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _seal_directory(fd, gid)
    finally:
        os.close(fd)


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _seal_directory(fd: int, gid: int) -> None:
    _seal(fd, gid, 0o750, directory=True)
    for name in os.listdir(fd):
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            os.chown(name, os.geteuid(), gid, dir_fd=fd, follow_symlinks=False)
        elif stat.S_ISDIR(info.st_mode):
            child = os.open(name, _OPEN_FLAGS | os.O_DIRECTORY, dir_fd=fd)
            try:
                _seal_directory(child, gid)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            if info.st_nlink > 1:
                _replace_with_copy(fd, name)
            child = os.open(name, _OPEN_FLAGS, dir_fd=fd)
            try:
                mode = os.fstat(child).st_mode
                if not stat.S_ISREG(mode):
                    raise OSError(errno.EINVAL, "changed while being sealed", name)
                _seal(child, gid, 0o750 if mode & 0o111 else 0o640, directory=False)
            finally:
                os.close(child)
        else:
            os.unlink(name, dir_fd=fd)


def _seal(fd: int, gid: int, mode: int, *, directory: bool) -> None:
    os.fchown(fd, os.geteuid(), gid)
    for name in (_ACCESS, _DEFAULT) if directory else (_ACCESS,):
        try:
            os.removexattr(fd, name)
        except OSError as error:
            if error.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    os.fchmod(fd, mode)  # after the ACL is gone, so the group bits are the group's own


def _replace_with_copy(directory_fd: int, name: str) -> None:
    temporary = f".{name}.cairn-copy"
    source = os.open(name, _OPEN_FLAGS, dir_fd=directory_fd)
    try:
        target = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
            0o600,
            dir_fd=directory_fd,
        )
        try:
            while chunk := os.read(source, 1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(target, view) :]
            os.fchmod(target, os.fstat(source).st_mode & 0o777)
        finally:
            os.close(target)
    finally:
        os.close(source)
    os.replace(temporary, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)


def _with_entry(entries: Entries, key: tuple[int, int], perms: int) -> Entries:
    updated = dict(entries)
    updated[key] = perms
    # Like setfacl: the mask becomes the union of the group class, so the entry counts.
    updated[(_MASK, _UNDEFINED_ID)] = _group_class(updated)
    return updated


def _group_class(entries: Entries) -> int:
    bits = 0
    for (tag, _), perms in entries.items():
        if tag in (_USER, _GROUP_OBJ, _GROUP):
            bits |= perms
    return bits


def _base_entries(entries: Entries) -> Entries:
    """The owner, group and other entries, with the group entry as the mask shows it."""
    base = {key: perms for key, perms in entries.items() if key[0] in (_USER_OBJ, _OTHER)}
    base[(_GROUP_OBJ, _UNDEFINED_ID)] = entries[(_GROUP_OBJ, _UNDEFINED_ID)] & entries.get(
        (_MASK, _UNDEFINED_ID), 7
    )
    return base


def _from_mode(mode: int) -> Entries:
    return {
        (_USER_OBJ, _UNDEFINED_ID): (mode >> 6) & 7,
        (_GROUP_OBJ, _UNDEFINED_ID): (mode >> 3) & 7,
        (_OTHER, _UNDEFINED_ID): mode & 7,
    }


def _read(path: Path, name: str, mode: int | None) -> Entries:
    """The ACL stored in `name`; without one, the access ACL the mode implies (or {})."""
    try:
        data = os.getxattr(path, name, follow_symlinks=False)
    except OSError as error:
        if error.errno == errno.ENODATA:
            return _from_mode(mode) if mode is not None else {}
        raise _translated(error, path) from None
    (version,) = _HEADER.unpack_from(data)
    if version != _VERSION:
        raise OSError(errno.EINVAL, f"unknown POSIX ACL version {version}", str(path))
    return {(tag, ident): perms for tag, perms, ident in _ENTRY.iter_unpack(data[_HEADER.size :])}


def _write(path: Path, name: str, entries: Entries) -> None:
    data = _HEADER.pack(_VERSION) + b"".join(
        _ENTRY.pack(tag, perms, ident) for (tag, ident), perms in sorted(entries.items())
    )
    try:
        os.setxattr(path, name, data, follow_symlinks=False)
    except OSError as error:
        raise _translated(error, path) from None


def _translated(error: OSError, path: Path) -> OSError:
    if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
        return AclUnsupported(error.errno, "the file system does not support POSIX ACLs", str(path))
    return error


def open_tree_to_group(root: Path) -> None:
    """Give a tree's group class write access again (directories rwx, files rw), where user
    code created it narrower.

    Buckets are shared by all user code through an inherited group entry, but a process's
    `mkdir(path, 0o755)` (TensorFlow's) caps that entry with the ACL mask: the next job, a
    uid of its own, could not write into the job dir a previous one made. Run as root over
    trees user code can still change, so every entry is opened without following links and
    changed through its descriptor (a link swapped in meanwhile is never followed).
    """
    try:
        walker = os.fwalk(root, follow_symlinks=False)
        for _, dirs, files, dir_fd in walker:
            for name in (*dirs, *files):
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
                except OSError:
                    continue  # a link, or gone meanwhile
                try:
                    mode = os.fstat(fd).st_mode
                    wanted = 0o070 if stat.S_ISDIR(mode) else 0o060
                    if (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) and mode & wanted != wanted:
                        os.fchmod(fd, stat.S_IMODE(mode) | wanted)
                finally:
                    os.close(fd)
    except OSError:
        return  # no such tree (yet): nothing to open
