"""Online prediction throughput and latency of a small scikit-learn model, three ways.

(a) in process: `model.predict` on one row, N threads calling it (the floor of the work);
(b) `ServingManager.predict` directly: the server's forwarding path plus a node process;
(c) the real HTTP server: `cairn server` in a subprocess, a model and version created over
    REST, and `POST ...:predict` with one row per request over keep-alive connections,
    each carrying the owner's bearer token;
(d) the same server started with `--insecure-no-auth`, requests without a token: (c) against
    (d) is what authentication costs on the predict path. Both run at once and take turns
    (`--rounds`), so drifts in the machine's load hit both alike.

Each cell runs for a fixed time at concurrency 1, 8 and 32 on loopback only; the figures go
to benchmarks/results/online_prediction.json and a table is printed. The HTTP load comes
from a minimal raw HTTP/1.1 client so the client costs as little CPU as possible.

    .venv/bin/python benchmarks/online_prediction.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from cairn.serving import ServingManager

CONCURRENCY = (1, 8, 32)
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"instances": [ROW]}).encode()
RESULTS = Path(__file__).parent / "results" / "online_prediction.json"
KEY = "projects/bench/models/iris/versions/v1"


def summarise(latencies: list[float], elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "requests_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1e3, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 3),
    }


def train_model(directory: Path) -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 4))
    model = LogisticRegression().fit(x, (x[:, 0] + x[:, 2] > 0).astype(int))
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.joblib")
    return model


# -- (a) in process -------------------------------------------------------------------------


def bench_in_process(model: LogisticRegression, concurrency: int, seconds: float) -> dict:
    row = np.asarray([ROW])
    per_thread: list[list[float]] = [[] for _ in range(concurrency)]
    stop = time.perf_counter() + seconds

    def worker(out: list[float]) -> None:
        while (start := time.perf_counter()) < stop:
            model.predict(row)
            out.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(out,)) for out in per_thread]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarise([x for out in per_thread for x in out], time.perf_counter() - began)


# -- shared async driver --------------------------------------------------------------------


async def drive(
    call: Callable[[], Awaitable[None]], concurrency: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        while (start := time.perf_counter()) < stop:
            await call()
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summarise(latencies, time.perf_counter() - began)


# -- (b) ServingManager.predict -------------------------------------------------------------


async def bench_manager(manager: ServingManager, seconds: float) -> dict[str, dict]:
    async def call() -> None:
        status, _ = await manager.predict(KEY, BODY)
        if status != 200:
            raise RuntimeError(f"prediction failed with {status}")

    await drive(call, 8, 0.5)  # warm the connection and caches
    return {str(c): await drive(call, c, seconds) for c in CONCURRENCY}


# -- (c) through the HTTP server ------------------------------------------------------------


class RawHttpConnection:
    """One keep-alive HTTP/1.1 connection sending the same POST; checks status 200."""

    def __init__(self, port: int, path: str, token: str | None) -> None:
        self.port = port
        authorization = f"Authorization: Bearer {token}\r\n" if token else ""
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self) -> None:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)


async def bench_http(
    targets: dict[str, tuple[int, str | None]], seconds: float, rounds: int
) -> dict[str, dict[str, dict]]:
    """Each target (label: port, token) at each concurrency, taking turns `rounds` times.

    Turns cancel out drifts in the machine's load, which on two cores are larger than the
    cost being measured; each cell averages its turns.
    """
    path = f"/v1/{KEY}:predict"
    results: dict[str, dict[str, dict]] = {label: {} for label in targets}
    for concurrency in CONCURRENCY:
        turns: dict[str, list[dict[str, float]]] = {label: [] for label in targets}
        for turn in range(rounds):
            # A B, then B A: whoever goes first in a round is measured on a colder machine.
            order = list(targets.items())
            for label, (port, token) in order if turn % 2 == 0 else reversed(order):
                turns[label].append(await one_turn(port, path, token, concurrency, seconds))
        for label, cells in turns.items():
            results[label][str(concurrency)] = {
                "requests": sum(c["requests"] for c in cells),
                "requests_per_s": round(sum(c["requests_per_s"] for c in cells) / rounds, 1),
                "p50_ms": round(statistics.median(c["p50_ms"] for c in cells), 3),
                "p99_ms": round(statistics.median(c["p99_ms"] for c in cells), 3),
            }
    return results


async def one_turn(
    port: int, path: str, token: str | None, concurrency: int, seconds: float
) -> dict[str, float]:
    connections = [RawHttpConnection(port, path, token) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    pool = asyncio.Queue[RawHttpConnection]()
    for connection in connections:
        pool.put_nowait(connection)

    async def call() -> None:
        connection = pool.get_nowait()
        try:
            await connection.post()
        finally:
            pool.put_nowait(connection)

    await drive(call, concurrency, 0.3)  # warm the connections
    figures = await drive(call, concurrency, seconds)
    for connection in connections:
        connection.writer.close()
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, port: int, *extra_args: str) -> subprocess.Popen[bytes]:
    cairn = Path(sys.executable).with_name("cairn")
    command = [str(cairn), "server", "--home", str(home), "--port", str(port), *extra_args]
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/projects/bench/models", timeout=1)
            return server
        except httpx.TransportError:
            if server.poll() is not None:
                break
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"cairn server did not start; see {home / 'server.log'}")


def owner_token(port: int, home: Path) -> str:
    """An access token for the server's owner, from the credential it wrote into its home."""
    info = json.loads((home / "credentials" / "owner.json").read_text())
    response = httpx.post(
        f"http://127.0.0.1:{port}/token",
        data={"grant_type": "refresh_token", "refresh_token": info["refresh_token"]},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def deploy_over_rest(port: int, home: Path, token: str | None) -> None:
    api = f"http://127.0.0.1:{port}/v1"
    train_model(home / "storage" / "bench" / "iris")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=30, headers=headers) as client:
        client.post(f"{api}/projects/bench/models", json={"name": "iris"}).raise_for_status()
        operation = client.post(
            f"{api}/projects/bench/models/iris/versions",
            json={"name": "v1", "deploymentUri": "gs://bench/iris", "framework": "SCIKIT_LEARN"},
        )
        operation.raise_for_status()
        name = operation.json()["name"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = client.get(f"{api}/{name}").json()
            if state.get("done"):
                if "error" in state:
                    raise RuntimeError(f"version create failed: {state['error']}")
                return
            time.sleep(0.2)
    raise RuntimeError("version create did not finish")


# -- main -----------------------------------------------------------------------------------


def http_results(root: Path, seconds: float, rounds: int) -> dict[str, dict[str, dict]]:
    """(c) and (d): both servers up at once, measured in turns."""
    servers: list[subprocess.Popen[bytes]] = []
    targets: dict[str, tuple[int, str | None]] = {}
    try:
        for label, extra_args in (
            ("http_server", ()),
            ("http_server_no_auth", ("--insecure-no-auth",)),
        ):
            home = root / label
            home.mkdir()
            port = free_port()
            servers.append(start_server(home, port, *extra_args))
            token = None if extra_args else owner_token(port, home)
            deploy_over_rest(port, home, token)
            targets[label] = (port, token)
        return run_event_loop(bench_http(targets, seconds, rounds))
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)


