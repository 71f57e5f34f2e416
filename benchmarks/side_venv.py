"""A git-ignored venv beside the benchmarks for a rival the project does not depend on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def side_python(venv: Path, requirement: str, label: str) -> Path | None:
    """`venv`'s interpreter with `requirement` installed on first use; None when that fails."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing {requirement} into {venv} (first use) ...", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        try:
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", requirement], check=True)
        except (subprocess.CalledProcessError, OSError) as error:
            print(f"SKIPPING {label}: could not install {requirement}: {error}")
            return None
    return python
