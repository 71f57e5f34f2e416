"""Google's client libraries and `gsutil`, unchanged, reaching Cairn from user code.

`site/` is put first on the PYTHONPATH of job replicas and prediction nodes. It holds
`sitecustomize.py` (which loads `cairn_google_hook`, then the environment's own
sitecustomize if it has one); `bin/` (first on PATH) holds `gsutil`, Cairn's. All are standard-library
only and live outside any environment, so they work in every environment (the server's,
a job's packages, a runtime version's) without being installed into it; environments
are sealed once built, and a PYTHONPATH entry needs no write.

`install_google_hook` is the other way in: it copies the hook into an environment's
site-packages with a `.pth` that loads it (for an environment built elsewhere, or a
user's own outside Cairn).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent / "site"
BIN_DIR = Path(__file__).resolve().parent / "bin"
HOOK_MODULE = SITE_DIR / "cairn_google_hook.py"
# gcloud's names for endpoint overrides; the hook and gsutil read them.
ML_ENDPOINT_VARIABLE = "CLOUDSDK_API_ENDPOINT_OVERRIDES_ML"
STORAGE_ENDPOINT_VARIABLE = "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"


def google_client_env(
    api_url: str, env: Mapping[str, str], *, project: str | None = None
) -> dict[str, str]:
    """`env` with Google's clients pointed at the Cairn server at `api_url`.

    Cairn's gsutil comes first on PATH, ahead of any gsutil an environment installs
    (Google's speaks only https to Google). google-cloud-storage reads its endpoint from
    API_ENDPOINT_OVERRIDE, which keeps default credentials; STORAGE_EMULATOR_HOST would
    make it anonymous, so it is never set.
    """
    root = api_url.rstrip("/")
    updated = dict(env)
    updated["PATH"] = _prepend(str(BIN_DIR), env.get("PATH", ""))
    updated["PYTHONPATH"] = _prepend(str(SITE_DIR), env.get("PYTHONPATH", ""))
    updated[ML_ENDPOINT_VARIABLE] = root + "/"
    updated[STORAGE_ENDPOINT_VARIABLE] = root + "/storage/v1/"
    updated["API_ENDPOINT_OVERRIDE"] = root
    updated.pop("STORAGE_EMULATOR_HOST", None)
    # gcsfs's experimental file system asks a gRPC API Cairn does not serve (see the hook).
    updated.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    if project is not None:
        # What the metadata server tells code on Google Cloud; storage.Client() needs it.
        updated["GOOGLE_CLOUD_PROJECT"] = project
    return updated


def install_google_hook(site_packages: Path) -> Path:
    """Install the hook into an environment's site-packages; returns the module's path.

    Idempotent. The hook does nothing until CLOUDSDK_API_ENDPOINT_OVERRIDES_ML or
    CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE is set, so it is safe in any environment.
    """
    site_packages.mkdir(parents=True, exist_ok=True)
    target = site_packages / HOOK_MODULE.name
    _write_if_changed(target, HOOK_MODULE.read_bytes())
    _write_if_changed(
        site_packages / "cairn_google_hook.pth",
        b"import cairn_google_hook; cairn_google_hook.install()\n",
    )
    return target


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o644)
    os.replace(temporary, path)


def _prepend(entry: str, value: str) -> str:
    parts = [part for part in value.split(os.pathsep) if part and part != entry]
    return os.pathsep.join([entry, *parts])


__all__ = [
    "BIN_DIR",
    "ML_ENDPOINT_VARIABLE",
    "SITE_DIR",
    "STORAGE_ENDPOINT_VARIABLE",
    "google_client_env",
    "install_google_hook",
]