def run_event_loop(coroutine: Awaitable[dict]) -> dict:
    try:
        import uvloop

        return uvloop.run(coroutine)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each cell")
    parser.add_argument("--skip-http", action="store_true", help="leave out (c) and (d)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="turns (c) and (d) take at each concurrency"
    )
    args = parser.parse_args()
    report: dict = {
        "model": "LogisticRegression, 4 features, 1 row per request",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "seconds_per_cell": args.seconds,
        "rounds_of_http_cells": args.rounds,
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as tmp:
        root = Path(tmp)
        model = train_model(root / "model")
        report["results"]["in_process_predict"] = {
            str(c): bench_in_process(model, c, args.seconds) for c in CONCURRENCY
        }
        manager = ServingManager(root / "serving")
        try:
            manager.deploy(KEY, root / "model", "SCIKIT_LEARN")
            report["results"]["serving_manager"] = run_event_loop(
                bench_manager(manager, args.seconds)
            )
        finally:
            manager.shutdown()
        if not args.skip_http:
            report["results"].update(http_results(root, args.seconds, args.rounds))
            with_auth, without = (
                report["results"][k] for k in ("http_server", "http_server_no_auth")
            )
            report["authentication_cost"] = {
                c: f"{1 - with_auth[c]['requests_per_s'] / without[c]['requests_per_s']:.1%}"
                for c in with_auth
            }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)


def print_table(report: dict) -> None:
    print(f"{report['model']} — {report['machine']}")
    print(f"{'path':<20} {'conc':>4} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for path, cells in report["results"].items():
        for concurrency, figures in cells.items():
            print(
                f"{path:<20} {concurrency:>4} {figures['requests_per_s']:>10.0f} "
                f"{figures['p50_ms']:>8.3f} {figures['p99_ms']:>8.3f}"
            )
    if "authentication_cost" in report:
        print(f"authentication cost (throughput lost): {report['authentication_cost']}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
