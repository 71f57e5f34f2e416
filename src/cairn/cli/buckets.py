"""Which local buckets an in-process command (`cairn storage`, `cairn data`) works on.

--home when given, else $CAIRN_HOME, else the buckets of the server at $CAIRN_API when it
runs on this machine (asked through `GET /cairn/v1/info`), else ~/.cairn. So the CLI and
the server the other commands talk to see the same files without repeating --home.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from cairn.client import CairnClient
from cairn.config import Settings, api_url, home_from_env
from cairn.domain.errors import ApiError
from cairn.storage import BucketStorage

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def storage_root(home: Path | None = None) -> Path:
    if home is not None or home_from_env() is not None:
        return Settings.from_env(home=home).storage_root
    url = api_url()
    if urlsplit(url).hostname in LOOPBACK_HOSTS:
        try:
            with CairnClient(url, "cairn-local", timeout=2.0) as client:
                return Path(str(client.server_info()["storageRoot"]))
        except (ApiError, KeyError):
            pass  # no server (or an older one): fall back to the configured home
    return Settings.from_env().storage_root


def local_buckets(home: Path | None = None) -> BucketStorage:
    return BucketStorage(storage_root(home))
