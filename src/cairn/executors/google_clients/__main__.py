"""`python -m cairn.executors.google_clients install [--python PY | --site-packages DIR]`.

The one-step opt-in for an environment outside Cairn: afterwards that environment's
googleapiclient, google-cloud-storage and gcsfs go wherever gcloud's endpoint variables
(CLOUDSDK_API_ENDPOINT_OVERRIDES_ML, CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE) say.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from cairn.executors.google_clients import install_google_hook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cairn.executors.google_clients",
        description="Install Cairn's Google client hook into a Python environment, so that "
        "unmodified googleapiclient, google-cloud-storage and gcsfs code reaches the server "
        "named by CLOUDSDK_API_ENDPOINT_OVERRIDES_ML / _STORAGE (gcloud's own variables).",
    )
    parser.add_argument("command", choices=["install"], help="what to do")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--python",
        help="the interpreter of the environment to change (default: this one)",
    )
    where.add_argument(
        "--site-packages", type=Path, help="a site-packages directory to install into"
    )
    args = parser.parse_args(argv)
    site_packages = args.site_packages
    if site_packages is None:
        python = args.python or sys.executable
        try:
            found = subprocess.run(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError) as error:
            print(f"ERROR: could not ask {python} for its site-packages: {error}", file=sys.stderr)
            return 1
        site_packages = Path(found.stdout.strip())
    installed = install_google_hook(site_packages)
    print(f"Installed {installed} (loaded at start-up by cairn_google_hook.pth).")
    print(
        "Set CLOUDSDK_API_ENDPOINT_OVERRIDES_ML=http://HOST:PORT/ and "
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=http://HOST:PORT/storage/v1/ to use it."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
