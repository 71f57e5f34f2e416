"""`make demo`'s script, end to end, on its own server (what a newcomer runs first)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.remote import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "run.py"


@pytest.mark.slow
def test_quickstart_trains_deploys_and_predicts(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--home",
            str(tmp_path / "home"),
            "--port",
            str(free_port()),
            "--stop",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "state: SUCCEEDED" in result.stdout
    assert "Server stopped." in result.stdout
