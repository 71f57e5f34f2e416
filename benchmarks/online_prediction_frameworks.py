"""Online prediction of scikit-learn, XGBoost and TensorFlow models: Cairn against the
alternatives, in one run on this machine.

For each model (LogisticRegression, an XGBoost Booster of 50 trees, a Keras MLP exported as
a SavedModel; 4 features each), 1 and 100 instances per request, at concurrency 1, 8, 32:

* in_process: the model called directly from N threads on a ready numpy array (the floor
  of the work; no JSON, no HTTP);
* cairn: the real `cairn server` over HTTP with authentication (a bearer token on every
  request), models deployed over REST as versions with the default one node;
* uvicorn_orjson: a minimal hand-written ASGI server (uvicorn with uvloop and httptools,
  2 workers, orjson), what one would write by hand;
* ray_serve: Ray Serve in its throughput-optimised mode (`RAY_SERVE_THROUGHPUT_OPTIMIZED=1`)
  with `@serve.batch`. Ray is not a Cairn dependency: it is installed on first use into
  benchmarks/.ray-venv (git-ignored), which also sees the project venv's packages; when
  that fails the run says so and goes on without Ray.

The three servers run at once and take turns (`--rounds`) within each cell, so drifts in the
machine's load hit them alike; each cell averages its turns' throughput and takes the
median of their p50/p99. Load comes from a raw HTTP/1.1 client on keep-alive connections.
Figures go to benchmarks/results/online_prediction_frameworks.json and .md.

    .venv/bin/python benchmarks/online_prediction_frameworks.py [--quick] [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from online_prediction import (  # noqa: E402 - the sibling benchmark's helpers
    drive,
    free_port,
    owner_token,
    run_event_loop,
    start_server,
    summarise,
)
from side_venv import side_python  # noqa: E402

HERE = Path(__file__).parent
RESULTS_JSON = HERE / "results" / "online_prediction_frameworks.json"
RESULTS_MD = HERE / "results" / "online_prediction_frameworks.md"
RAY_VENV = HERE / ".ray-venv"
RAY_REQUIREMENT = "ray[serve]==2.60.0"
MODELS = ("sklearn", "xgboost", "tensorflow")
FRAMEWORKS = {"sklearn": "SCIKIT_LEARN", "xgboost": "XGBOOST", "tensorflow": "TENSORFLOW"}
FEATURES = 4


def instances(rows: int) -> list[list[float]]:
    rng = np.random.default_rng(rows)
    return np.round(rng.normal(size=(rows, FEATURES)), 4).tolist()  # type: ignore[no-any-return]


def body(rows: int) -> bytes:
    return json.dumps({"instances": instances(rows)}).encode()


# -- models ---------------------------------------------------------------------------------


def write_models(root: Path) -> None:
    """The three model directories, as a user would export them for AI Platform."""
    import joblib
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, FEATURES))
    y = (x[:, 0] + x[:, 2] > 0).astype(int)
    (root / "sklearn").mkdir(parents=True)
    joblib.dump(LogisticRegression().fit(x, y), root / "sklearn" / "model.joblib")
    (root / "xgboost").mkdir()
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4}, xgb.DMatrix(x, label=y), 50
    )
    booster.save_model(str(root / "xgboost" / "model.ubj"))
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    features = tf.keras.Input((FEATURES,), name="features")
    hidden = tf.keras.layers.Dense(16, activation="relu")(features)
    model = tf.keras.Model(features, tf.keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    model.export(str(root / "tensorflow"), verbose=False)


def in_process_predictor(name: str, model_dir: Path) -> Callable[[np.ndarray], Any]:
    """The model's own fastest call on a ready float matrix."""
    if name == "sklearn":
        import joblib

        return joblib.load(model_dir / "model.joblib").predict  # type: ignore[no-any-return]
    if name == "xgboost":
        import xgboost as xgb

        booster = xgb.Booster(model_file=str(model_dir / "model.ubj"))
        booster.set_param({"nthread": 1})
        return booster.inplace_predict  # type: ignore[no-any-return]
    import tensorflow as tf

    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    return lambda matrix: signature(features=tf.constant(matrix, tf.float32))


