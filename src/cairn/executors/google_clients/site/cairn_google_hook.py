"""Points Google's client libraries at a Cairn server, unmodified user code included.

Self-contained on purpose (standard library only; the libraries it adjusts are imported by
the user, never by this module), so it works in any Python environment: Cairn puts it on
the path of job replicas and prediction nodes, and a user may install it into an
environment of their own (`python cairn_google_hook.py install`).

It reads gcloud's own endpoint variables (when a client is made) and changes nothing
while they are unset:

- `CLOUDSDK_API_ENDPOINT_OVERRIDES_ML` (e.g. `http://127.0.0.1:8080/`):
  `googleapiclient.discovery.build('ml', ...)` goes there.
- `CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE` (e.g. `http://127.0.0.1:8080/storage/v1/`):
  `build('storage', ...)`, `google.cloud.storage.Client()` and `gcsfs.GCSFileSystem()` go
  there.

googleapiclient reads no endpoint variable and gcsfs only one that also turns off
credentials (`STORAGE_EMULATOR_HOST`), hence the hook. It changes no endpoint a caller sets
explicitly (`client_options`, `endpoint_url`) unless it is one of Google's own
(`*.googleapis.com`), as Google's samples write them. Credentials stay Application Default
Credentials (`GOOGLE_APPLICATION_CREDENTIALS`), which Cairn sets to the job's own.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import sys
import urllib.parse
from typing import Any

ML_VARIABLE = "CLOUDSDK_API_ENDPOINT_OVERRIDES_ML"
STORAGE_VARIABLE = "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"
_STORAGE_PATH = "/storage/v1/"
_PATCHED = "_cairn_google_hook"


def ml_endpoint() -> str | None:
    return os.environ.get(ML_VARIABLE) or None


def storage_endpoint() -> str | None:
    """The storage API's base (gcloud's form ends in /storage/v1/)."""
    return os.environ.get(STORAGE_VARIABLE) or None


def storage_root() -> str | None:
    """The storage server's root URL (scheme and host), as the storage libraries want it."""
    endpoint = storage_endpoint()
    if endpoint is None:
        return None
    if endpoint.rstrip("/").endswith(_STORAGE_PATH.rstrip("/")):
        endpoint = endpoint.rstrip("/")[: -len(_STORAGE_PATH.rstrip("/"))]
    return endpoint.rstrip("/")


def _discovery_endpoint(service: str) -> str | None:
    if service == "ml":
        return ml_endpoint()
    if service == "storage":
        return storage_endpoint()
    return None


def _has_endpoint(options: Any) -> bool:
    """Whether the caller chose an endpoint of its own, not one of Google's.

    Google's samples name Google's regional endpoint explicitly
    (`https://us-central1-ml.googleapis.com`); that is still "Google", so it is redirected.
    """
    if options is None:
        return False
    if isinstance(options, dict):
        endpoint = options.get("api_endpoint")
    else:
        endpoint = getattr(options, "api_endpoint", None)
    if not endpoint:
        return False
    host = urllib.parse.urlsplit(str(endpoint)).hostname or ""
    return not (host == "googleapis.com" or host.endswith(".googleapis.com"))


def _with_endpoint(options: Any, endpoint: str) -> Any:
    if options is None:
        return {"api_endpoint": endpoint}
    if isinstance(options, dict):
        return {**options, "api_endpoint": endpoint}
    options.api_endpoint = endpoint
    return options


def _patch_discovery(module: Any) -> None:
    original = getattr(module, "build", None)
    if original is None or getattr(original, _PATCHED, False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def build(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind_partial(*args, **kwargs)
        service = bound.arguments.get("serviceName")
        endpoint = _discovery_endpoint(str(service)) if service else None
        options = bound.arguments.get("client_options")
        if endpoint is not None and not _has_endpoint(options):
            bound.arguments["client_options"] = _with_endpoint(options, endpoint)
        return original(*bound.args, **bound.kwargs)

    setattr(build, _PATCHED, True)
    module.build = build


def _patch_cloud_storage(module: Any) -> None:
    """Only where the library is too old to read API_ENDPOINT_OVERRIDE (which keeps default
    credentials, unlike STORAGE_EMULATOR_HOST), give `Client` the endpoint."""
    client = getattr(module, "Client", None)
    if client is None or getattr(client.__init__, _PATCHED, False):
        return
    original = client.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        root = storage_root()
        if (
            root is not None
            and not os.environ.get("API_ENDPOINT_OVERRIDE")
            and len(args) < 5  # client_options was not passed by position
            and not _has_endpoint(kwargs.get("client_options"))
        ):
            kwargs["client_options"] = _with_endpoint(kwargs.get("client_options"), root)
        original(self, *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    client.__init__ = __init__


def _patch_gcsfs(module: Any) -> None:
    filesystem = getattr(module, "GCSFileSystem", None)
    if filesystem is None or getattr(filesystem.__init__, _PATCHED, False):
        return
    original = filesystem.__init__
    parameters = list(inspect.signature(original).parameters)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        root = storage_root()
        by_position = "endpoint_url" in parameters and len(args) >= parameters.index("endpoint_url")
        if root is not None and not by_position and not kwargs.get("endpoint_url"):
            kwargs["endpoint_url"] = root
        original(self, *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    filesystem.__init__ = __init__


_PATCHES = {
    "googleapiclient.discovery": _patch_discovery,
    "google.cloud.storage.client": _patch_cloud_storage,
    "gcsfs.core": _patch_gcsfs,
}


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then the module's patch, before anyone imports from it."""

    def __init__(self, loader: Any, patch: Any) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        try:
            self._patch(module)
        except Exception as error:  # a library changed shape: say so, never break the import
            print(
                f"cairn_google_hook: could not adjust {module.__name__}: {error}", file=sys.stderr
            )


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname == "gcsfs" and storage_endpoint():
            # gcsfs's experimental file system first asks Google's gRPC storage-control API
            # about each bucket (a minute of timeouts against Cairn); the plain one is complete.
            os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


def install() -> None:
    """Patch the libraries already imported and those imported later (idempotent).

    The patches read the variables when a client is made, not now: a prediction node's
    standby process loads this hook before it is given its node's environment.
    """
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def install_into(site_packages: str) -> str:
    """Copy this module into `site_packages` with a .pth that loads it at start-up."""
    import shutil

    os.makedirs(site_packages, exist_ok=True)
    target = os.path.join(site_packages, "cairn_google_hook.py")
    if os.path.abspath(__file__) != os.path.abspath(target):
        shutil.copyfile(__file__, target)
    with open(os.path.join(site_packages, "cairn_google_hook.pth"), "w") as handle:
        handle.write("import cairn_google_hook; cairn_google_hook.install()\n")
    return target


def _main(argv: list[str]) -> int:
    if argv[:1] != ["install"] or len(argv) > 2:
        print(
            "usage: python cairn_google_hook.py install [SITE_PACKAGES]\n\n"
            "Installs the hook into SITE_PACKAGES (default: this Python's own), so that\n"
            "googleapiclient, google-cloud-storage and gcsfs honour\n"
            f"{ML_VARIABLE} and {STORAGE_VARIABLE}.",
            file=sys.stderr,
        )
        return 2
    if len(argv) == 2:
        site_packages = argv[1]
    else:
        import sysconfig

        site_packages = sysconfig.get_paths()["purelib"]
    print(f"installed {install_into(site_packages)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
