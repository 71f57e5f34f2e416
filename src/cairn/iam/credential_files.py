"""The credential files Cairn hands to people, programs and jobs, in google-auth's formats,
and the one way Cairn writes a file only its owner may read."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

CLI_CLIENT_ID = "cairn-cli"
# Installed-app clients cannot keep a secret (gcloud's is public too); it is not checked.
PUBLIC_CLIENT_SECRET = "not-a-secret"


def user_credential(refresh_token: str, token_uri: str, account: str) -> dict[str, Any]:
    """A credential file google-auth loads unchanged and refreshes at Cairn's `/token`.

    google-auth's `authorized_user` type always refreshes at Google's endpoint, whatever the
    file says; its `external_account_authorized_user` type honours `token_url`, so that is
    the type Cairn writes (`google.auth.default()` and `load_credentials_from_file` read it).
    """
    return {
        "type": "external_account_authorized_user",
        "audience": "//cairn",
        "client_id": CLI_CLIENT_ID,
        "client_secret": PUBLIC_CLIENT_SECRET,
        "refresh_token": refresh_token,
        "token_url": token_uri,
        "revoke_url": token_uri.rsplit("/", 1)[0] + "/revoke",
        "universe_domain": "googleapis.com",
        "account": account,
    }


def write_private_file(path: Path, data: str | bytes) -> Path:
    """Write `data` to `path` as this OS user's alone (0600), atomically: a reader sees the
    old file or the new one, never half, and the secret is never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
