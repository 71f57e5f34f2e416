"""What every `cairn jobs submit …` does once its body is built: create, then report or follow."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cairn.cli.jobs.stream_logs import follow_logs
from cairn.cli.options import Session
from cairn.client import TERMINAL_JOB_STATES, CairnClient
from cairn.domain.errors import ApiError, Code


def create_and_follow(
    session: Session,
    job: str,
    body: dict[str, Any],
    *,
    stream_logs: bool,
    output: str | None,
    on_refused: Callable[[], None] | None = None,
) -> None:
    """Create the job; without `stream_logs` say how to follow it, else follow its logs to
    the end and fail unless it SUCCEEDED. `output`: the job's output field to show at the
    end (None: only its state). `on_refused`: called when the server refuses the job (to
    remove what was uploaded for it)."""
    try:
        created = session.client.create_job(body)
    except ApiError:
        if on_refused is not None:
            on_refused()
        raise
    printer = session.printer
    printer.status(f"Job [{job}] submitted successfully.")
    if not stream_logs:
        printer.status(
            "Your job is still active. You may view the status of your job with the command\n\n"
            f"  $ cairn jobs describe {job}\n\n"
            "or continue streaming the logs with the command\n\n"
            f"  $ cairn jobs stream-logs {job}"
        )
        printer.resource({"jobId": created.get("jobId", job), "state": created.get("state")})
        return
    state = follow_logs(session.client, printer, job)
    final = wait_for_end(session.client, job, state)
    summary = {"jobId": job, "state": final.get("state", state)}
    if output is not None and final.get(output):
        summary[output] = final[output]
    printer.resource(summary)
    if summary["state"] != "SUCCEEDED":
        message = final.get("errorMessage") or "see `cairn jobs describe " + job + "`"
        raise ApiError(Code.FAILED_PRECONDITION, f"Job [{job}] ended {summary['state']}: {message}")


def wait_for_end(client: CairnClient, job: str, state: str) -> dict[str, Any]:
    """The job once its final counts are written (they follow its state within moments)."""
    final = client.get_job(job)
    deadline = time.monotonic() + 10
    while final.get("state") not in TERMINAL_JOB_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
        final = client.get_job(job)
    return final
