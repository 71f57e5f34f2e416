"""Opaque page cursors: the sequence number of the last document a page returned.

Callers hand the cursor back verbatim as a page token, so it is encoded to discourage anyone
from building one by hand and to let its format change without breaking clients' loops.
"""

from __future__ import annotations

import base64
import binascii

from cairn.domain.errors import invalid_field

_PREFIX = "s1:"


def encode_cursor(seq: int) -> str:
    """The cursor meaning "strictly after the document with sequence number `seq`"."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The sequence number inside `cursor`; INVALID_ARGUMENT (field pageToken) if malformed."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        seq = int(text[len(_PREFIX) :])
        if seq < 0:
            raise ValueError(text)
    except (ValueError, UnicodeError, binascii.Error):
        raise invalid_field(
            "pageToken",
            "The page token is not one this server issued; list again without a page token "
            "to start from the first page.",
        ) from None
    return seq
