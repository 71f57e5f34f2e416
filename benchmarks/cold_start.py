"""Cold start: a request to a version scaled to zero, from arrival to its answer.

A real `cairn server` (with authentication) runs with CAIRN_AUTOSCALE_IDLE_SECONDS small,
so a version created with `autoScaling: {minNodes: 0}` drops its last node soon after each
request. For a scikit-learn and an XGBoost model (the online benchmark's kind of models),
each round waits until `versions.get` shows `cairnServing.nodes == 0`, then times one
`:predict` over HTTP: the server starts a node (a new process that imports the framework,
loads the model and answers a warm-up prediction) and holds the request until it answers.
The node-side part (spawn to warmed up) is `cairnServing.lastColdStartSeconds`. Medians of
`--rounds` rounds go to benchmarks/results/cold_start.json. Target: under 2 s.

The manager keeps a standby interpreter with the frameworks imported while a version may
scale to zero (serving/standby.py); after a cold start uses it, the next one takes a few
seconds to import. The idle period (`--idle-seconds`, 5 by default; the server's default is
120) leaves it that time, as any real idle period would. With `--idle-seconds 0.5` the next
cold start often arrives while the standby is still importing, and measures that instead.

Each of `--runs` runs (3 by default) starts its own server; the figure to judge is the
median of the runs' medians.

    .venv/bin/python benchmarks/cold_start.py [--rounds 7] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

RESULTS = Path(__file__).parent / "results" / "cold_start.json"
ROW = [5.1, 3.5, 1.4, 0.2]
TARGET_S = 2.0


def write_models(storage: Path) -> dict[str, tuple[str, str]]:
    """Model directories in a local bucket: name -> (deploymentUri, framework)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    sklearn_dir = storage / "bench" / "sklearn"
    sklearn_dir.mkdir(parents=True)
    joblib.dump(LogisticRegression().fit(x, y), sklearn_dir / "model.joblib")
    xgb_dir = storage / "bench" / "xgboost"
    xgb_dir.mkdir(parents=True)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4}, xgb.DMatrix(x, y), 50)
    booster.save_model(str(xgb_dir / "model.json"))
    return {
        "scikit_learn": ("gs://bench/sklearn", "SCIKIT_LEARN"),
        "xgboost": ("gs://bench/xgboost", "XGBOOST"),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, port: int, idle_seconds: float) -> subprocess.Popen[bytes]:
    cairn = Path(sys.executable).with_name("cairn")
    env = {**os.environ, "CAIRN_AUTOSCALE_IDLE_SECONDS": str(idle_seconds)}
    log = (home / "server.log").open("wb")
    command = [str(cairn), "server", "--home", str(home), "--port", str(port)]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/projects/bench:getConfig", timeout=1)
            return server
        except httpx.TransportError:
            if server.poll() is not None:
                break
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"cairn server did not start; see {home / 'server.log'}")


def owner_token(port: int, home: Path) -> str:
    info = json.loads((home / "credentials" / "owner.json").read_text())
    response = httpx.post(
        f"http://127.0.0.1:{port}/token",
        data={"grant_type": "refresh_token", "refresh_token": info["refresh_token"]},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def create_version(client: httpx.Client, name: str, uri: str, framework: str) -> str:
    client.post("/projects/bench/models", json={"name": name}).raise_for_status()
    body = {
        "name": "v1",
        "deploymentUri": uri,
        "framework": framework,
        "autoScaling": {"minNodes": 0, "maxNodes": 1},
    }
    operation = client.post(f"/projects/bench/models/{name}/versions", json=body)
    operation.raise_for_status()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = client.get(f"/{operation.json()['name']}").json()
        if state.get("done"):
            if "error" in state:
                raise RuntimeError(f"version create failed: {state['error']}")
            return f"projects/bench/models/{name}/versions/v1"
        time.sleep(0.2)
    raise RuntimeError("version create did not finish")


def serving(client: httpx.Client, version: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/{version}").json()["cairnServing"]
    return found


def wait_scaled_to_zero(client: httpx.Client, version: str) -> None:
    deadline = time.monotonic() + 120
    while serving(client, version)["nodes"] != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{version} did not scale to zero")
        time.sleep(0.1)


def measure(client: httpx.Client, version: str, rounds: int) -> dict[str, Any]:
    request_s: list[float] = []
    node_s: list[float] = []
    warm_s: list[float] = []
    for _ in range(rounds):
        wait_scaled_to_zero(client, version)
        began = time.perf_counter()
        answer = client.post(f"/{version}:predict", json={"instances": [ROW]})
        request_s.append(time.perf_counter() - began)
        answer.raise_for_status()
        node_s.append(float(serving(client, version)["lastColdStartSeconds"]))
        # The same request once a node is up, for contrast.
        began = time.perf_counter()
        client.post(f"/{version}:predict", json={"instances": [ROW]}).raise_for_status()
        warm_s.append(time.perf_counter() - began)
    median = statistics.median(request_s)
    return {
        "rounds": rounds,
        "request_seconds": [round(s, 3) for s in request_s],
        "median_request_seconds": round(median, 3),
        "median_node_start_seconds": round(statistics.median(node_s), 3),
        "median_warm_request_ms": round(statistics.median(warm_s) * 1e3, 2),
        "cold_starts_counted": serving(client, version)["coldStarts"],
        "under_target": median < TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="cold starts per model and run")
    parser.add_argument("--runs", type=int, default=3, help="runs, each with its own server")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="idle scale-down")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = [one_run(args.rounds, args.idle_seconds) for _ in range(args.runs)]
    summary = {
        name: {
            "median_of_run_medians_seconds": statistics.median(
                run[name]["median_request_seconds"] for run in runs
            ),
            "run_medians_seconds": [run[name]["median_request_seconds"] for run in runs],
        }
        for name in runs[0]
    }
    for entry in summary.values():
        entry["under_target"] = entry["median_of_run_medians_seconds"] < TARGET_S
    print(json.dumps(summary, indent=2))
    report = {
        "what": "seconds from a :predict arriving at a version scaled to zero to its answer "
        "(real cairn server over HTTP with auth; median of rounds, then of runs)",
        "idle_seconds": args.idle_seconds,
        "target_seconds": TARGET_S,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "summary": summary,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


def one_run(rounds: int, idle_seconds: float) -> dict[str, Any]:
    """Both models' cold starts on a server of their own."""
    with tempfile.TemporaryDirectory(prefix="cairn-cold-start-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        models = write_models(home / "storage")
        port = free_port()
        server = start_server(home, port, idle_seconds)
        try:
            headers = {"Authorization": f"Bearer {owner_token(port, home)}"}
            api = f"http://127.0.0.1:{port}/v1"
            with httpx.Client(base_url=api, headers=headers, timeout=120) as client:
                results = {}
                for name, (uri, framework) in models.items():
                    version = create_version(client, name, uri, framework)
                    results[name] = measure(client, version, rounds)
                    print(f"{name}: {json.dumps(results[name])}", flush=True)
        finally:
            server.terminate()
            server.wait(30)
    return results


if __name__ == "__main__":
    main()
