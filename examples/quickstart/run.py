"""Cairn's quickstart, end to end, with the commands a user would type.

Starts `cairn server` on 127.0.0.1 (unless one already answers), copies a CSV into a
local bucket, trains a scikit-learn package as a job, tunes its hyperparameter with AI
Platform's tuning config, deploys the best trial's model as a version and asks it for
predictions, online and as a batch job over a file. The server keeps running afterwards
(pass --stop to stop it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CAIRN = str(Path(sys.executable).parent / "cairn")


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(*args: str, env: dict[str, str], capture: bool = False) -> str:
    """Run a cairn command, echoing it as the user would type it; output streams live."""
    print(f"$ cairn {shlex.join(args)}", flush=True)
    result = subprocess.run(
        [CAIRN, *args], env=env, text=True, stdout=subprocess.PIPE if capture else None
    )
    if capture and result.stdout:
        print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        raise SystemExit(f"`cairn {shlex.join(args)}` failed with exit code {result.returncode}")
    return result.stdout or ""


def answering(url: str) -> dict[str, str] | None:
    """The server's info (its home) when a Cairn server answers at `url`, else None."""
    try:
        with urlopen(f"{url}/cairn/v1/info", timeout=1) as response:
            info: dict[str, str] = json.load(response)
            return info
    except (URLError, OSError, ValueError):
        return None


def start_server(home: Path, port: int, url: str, env: dict[str, str]) -> int | None:
    if (info := answering(url)) is not None:
        if Path(info.get("home", "")).resolve() != home:
            # Its credential and buckets are another home's: nothing below would work.
            raise SystemExit(
                f"A Cairn server with another home ({info.get('home')}) already answers at "
                f"{url}. Stop it, or run the demo on another port: make demo PORT=8081."
            )
        print(f"A Cairn server already answers at {url}; using it.")
        return None
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("ab")
    print(f"$ cairn server --home {home} --port {port} &", flush=True)
    process = subprocess.Popen(
        [CAIRN, "server", "--home", str(home), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not answering(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"The server did not start; see {home / 'server.log'}")
        time.sleep(0.2)
    return process.pid


def write_iris_csv(path: Path) -> None:
    from sklearn.datasets import load_iris  # ships with scikit-learn, no download

    iris = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    lines = [",".join([*names, "species"])]
    lines += [
        ",".join([*map(str, row), str(label)])
        for row, label in zip(iris.data, iris.target, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=REPO / ".cairn-demo", help="server home")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--stop", action="store_true", help="stop the server at the end")
    options = parser.parse_args()

    home = options.home.resolve()
    url = f"http://127.0.0.1:{options.port}"
    env = {**os.environ, "CAIRN_API": url, "CAIRN_HOME": str(home)}
    stamp = time.strftime("%Y%m%d_%H%M%S")
    job = f"iris_{stamp}"
    version = f"v{stamp}"
    work = home / "quickstart"
    work.mkdir(parents=True, exist_ok=True)

    say("1. Start the server")
    pid = start_server(home, options.port, url, env)

    say("2. Copy the training data into a bucket")
    write_iris_csv(work / "iris.csv")
    run("storage", "cp", str(work / "iris.csv"), "gs://quickstart/data/iris.csv", env=env)

    say("3. Train: submit the trainer package as a job and follow its logs")
    run(
        "jobs", "submit", "training", job,
        "--package-path", str(HERE / "trainer"),
        "--module-name", "trainer.task",
        "--job-dir", f"gs://quickstart/jobs/{job}",
        "--region", "us-central1",
        "--stream-logs",
        "--", "--train-file", "gs://quickstart/data/iris.csv",
        env=env,
    )  # fmt: skip
    run("jobs", "describe", job, env=env)

    say("4. Tune: the same trainer, with AI Platform's hyperparameter tuning config")
    tuning_job = f"iris_tuning_{stamp}"
    run(
        "jobs", "submit", "training", tuning_job,
        "--config", str(HERE / "hptuning_config.yaml"),
        "--package-path", str(HERE / "trainer"),
        "--module-name", "trainer.task",
        "--job-dir", f"gs://quickstart/jobs/{tuning_job}",
        "--region", "us-central1",
        "--stream-logs",
        "--", "--train-file", "gs://quickstart/data/iris.csv",
        env=env,
    )  # fmt: skip
    run("jobs", "describe", tuning_job, "--summarize", env=env)
    described = json.loads(
        subprocess.run(
            [CAIRN, "jobs", "describe", tuning_job, "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    best = described["trainingOutput"]["trials"][0]  # trials come best first
    print(f"Best trial: {best['trialId']} with C={best['hyperparameters']['C']}")

    say("5. Deploy: create a model and a version from the best trial's model")
    exists = subprocess.run([CAIRN, "models", "describe", "iris"], env=env, capture_output=True)
    if exists.returncode != 0:
        run("models", "create", "iris", "--regions", "us-central1", env=env)
    run(
        "versions", "create", version,
        "--model", "iris",
        "--origin", f"gs://quickstart/jobs/{tuning_job}/{best['trialId']}/model",
        "--framework", "scikit-learn",
        env=env,
    )  # fmt: skip
    if exists.returncode == 0:
        run("versions", "set-default", version, "--model", "iris", env=env)

    say("6. Predict online")
    instances = work / "instances.json"
    instances.write_text("[5.1, 3.5, 1.4, 0.2]\n[6.7, 3.0, 5.2, 2.3]\n")
    print(f"$ cat {instances}\n{instances.read_text()}", end="")
    output = run(
        "predict",
        "--model",
        "iris",
        "--json-instances",
        str(instances),
        "--format",
        "json",
        env=env,
        capture=True,
    )
    predictions = json.loads(output)
    predictions = (
        predictions.get("predictions", predictions)
        if isinstance(predictions, dict)
        else predictions
    )
    if list(predictions) != [0, 2]:
        raise SystemExit(
            f"Unexpected predictions {predictions}; expected [0, 2] (setosa, virginica)."
        )

    say("7. Predict in batch: a file of instances through the same version")
    batch_job = f"iris_batch_{stamp}"
    rows = work / "batch.jsonl"
    rows.write_text(
        "".join(f"{json.dumps(r)}\n" for r in ([5.0, 3.4, 1.5, 0.2], [6.3, 3.3, 6.0, 2.5]))
    )
    run("storage", "cp", str(rows), "gs://quickstart/batch/instances.jsonl", env=env)
    run(
        "jobs", "submit", "prediction", batch_job,
        "--model", "iris",
        "--version", version,
        "--input-paths", "gs://quickstart/batch/*.jsonl",
        "--data-format", "text",
        "--output-path", f"gs://quickstart/batch/{batch_job}",
        "--region", "us-central1",
        "--stream-logs",
        env=env,
    )  # fmt: skip
    results = run(
        "storage", "cat", f"gs://quickstart/batch/{batch_job}/prediction.results-*",
        env=env,
        capture=True,
    )  # fmt: skip
    if len(results.splitlines()) != 2:
        raise SystemExit(f"Expected 2 batch predictions, got:\n{results}")

    say("Done")
    print(f"The server answers at {url} (home: {home}). Try:")
    print(f"  {CAIRN} models list")
    print(f"  {CAIRN} storage ls -r gs://quickstart/")
    if options.stop and pid is not None:
        os.kill(pid, signal.SIGTERM)
        print("Server stopped.")
    elif pid is not None:
        print(f"Stop it with:  kill {pid}   (or: make stop)")
    else:
        print("It was already running before this demo; stop it with:  make stop")


if __name__ == "__main__":
    main()
