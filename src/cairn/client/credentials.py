"""How a client proves who it is: finding a credential and turning it into access tokens.

The search, first match wins (gcloud's order, with Cairn's local owner last):
1. `CAIRN_ACCESS_TOKEN`: a bare access token handed over by the user;
2. the active account that `cairn auth login` signed in for this server;
3. the owner credential of a local server's home (`--home`, `CAIRN_HOME`, or the home the
   server at a loopback address reports), which only this machine's user can read.
Without any, requests go out bare and the server answers UNAUTHENTICATED, saying what to do.

A refresh token only ever goes to the `token_url` its file names. The owner's is used only
when the API URL is that same server and the process listening there holds the home's
lock: another local process that answers on a port (or claims a home) gets nothing.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from cairn.config import access_token_from_env, config_dir, home_from_env, owner_credential_path
from cairn.domain.errors import ApiError, Code
from cairn.iam.credential_files import CLI_CLIENT_ID, user_credential, write_private_file

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_EARLY_REFRESH_SECONDS = 60


class Credential:
    """A source of access tokens; this base class has none (requests go out bare)."""

    description = "no credential"

    def token(self, api_url: str) -> str | None:
        return None

    def invalidate(self) -> bool:
        """Forget a token the server refused; True when a fresh one can be obtained."""
        return False


class StaticToken(Credential):
    def __init__(self, token: str, description: str = "CAIRN_ACCESS_TOKEN") -> None:
        self._token = token
        self.description = description

    def token(self, api_url: str) -> str | None:
        return self._token


class RefreshTokenCredential(Credential):
    """An authorized-user credential: a refresh token exchanged at the server's `/token`."""

    def __init__(self, info: dict[str, Any], description: str) -> None:
        self.info = info
        self.token_url = str(info.get("token_url") or "")
        self.description = description
        self._lock = threading.Lock()
        self._access: tuple[str, float] | None = None

    @property
    def account(self) -> str:
        return str(self.info.get("account") or "")

    def token(self, api_url: str) -> str | None:
        with self._lock:
            if self._access is None or self._access[1] < time.monotonic():
                self._access = exchange_refresh_token(self.token_url, self.info)
            return self._access[0]

    def invalidate(self) -> bool:
        with self._lock:
            self._access = None
        return True


def exchange_refresh_token(token_url: str, info: dict[str, Any]) -> tuple[str, float]:
    """POST the refresh-token grant to `token_url`; (access token, monotonic expiry)."""
    status, body = _post_form(
        token_url,
        {
            "grant_type": "refresh_token",
            "refresh_token": str(info.get("refresh_token", "")),
            "client_id": str(info.get("client_id", "")),
        },
    )
    if status != 200 or "access_token" not in body:
        raise ApiError(
            Code.UNAUTHENTICATED,
            f"The server refused the stored credential ({body.get('error_description') or status})."
            " Sign in again with `cairn auth login`.",
        )
    lifetime = float(body.get("expires_in", 3600)) - _EARLY_REFRESH_SECONDS
    return str(body["access_token"]), time.monotonic() + max(lifetime, 1.0)


def _post_form(url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.post(url, data=form, timeout=30.0)
    except httpx.TransportError:
        raise ApiError(
            Code.UNAVAILABLE,
            f"No Cairn server answers at {url}. Start one with `cairn server`.",
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def sign_in(api_url: str, code: str) -> dict[str, Any]:
    """Exchange a one-time sign-in code for a credential file's contents."""
    status, body = _post_form(
        api_url.rstrip("/") + "/token",
        {"grant_type": "authorization_code", "code": code, "client_id": CLI_CLIENT_ID},
    )
    if status != 200 or "refresh_token" not in body:
        raise ApiError(
            Code.UNAUTHENTICATED,
            f"Sign-in refused: {body.get('error_description') or status}",
        )
    token_uri = api_url.rstrip("/") + "/token"
    return user_credential(str(body["refresh_token"]), token_uri, str(body.get("account", "")))


def revoke(api_url: str, refresh_token: str) -> None:
    status, body = _post_form(api_url.rstrip("/") + "/revoke", {"token": refresh_token})
    if status != 200:
        raise ApiError(Code.UNAVAILABLE, f"The server did not revoke the credential: {body}")


# -- signed-in accounts (`cairn auth login`) -----------------------------------------------


def accounts_file() -> Path:
    return config_dir() / "credentials.json"


def read_accounts() -> dict[str, Any]:
    """{api_url: {"active": email, "accounts": {email: authorized-user info}}}."""
    path = accounts_file()
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def write_accounts(accounts: dict[str, Any]) -> Path:
    return write_private_file(accounts_file(), json.dumps(accounts, indent=2))


def server_key(api_url: str) -> str:
    return api_url.rstrip("/")


# -- the search ----------------------------------------------------------------------------


def find_credential(api_url: str, home: Path | None = None) -> Credential:
    """The credential a client of `api_url` should use (see the module docstring)."""
    if token := access_token_from_env():
        return StaticToken(token)
    signed_in = read_accounts().get(server_key(api_url)) or {}
    active = signed_in.get("active")
    info = (signed_in.get("accounts") or {}).get(active) if active else None
    if isinstance(info, dict):
        return RefreshTokenCredential(info, f"account {active} (cairn auth login)")
    home = home or home_from_env() or _reported_home(api_url)
    owner_file = None if home is None else owner_credential_path(home)
    try:
        info = json.loads(owner_file.read_text()) if owner_file else None
    except (OSError, ValueError):
        info = None
    if isinstance(info, dict) and home is not None and _is_home_server(api_url, info, home):
        return RefreshTokenCredential(info, f"the server owner's credential ({owner_file})")
    return Credential()


def _is_home_server(api_url: str, info: dict[str, Any], home: Path) -> bool:
    """Whether `api_url` is the server whose home holds this owner credential."""
    api, token = urlsplit(api_url), urlsplit(str(info.get("token_url") or ""))
    if api.hostname not in LOOPBACK_HOSTS or token.hostname not in LOOPBACK_HOSTS:
        return False
    if api.port != token.port or api.port is None:
        return False
    try:
        pid = int((home / "server.lock").read_text().strip())
        listening = psutil.Process(pid).net_connections(kind="inet")
    except (OSError, ValueError, psutil.Error):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == api.port for c in listening)


def _reported_home(api_url: str) -> Path | None:
    """The home a server on this machine reports at `GET /cairn/v1/info`."""
    if urlsplit(api_url).hostname not in LOOPBACK_HOSTS:
        return None
    try:
        response = httpx.get(api_url.rstrip("/") + "/cairn/v1/info", timeout=2.0)
        home = response.json().get("home") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return Path(home) if isinstance(home, str) else None
