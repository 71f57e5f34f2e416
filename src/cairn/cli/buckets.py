"""Which local buckets a command that works on files (`storage`, `data`, `local`) uses.

--home when given, else $CAIRN_HOME, else the buckets of the server at --api/$CAIRN_API
when it runs on this machine (asked through `GET /cairn/v1/info`), else ~/.cairn. So the
CLI and the server the other commands talk to see the same files without repeating --home.
Falling back to ~/.cairn is said on stderr, and every "not found" names the buckets it
looked in: a newcomer whose server is not running sees why a bucket is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

from cairn.cli.options import current_api
from cairn.config import Settings, home_from_env
from cairn.domain.errors import ApiError, Code
from cairn.storage import BucketStorage

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Buckets:
    """Local buckets and how they were chosen (said in messages that depend on it)."""

    storage: BucketStorage
    source: str

    @property
    def where(self) -> str:
        return f"the local buckets in {self.storage.root} ({self.source})"

    def explain(self, error: ApiError) -> ApiError:
        """A NOT_FOUND that also says which buckets were searched."""
        if error.code is not Code.NOT_FOUND or str(self.storage.root) in error.message:
            return error
        return ApiError(error.code, f"{error.message} Looked in {self.where}.")


def find_buckets(home: Path | None = None) -> Buckets:
    """The buckets for this command (found once per command: one question, one warning)."""
    ctx = click.get_current_context(silent=True)
    cache: dict[Path | None, Buckets] = ctx.meta.setdefault("cairn.buckets", {}) if ctx else {}
    if home not in cache:
        cache[home] = _find(home)
    return cache[home]


def _find(home: Path | None) -> Buckets:
    if home is not None:
        return Buckets(BucketStorage(Settings.from_env(home=home).storage_root), "--home")
    if home_from_env() is not None:
        return Buckets(BucketStorage(Settings.from_env().storage_root), "$CAIRN_HOME")
    url = current_api()
    answered = False
    here = urlsplit(url).hostname in LOOPBACK_HOSTS
    if here:
        from cairn.client import CairnClient

        try:
            with CairnClient(url, "cairn-local", timeout=2.0) as client:
                root = Path(str(client.server_info()["storageRoot"]))
            return Buckets(BucketStorage(root), f"those of the server at {url}")
        except KeyError:
            answered = True  # an older server that does not say where its buckets are
        except ApiError:
            pass
    root = Settings.from_env().storage_root
    if not here:
        reason = f"the server at {url} is not on this machine"
    elif answered:
        reason = f"the server at {url} does not say where its buckets are"
    else:
        reason = f"no Cairn server answers at {url}"
    click.echo(
        f"WARNING: {reason}; using the local buckets in {root}. Pass --home or set "
        "CAIRN_HOME to use another home.",
        err=True,
    )
    return Buckets(BucketStorage(root), f"the default home: {reason}")


def local_buckets(home: Path | None = None) -> BucketStorage:
    return find_buckets(home).storage