def bench_in_process(
    predict: Callable[[np.ndarray], Any], rows: int, concurrency: int, seconds: float
) -> dict[str, float]:
    matrix = np.asarray(instances(rows))
    per_thread: list[list[float]] = [[] for _ in range(concurrency)]
    predict(matrix)
    stop = time.perf_counter() + seconds

    def worker(out: list[float]) -> None:
        while (start := time.perf_counter()) < stop:
            predict(matrix)
            out.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(out,)) for out in per_thread]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarise([x for out in per_thread for x in out], time.perf_counter() - began)


# -- the servers ----------------------------------------------------------------------------


class Target:
    """A server under test: where to POST a model's predictions, with which headers."""

    def __init__(self, label: str, port: int, paths: dict[str, str], token: str | None = None):
        self.label, self.port, self.paths, self.token = label, port, paths, token


@contextmanager
def cairn(
    root: Path, models: Path, label: str = "cairn", env: dict[str, str] | None = None
) -> Iterator[Target]:
    """`cairn server` with authentication, the three models deployed as versions over REST."""
    home = root / label
    home.mkdir()
    port = free_port()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        server = start_server(home, port)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        token = owner_token(port, home)
        api = f"http://127.0.0.1:{port}/v1"
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
            operations = []
            for name in MODELS:
                bucket_dir = home / "storage" / "bench" / name
                bucket_dir.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["cp", "-r", str(models / name), str(bucket_dir)], check=True)
                client.post(f"{api}/projects/bench/models", json={"name": name}).raise_for_status()
                operation = client.post(
                    f"{api}/projects/bench/models/{name}/versions",
                    json={
                        "name": "v1",
                        "deploymentUri": f"gs://bench/{name}",
                        "framework": FRAMEWORKS[name],
                    },
                )
                operation.raise_for_status()
                operations.append(operation.json()["name"])
            for operation_name in operations:
                wait_for_operation(client, f"{api}/{operation_name}")
        paths = {name: f"/v1/projects/bench/models/{name}/versions/v1:predict" for name in MODELS}
        yield Target(label, port, paths, token)
    finally:
        server.terminate()
        server.wait(30)


