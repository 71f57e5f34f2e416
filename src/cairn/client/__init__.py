"""The Python client of Cairn's REST API (what the CLI and users' scripts talk through)."""

from cairn.client.client import TERMINAL_JOB_STATES, CairnClient

__all__ = ["TERMINAL_JOB_STATES", "CairnClient"]
