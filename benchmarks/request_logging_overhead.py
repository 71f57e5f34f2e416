"""What request logging costs the predict path, measured on `PredictionService.predict` alone.

The serving layer is replaced by one that answers at once, so the figure is the service's
own per-request work (route lookup, logging decision, queue append), the part request
logging adds to; a node round trip (~100 µs and up) is far larger and is left out on
purpose. Cases, each timed over many calls, best of `--repeats` runs:

* before: the predict path as it was before logging existed (`--before FILE`, a copy of
  the old services/predictions.py), when given;
* off: a version that logs nothing;
* unsampled: samplingPercentage 0.001 (one random draw per request, nearly never kept);
* sampled: samplingPercentage 1 (every request appended to the writer's queue, while the
  writer thread inserts into a real SQLite store);
* access: the model's access log on (two clock reads and an append per request).

    .venv/bin/python benchmarks/request_logging_overhead.py [--calls 200000] [--before FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cairn.services.predictions import PredictionService, _Route
from cairn.services.request_logs import LoggingPolicy, PredictionLogWriter
from cairn.store import MetadataStore

KEY = "projects/bench/models/m/versions/v1"
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
ANSWER = b'{"predictions": [0]}'
RESULTS = Path(__file__).parent / "results" / "request_logging_overhead.json"


class InstantServing:
    def is_deployed(self, key: str) -> bool:
        return True

    async def predict(self, key: str, body: bytes) -> tuple[int, bytes]:
        return 200, ANSWER


class NoChanges:
    """Stands in for the model and version services: routes are pre-filled, never resolved."""

    def __init__(self) -> None:
        self.on_change: list[Any] = []


def timed(service: Any, calls: int, repeats: int) -> float:
    """Best per-call time in nanoseconds over `repeats` runs of `calls` awaited predicts."""

    async def run() -> float:
        predict = service.predict
        start = time.perf_counter_ns()
        for _ in range(calls):
            await predict(KEY, BODY)
        return (time.perf_counter_ns() - start) / calls

    return min(asyncio.run(run()) for _ in range(repeats))


def service_with(writer: PredictionLogWriter, policy: LoggingPolicy | None) -> PredictionService:
    service = PredictionService(InstantServing(), NoChanges(), NoChanges(), writer)  # type: ignore[arg-type]
    service._routes[KEY] = _Route(KEY, policy)
    return service


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", type=Path, help="the old services/predictions.py")
    args = parser.parse_args()
    services: dict[str, Any] = {}
    if args.before:
        spec = importlib.util.spec_from_file_location("predictions_before", args.before)
        assert spec and spec.loader
        before = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(before)
        old = before.PredictionService(InstantServing(), NoChanges(), NoChanges())
        old._routes[KEY] = KEY
        services["before"] = old
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as home:
        store = MetadataStore(f"sqlite:///{home}/cairn.db")
        writer = PredictionLogWriter(store.prediction_logs, queue_size=1_000_000)
        writer.start()
        try:
            table = "bench.logs.requests"
            policies = {
                "off": None,
                "unsampled": LoggingPolicy("bench", "m", "v1", sampling=0.001, table_name=table),
                "sampled": LoggingPolicy("bench", "m", "v1", sampling=1.0, table_name=table),
                "access": LoggingPolicy("bench", "m", "v1", access_log=True),
            }
            for name, policy in policies.items():
                services[name] = service_with(writer, policy)
            # Rounds take turns over the cases, so a drift in the machine's load hits all.
            best: dict[str, float] = {}
            for _ in range(args.repeats):
                for name, service in services.items():
                    per_call = timed(service, args.calls, 1)
                    best[name] = min(best.get(name, per_call), per_call)
                    # The next case starts with the writer idle (it competes for the GIL).
                    writer.flush(timeout=600)
            results.update(best)
            results["rows_written"] = writer.written
            results["dropped"] = writer.dropped
        finally:
            writer.stop(timeout=600)
            store.close()
    print(f"{'case':<12}{'ns per predict':>16}")
    for name, value in results.items():
        print(f"{name:<12}{value:>16.0f}")
    RESULTS.write_text(json.dumps({"python": sys.version.split()[0], **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
