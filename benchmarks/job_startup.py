"""Job start-up overhead: from submission to the user module's first line.

A real `cairn server` (with authentication) runs in a home of its own. The trainer is a
package whose module's first line takes `time.time()`; it writes that moment to
`<job dir>/started/<task>` and exits. For each round the clock starts just before the
`jobs.create` call (over HTTP, as `cairn jobs submit` sends it) and the figure is the
module's moment minus that start. Three cases:

- `direct`: the same module run as `python -m trainer.task` by this script (Popen to the
  first line), with Cairn's Python, and with the job environment's own Python (its venv
  sees Cairn's site-packages through a .pth, so it starts a little slower);
- `single`: a BASIC job (one replica) whose environment is already built (cached): the
  same package URI as a warm-up job submitted first;
- `cluster`: a CUSTOM job of a master and three workers (4 replicas), also cached; the
  figures are the first and the last replica's first line;
- `rebuilt`: a BASIC job of the same code built into a fresh sdist and uploaded under a new
  URI, as every `cairn jobs submit --package-path` does (the environment cache is keyed on
  what the package installs, so it should find the environment built already).

The overhead is a job's median minus the direct run's (with Cairn's Python). Each job is
waited for until it ends before the next is submitted. Medians of `--rounds` rounds go to
benchmarks/results/job_startup.json. Target (issue 9): under 1 s of overhead for the cached
single replica.

The job record's `startTime` and the service log say where the time goes: the queue and
the environment check before `startTime`, the replica's launch (process, credentials,
environment variables) and the interpreter's start-up after it; `--profile` adds those
figures per round.

    .venv/bin/python benchmarks/job_startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from online_prediction import free_port, owner_token, start_server  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "job_startup.json"
TARGET_S = 1.0
PROJECT = "bench"

# The module's first line is the moment measured; everything else comes after it.
TASK = textwrap.dedent(
    """\
    import time; STARTED = time.time()  # noqa: E702  (the first line, measured)
    import sys; PRELOADED = sorted(sys.modules)  # noqa: E702  (what start-up imported)
    import json
    import os


    def process_created() -> float:
        # When this process was forked: /proc gives it in clock ticks since boot (10 ms).
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age


    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
    name = f"{task.get('type', 'direct')}-{task.get('index', 0)}"
    job_dir = sys.argv[sys.argv.index("--job-dir") + 1]
    os.makedirs(os.path.join(job_dir, "started"), exist_ok=True)
    path = os.path.join(job_dir, "started", name)
    with open(path + ".tmp", "w") as handle:
        json.dump(
            {"first_line": STARTED, "created": process_created(), "modules": PRELOADED}, handle
        )
    os.replace(path + ".tmp", path)

    # The job ends when its primary does, and ends the rest with it: the primary waits until
    # every replica has reached its first line.
    if task.get("type") in ("chief", "master"):
        cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
        expected = sum(len(addresses) for addresses in cluster.values())
        deadline = time.monotonic() + 120
        started = os.path.join(job_dir, "started")
        while time.monotonic() < deadline:
            if sum(not n.endswith(".tmp") for n in os.listdir(started)) >= expected:
                break
            time.sleep(0.01)
    """
)


def build_package(workdir: Path) -> Path:
    """The trainer as an sdist with no dependencies, and its source tree."""
    source = workdir / "src"
    (source / "trainer").mkdir(parents=True)
    (source / "trainer" / "__init__.py").write_text("")
    (source / "trainer" / "task.py").write_text(TASK)
    (source / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='startup-trainer', version='0.1', packages=['trainer'])\n"
    )
    dist = workdir / "dist"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(dist)],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (sdist,) = dist.glob("*.tar.gz")
    return sdist


def wait_for_files(directory: Path, count: int, timeout: float = 300.0) -> list[dict[str, Any]]:
    """What the first `count` replicas to start wrote into `directory`, once all did."""
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(p for p in directory.glob("*") if not p.name.endswith(".tmp"))
        if len(found) >= count:
            return [json.loads(p.read_text()) for p in found]
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(found)} of {count} replicas started in {directory}")
        time.sleep(0.002)


def run_direct(python: str, source: Path, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = str(source)
    began = time.time()
    process = subprocess.Popen([python, "-m", "trainer.task", "--job-dir", str(out)], env=env)
    (record,) = wait_for_files(out / "started", 1)
    process.wait(60)
    return {
        "first_line_seconds": round(record["first_line"] - began, 4),
        "interpreter_seconds": round(record["first_line"] - record["created"], 4),
        "modules": record["modules"],
    }


def rfc3339(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run_job(
    client: httpx.Client, storage: Path, job_id: str, package_uri: str, workers: int
) -> dict[str, Any]:
    training_input: dict[str, Any] = {
        "packageUris": [package_uri],
        "pythonModule": "trainer.task",
        "jobDir": f"gs://bench-jobs/{job_id}",
        "region": "us-central1",
    }
    if workers:
        training_input.update(
            scaleTier="CUSTOM",
            masterType="n1-standard-4",
            workerType="n1-standard-4",
            workerCount=str(workers),
        )
    body = {"jobId": job_id, "trainingInput": training_input}
    began = time.time()
    created = client.post(f"/projects/{PROJECT}/jobs", json=body)
    created_s = time.time() - began
    created.raise_for_status()
    records = wait_for_files(storage / "bench-jobs" / job_id / "started", 1 + workers)
    moments = [r["first_line"] for r in records]
    deadline = time.monotonic() + 300
    while True:
        job = client.get(f"/projects/{PROJECT}/jobs/{job_id}").json()
        if job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} is still {job['state']}")
        time.sleep(0.02)
    if job["state"] != "SUCCEEDED":
        raise RuntimeError(f"job {job_id} ended {job['state']}: {job.get('errorMessage')}")
    result = {
        "create_call_seconds": round(created_s, 4),
        "first_replica_seconds": round(min(moments) - began, 4),
        "last_replica_seconds": round(max(moments) - began, 4),
        # Fork of the replica's process, and its interpreter's start-up (10 ms ticks).
        "first_process_created_seconds": round(min(r["created"] for r in records) - began, 4),
        "interpreter_seconds": round(
            statistics.median(r["first_line"] - r["created"] for r in records), 4
        ),
        "modules": records[0]["modules"],
    }
    if job.get("startTime"):
        # startTime: when the server marked the job RUNNING (every replica launched).
        result["start_time_seconds"] = round(rfc3339(job["startTime"]) - began, 4)
    return result


def summarise(rounds: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 4)


def one_run(rounds: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cairn-job-startup-") as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        sdist = build_package(root / "package")
        source = root / "package" / "src"
        packages = home / "storage" / "bench-packages"
        packages.mkdir(parents=True)
        (packages / sdist.name).write_bytes(sdist.read_bytes())
        package_uri = f"gs://bench-packages/{sdist.name}"
        port = free_port()
        server = start_server(home, port)
        try:
            headers = {"Authorization": f"Bearer {owner_token(port, home)}"}
            api = f"http://127.0.0.1:{port}/v1"
            with httpx.Client(base_url=api, headers=headers, timeout=120) as client:
                warm_up = run_job(client, home / "storage", "warm_up", package_uri, 0)
                warm_up.pop("modules")
                print(f"warm-up (builds the environment): {json.dumps(warm_up)}", flush=True)
                (env_python,) = (home / "envs").glob("*/bin/python")
                single, cluster, rebuilt, direct, direct_env = [], [], [], [], []
                for i in range(rounds):
                    fresh = build_package(root / f"rebuilt{i}")
                    (packages / str(i)).mkdir()
                    (packages / str(i) / fresh.name).write_bytes(fresh.read_bytes())
                    fresh_uri = f"gs://bench-packages/{i}/{fresh.name}"
                    direct.append(run_direct(sys.executable, source, root / f"d{i}"))
                    direct_env.append(run_direct(str(env_python), source, root / f"e{i}"))
                    single.append(run_job(client, home / "storage", f"single_{i}", package_uri, 0))
                    cluster.append(
                        run_job(client, home / "storage", f"cluster_{i}", package_uri, 3)
                    )
                    rebuilt.append(run_job(client, home / "storage", f"rebuilt_{i}", fresh_uri, 0))
                    print(
                        f"round {i}: direct {direct[-1]['first_line_seconds']}s, single "
                        f"{single[-1]['first_replica_seconds']}s, cluster "
                        f"{cluster[-1]['first_replica_seconds']}-"
                        f"{cluster[-1]['last_replica_seconds']}s, rebuilt "
                        f"{rebuilt[-1]['first_replica_seconds']}s",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(30)
            server_log = (home / "server.log").read_text(errors="replace")
    # Modules a replica's start-up imports that the same Python run directly does not.
    extra = sorted({m.split(".")[0] for m in single[0]["modules"]} - set(direct_env[0]["modules"]))
    for record in [*direct, *direct_env, *single, *cluster, *rebuilt]:
        record.pop("modules")
    direct_s = summarise(direct, "first_line_seconds")
    report: dict[str, Any] = {
        "direct": {
            "median_first_line_seconds": direct_s,
            "median_interpreter_seconds": summarise(direct, "interpreter_seconds"),
        },
        "direct_with_job_environment_python": {
            "median_first_line_seconds": summarise(direct_env, "first_line_seconds"),
            "median_interpreter_seconds": summarise(direct_env, "interpreter_seconds"),
        },
        "single_replica": breakdown(single, direct_s),
        "cluster_4_replicas": breakdown(cluster, direct_s),
        "single_replica_rebuilt_sdist_new_uri": breakdown(rebuilt, direct_s),
        "modules_imported_before_the_first_line_only_in_jobs": extra,
        "rounds": {
            "direct": direct,
            "direct_env": direct_env,
            "single": single,
            "cluster": cluster,
        },
    }
    if profile:
        report["server_log_tail"] = server_log.splitlines()[-40:]
    return report


def breakdown(rounds: list[dict[str, Any]], direct_s: float) -> dict[str, Any]:
    """Medians of one kind of job, and where its time went."""
    first = summarise(rounds, "first_replica_seconds")
    last = summarise(rounds, "last_replica_seconds")
    figures = {
        "median_first_replica_seconds": first,
        "median_last_replica_seconds": last,
        "overhead_seconds": round(last - direct_s, 4),
        "median_create_call_seconds": summarise(rounds, "create_call_seconds"),
        "median_first_process_created_seconds": summarise(rounds, "first_process_created_seconds"),
        "median_interpreter_seconds": summarise(rounds, "interpreter_seconds"),
    }
    if all("start_time_seconds" in r for r in rounds):
        figures["median_start_time_seconds"] = summarise(rounds, "start_time_seconds")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="jobs of each kind")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--profile", action="store_true", help="keep the server log's tail")
    args = parser.parse_args()
    load_before = os.getloadavg()
    run = one_run(args.rounds, args.profile)
    single, cluster = run["single_replica"], run["cluster_4_replicas"]
    summary = {
        "direct_first_line_seconds": run["direct"]["median_first_line_seconds"],
        "single_replica_first_line_seconds": single["median_first_replica_seconds"],
        "single_replica_overhead_seconds": single["overhead_seconds"],
        "cluster_4_replicas_last_first_line_seconds": cluster["median_last_replica_seconds"],
        "cluster_4_replicas_overhead_seconds": cluster["overhead_seconds"],
        "rebuilt_sdist_new_uri_overhead_seconds": run["single_replica_rebuilt_sdist_new_uri"][
            "overhead_seconds"
        ],
        "under_target": single["overhead_seconds"] < TARGET_S,
    }
    print(json.dumps(summary, indent=2))
    report = {
        "what": "seconds from the jobs.create call to the trainer module's first line "
        "(real cairn server over HTTP with auth, cached environment; medians of rounds); "
        "overhead = job - direct `python -m` of the same module",
        "target_overhead_seconds": TARGET_S,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "summary": summary,
        "run": run,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
