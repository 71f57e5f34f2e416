"""Granting one user access to a path through POSIX ACLs, without the `acl` tools.

A root server shares job directories, buckets and environments with the unprivileged
user that runs user code, while its own files stay private. Mode bits cannot say "this
one user, and nobody else", an ACL entry can; default ACLs make whatever is created in a
directory later (by the server or by user code, whatever its umask) carry the entry too.

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
    mode = os.lstat(path).st_mode
    _write(path, _ACCESS, _with_user(_read(path, _ACCESS, mode), uid, perms))
    if inherit and stat.S_ISDIR(mode):
        # A default ACL starts from the directory's own base entries, as setfacl does.
        base = _read(path, _DEFAULT, None) or _base_entries(_read(path, _ACCESS, mode))
        _write(path, _DEFAULT, _with_user(base, uid, perms))


def grant_user_tree(root: Path, uid: int, perms: int) -> None:
    """`grant_user` on `root` and everything below it (symlinks are left alone).

    Directories get `perms` and pass them on; files get `perms` without SEARCH unless
    their owner may execute them (like setfacl's `X`).
    """
    grant_user(root, uid, perms, inherit=True)
    for directory, subdirs, files in os.walk(root):
        for name in subdirs:
            path = Path(directory, name)
            if not path.is_symlink():
                grant_user(path, uid, perms, inherit=True)
        for name in files:
            path = Path(directory, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                executable = SEARCH if mode & stat.S_IXUSR else 0
                grant_user(path, uid, (perms & ~SEARCH) | (perms & executable))


def user_grant(path: Path, uid: int, *, inherited: bool = False) -> int | None:
    """What `path`'s access ACL (or default ACL) lets `uid` do through an entry naming it.

    The mask counts: a `chmod g-rwx` (pytest does one on its temporary root) silences an
    entry without removing it. None: no entry names `uid`.
    """
    if inherited:
        entries = _read(path, _DEFAULT, None)
    else:
        entries = _read(path, _ACCESS, os.lstat(path).st_mode)
    granted = entries.get((_USER, uid))
    if granted is None:
        return None
    return granted & entries.get((_MASK, _UNDEFINED_ID), 7)


def _with_user(entries: Entries, uid: int, perms: int) -> Entries:
    updated = dict(entries)
    updated[(_USER, uid)] = perms
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