def wait_for_operation(client: httpx.Client, url: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = client.get(url).json()
        if state.get("done"):
            if "error" in state:
                raise RuntimeError(f"version create failed: {state['error']}")
            return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not finish")


UVICORN_APP = """
import os
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(os.environ["BENCH_MODELS"])


def _sklearn():
    import joblib

    model = joblib.load(ROOT / "sklearn" / "model.joblib")
    return lambda rows: model.predict(np.asarray(rows, dtype=np.float64))


def _xgboost():
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(ROOT / "xgboost" / "model.ubj"))
    booster.set_param({"nthread": 1})
    return lambda rows: booster.inplace_predict(np.asarray(rows, dtype=np.float64))


def _tensorflow():
    import tensorflow as tf

    signature = tf.saved_model.load(str(ROOT / "tensorflow")).signatures["serving_default"]
    return lambda rows: signature(features=tf.constant(rows, tf.float32))["output_0"].numpy()


MODELS = {"sklearn": _sklearn(), "xgboost": _xgboost(), "tensorflow": _tensorflow()}
HEADERS = [(b"content-type", b"application/json")]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    try:
        predict = MODELS[scope["path"].strip("/")]
        predictions = predict(orjson.loads(b"".join(chunks))["instances"])
        status, answer = 200, {"predictions": predictions}
    except Exception as error:
        status, answer = 400, {"error": str(error)}
    await send({"type": "http.response.start", "status": status, "headers": HEADERS})
    await send({
        "type": "http.response.body",
        "body": orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY),
    })
"""


@contextmanager
def uvicorn_orjson(root: Path, models: Path) -> Iterator[Target]:
    """The hand-written server: 2 uvicorn workers, as one would deploy it on this machine."""
    app_dir = root / "uvicorn_app"
    app_dir.mkdir()
    (app_dir / "bench_app.py").write_text(UVICORN_APP)
    port = free_port()
    env = {**os.environ, "BENCH_MODELS": str(models), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench_app:app",
        "--port",
        str(port),
        "--workers",
        "2",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    log = (root / "uvicorn.log").open("wb")
    server = subprocess.Popen(command, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_answers(port, "/sklearn", server, root / "uvicorn.log")
        for name in MODELS:  # both workers loaded (each answers some of these)
            for _ in range(4):
                wait_until_answers(port, f"/{name}", server, root / "uvicorn.log")
        yield Target("uvicorn_orjson", port, {name: f"/{name}" for name in MODELS})
    finally:
        server.terminate()
        server.wait(30)


def wait_until_answers(
    port: int, path: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 300
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            response = httpx.post(f"http://127.0.0.1:{port}{path}", content=body(1), timeout=10)
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError(f"the server on port {port} did not answer {path}; see {log}")


RAY_APP = """
import os
import sys
from pathlib import Path

import numpy as np
import orjson
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

ROOT = Path(os.environ["BENCH_MODELS"])
PORT = int(sys.argv[1])


# No CPU reservation: on a small machine three replicas reserving a CPU each never start.
@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
class Model:
    def __init__(self, name):
        self.name = name
        if name == "sklearn":
            import joblib

            model = joblib.load(ROOT / "sklearn" / "model.joblib")
            self.predict = model.predict
        elif name == "xgboost":
            import xgboost as xgb

            booster = xgb.Booster(model_file=str(ROOT / "xgboost" / "model.ubj"))
            booster.set_param({"nthread": 1})
            self.predict = booster.inplace_predict
        else:
            import tensorflow as tf

            loaded = tf.saved_model.load(str(ROOT / "tensorflow"))
            signature = loaded.signatures["serving_default"]
            self._keep = loaded
            self.predict = lambda x: signature(
                features=tf.constant(x, tf.float32))["output_0"].numpy()

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.001)
    async def batch(self, requests):
        sizes = [len(rows) for rows in requests]
        predictions = self.predict(np.asarray([r for rows in requests for r in rows]))
        answers, start = [], 0
        for size in sizes:
            answers.append(predictions[start:start + size])
            start += size
        return answers

    async def __call__(self, request: Request):
        instances = orjson.loads(await request.body())["instances"]
        predictions = await self.batch(instances)
        return Response(
            orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )


ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": PORT})
for name in ("sklearn", "xgboost", "tensorflow"):
    serve.run(Model.bind(name), name=name, route_prefix=f"/{name}")
print("READY", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
serve.shutdown()
ray.shutdown()
"""


def ray_python() -> Path | None:
    """The Ray venv's interpreter, creating the venv on first use; None when that fails."""
    python = side_python(RAY_VENV, RAY_REQUIREMENT, "Ray Serve")
    if python is None:
        return None
    # The models' libraries (numpy, scikit-learn, XGBoost, TensorFlow, orjson) come from
    # the project venv, appended after Ray's own packages.
    site = next((RAY_VENV / "lib").glob("python3*/site-packages"))
    project_site = next((Path(sys.prefix) / "lib").glob("python3*/site-packages"))
    (site / "zz_project_venv.pth").write_text(f"{project_site}\n")
    return python


@contextmanager
def ray_serve(root: Path, models: Path) -> Iterator[Target | None]:
    python = ray_python()
    if python is None:
        yield None
        return
    (root / "ray_app.py").write_text(RAY_APP)
    port = free_port()
    env = {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        # Ray starts its workers at nice 15; on a shared machine that would starve them.
        "RAY_worker_niceness": "0",
        **os.environ,  # Ray's settings may be overridden from outside
        "BENCH_MODELS": str(models),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    log = (root / "ray.log").open("wb")
    # A session of its own: Ray's helper processes can be ended with it as a group.
    server = subprocess.Popen(
        [str(python), str(root / "ray_app.py"), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    try:
        if not ready_line(server, timeout_s=600):
            print(f"SKIPPING Ray Serve: it did not start; see {root / 'ray.log'}:")
            print(textwrap.indent((root / "ray.log").read_text()[-2000:], "    "))
            yield None
            return
        for name in MODELS:
            wait_until_answers(port, f"/{name}", server, root / "ray.log")
        yield Target("ray_serve", port, {name: f"/{name}" for name in MODELS})
    finally:
        stop_ray(server)


def ready_line(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    return bool(ready) and process.stdout.readline().startswith(b"READY")


def stop_ray(process: subprocess.Popen[bytes]) -> None:
    """Closing stdin shuts Ray down cleanly; whatever is left of its group is then ended."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # Ray's agents, should they outlive it


# -- load -----------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection sending the same POST; checks status 200."""

    def __init__(self, port: int, path: str, token: str | None, payload: bytes) -> None:
        self.port = port
        authorization = f"Authorization: Bearer {token}\r\n" if token else ""
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self) -> None:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        length = 0
        chunked = False
        for line in head.split(b"\r\n"):
            lowered = line.lower()
            if lowered.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif lowered.startswith(b"transfer-encoding:") and b"chunked" in lowered:
                chunked = True
        if not chunked:
            await self.reader.readexactly(length)
            return
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return


async def one_turn(
    target: Target, model: str, rows: int, concurrency: int, seconds: float
) -> dict[str, float]:
    payload = body(rows)
    connections = [
        Connection(target.port, target.paths[model], target.token, payload)
        for _ in range(concurrency)
    ]
    await asyncio.gather(*(c.open() for c in connections))
    pool = asyncio.Queue[Connection]()
    for connection in connections:
        pool.put_nowait(connection)

    async def call() -> None:
        connection = pool.get_nowait()
        try:
            await connection.post()
        finally:
            pool.put_nowait(connection)

    await drive(call, concurrency, min(0.3, seconds / 2))  # warm the connections
    figures = await drive(call, concurrency, seconds)
    for connection in connections:
        connection.writer.close()
    return figures


async def bench_servers(
    targets: list[Target], cells: list[tuple[str, int, int]], seconds: float, rounds: int
) -> dict[str, dict[str, dict]]:
    """Every cell (model, rows, concurrency) on every target, the targets taking turns."""
    results: dict[str, dict[str, dict]] = {target.label: {} for target in targets}
    for model, rows, concurrency in cells:
        turns: dict[str, list[dict[str, float]]] = {target.label: [] for target in targets}
        for turn in range(rounds):
            order = targets if turn % 2 == 0 else targets[::-1]
            for target in order:
                turns[target.label].append(
                    await one_turn(target, model, rows, concurrency, seconds)
                )
        for label, figures in turns.items():
            results[label][cell_name(model, rows, concurrency)] = merge_turns(figures)
        print(
            f"{model:<10} {rows:>3} rows c{concurrency:<2} "
            + "  ".join(
                f"{label} {results[label][cell_name(model, rows, concurrency)]['requests_per_s']:>7.0f}/s"
                for label in results
            ),
            flush=True,
        )
    return results


def merge_turns(turns: list[dict[str, float]]) -> dict[str, float]:
    return {
        "requests": sum(t["requests"] for t in turns),
        "requests_per_s": round(sum(t["requests_per_s"] for t in turns) / len(turns), 1),
        "p50_ms": round(statistics.median(t["p50_ms"] for t in turns), 3),
        "p99_ms": round(statistics.median(t["p99_ms"] for t in turns), 3),
        "turns_requests_per_s": [t["requests_per_s"] for t in turns],
    }


def cell_name(model: str, rows: int, concurrency: int) -> str:
    return f"{model}/{rows}/{concurrency}"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each turn")
    parser.add_argument("--rounds", type=int, default=3, help="turns per server and cell")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 0.5 s turns, one round, concurrency 8 only"
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument("--no-ray", action="store_true", help="leave Ray Serve out")
    args = parser.parse_args()
    seconds, rounds = (0.5, 1) if args.quick else (args.seconds, args.rounds)
    concurrencies = (8,) if args.quick else (1, 8, 32)
    models = [m for m in args.models.split(",") if m]
    cells = [(m, rows, c) for m in models for rows in (1, 100) for c in concurrencies]
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "models": "LogisticRegression; XGBoost Booster, 50 trees of depth 4; Keras MLP "
        "4-16-1 as a SavedModel; 4 features each",
        "seconds_per_turn": seconds,
        "rounds": rounds,
        "load_average_at_start": load_average(),
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="cairn-bench-frameworks-") as tmp:
        root = Path(tmp)
        models_dir = root / "models"
        write_models(models_dir)
        in_process: dict[str, dict] = {}
        for model in models:
            predict = in_process_predictor(model, models_dir / model)
            for _, rows, concurrency in (c for c in cells if c[0] == model):
                in_process[cell_name(model, rows, concurrency)] = bench_in_process(
                    predict, rows, concurrency, seconds
                )
        report["results"]["in_process"] = in_process
        with ExitStack() as stack:
            targets = [stack.enter_context(cairn(root, models_dir))]
            targets.append(stack.enter_context(uvicorn_orjson(root, models_dir)))
            ray_target = None if args.no_ray else stack.enter_context(ray_serve(root, models_dir))
            if ray_target is not None:
                targets.append(ray_target)
            report["load_average_before_load"] = load_average()
            report["results"].update(run_event_loop(bench_servers(targets, cells, seconds, rounds)))
    report["load_average_at_end"] = load_average()
    report["targets"] = targets_met(report["results"])
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(report, indent=2) + "\n")
    RESULTS_MD.write_text(markdown(report))
    print(RESULTS_MD.read_text())
    print(f"written to {RESULTS_JSON} and {RESULTS_MD}")


def targets_met(results: dict[str, dict[str, dict]]) -> dict[str, str]:
    """Issue 8's targets at concurrency 8: Cairn >= 2x (1 row) / 1.3x (100 rows) the better
    of the hand-written server and Ray Serve, p99 under 5 ms."""
    verdicts: dict[str, str] = {}
    cairn_cells = results.get("cairn", {})
    for cell, figures in cairn_cells.items():
        model, rows, concurrency = cell.split("/")
        if concurrency != "8":
            continue
        rivals = [
            results[label][cell]["requests_per_s"]
            for label in ("uvicorn_orjson", "ray_serve")
            if cell in results.get(label, {})
        ]
        if not rivals:
            continue
        wanted = 2.0 if rows == "1" else 1.3
        ratio = figures["requests_per_s"] / max(rivals)
        ok = ratio >= wanted and figures["p99_ms"] < 5.0
        verdicts[cell] = (
            f"{'met' if ok else 'NOT met'}: {ratio:.2f}x the better rival (wanted {wanted}x), "
            f"p99 {figures['p99_ms']:.2f} ms"
        )
    return verdicts


def markdown(report: dict[str, Any]) -> str:
    results = report["results"]
    labels = [
        label
        for label in ("in_process", "cairn", "uvicorn_orjson", "ray_serve")
        if label in results
    ]
    lines = [
        "# Online prediction: Cairn, in process, hand-written uvicorn + orjson, Ray Serve",
        "",
        f"{report['machine']}; {report['models']}. {report['rounds']} round(s) of "
        f"{report['seconds_per_turn']} s per server and cell; requests/s (p50 / p99 ms). "
        f"Load average at start {report['load_average_at_start']}, at end "
        f"{report['load_average_at_end']}.",
        "",
        "| model | rows | conc | " + " | ".join(labels) + " |",
        "|---|---|---|" + "---|" * len(labels),
    ]
    for cell in results.get("cairn", results["in_process"]):
        model, rows, concurrency = cell.split("/")
        row = []
        for label in labels:
            figures = results[label].get(cell)
            row.append(
                "—"
                if figures is None
                else f"{figures['requests_per_s']:,.0f} ({figures['p50_ms']:.2f} / "
                f"{figures['p99_ms']:.2f})"
            )
        lines.append(f"| {model} | {rows} | {concurrency} | " + " | ".join(row) + " |")
    if report.get("targets"):
        lines += ["", "Targets at concurrency 8 (issue 8):", ""]
        lines += [f"* {cell}: {verdict}" for cell, verdict in report["targets"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
