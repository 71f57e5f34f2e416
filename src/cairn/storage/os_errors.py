"""Operating-system errors met while touching the disk, as the canonical errors they mean.

Most are the server's condition, not the caller's mistake: a read-only or full disk must
reach the client as a clear FAILED_PRECONDITION or RESOURCE_EXHAUSTED naming the place,
never as a 500 that only the server log explains.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from cairn.domain.errors import ApiError, Code

_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def storage_error(error: OSError, where: str) -> ApiError:
    """The ApiError that `error`, raised while working on `where`, stands for."""
    if error.errno in _NOT_WRITABLE:
        return ApiError(
            Code.FAILED_PRECONDITION,
            f"The server's storage refuses access to {where} ({error.strerror}); the "
            "server's operator must make its storage directory writable.",
        )
    if error.errno in _FULL:
        return ApiError(
            Code.RESOURCE_EXHAUSTED,
            f"The server's storage is full; {where} was not written. Free some space first.",
        )
    if error.errno == errno.ENAMETOOLONG:
        return ApiError(
            Code.INVALID_ARGUMENT,
            f"{where} has a name too long for the server's file system; choose a shorter one.",
        )
    return ApiError(
        Code.UNAVAILABLE,
        f"The server's storage failed on {where} ({error.strerror or error}); try again.",
    )


@contextmanager
def disk_errors_reported(where: str) -> Iterator[None]:
    """Turn any OSError inside the block into `storage_error(error, where)`."""
    try:
        yield
    except OSError as error:
        raise storage_error(error, where) from error
