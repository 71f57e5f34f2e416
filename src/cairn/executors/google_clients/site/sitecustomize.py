"""Loads Cairn's Google client hook in job replicas and prediction nodes.

Cairn puts this directory first on PYTHONPATH, so Python imports this `sitecustomize` at
start-up instead of any the environment has of its own; that one is run afterwards, so
an environment's start-up customisation still happens.
"""

import importlib.util
import os
import sys


def _run_next_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location(
                "_sitecustomize_of_environment", candidate
            )
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            return


try:
    import cairn_google_hook

    cairn_google_hook.install()
except Exception as error:  # never stop user code from starting
    print(f"cairn: the Google client hook failed to load: {error}", file=sys.stderr)
_run_next_sitecustomize()
