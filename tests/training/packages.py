"""Real trainer packages for the training tests, built with setuptools into a tmp dir."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from cairn.storage import BucketStorage

# A trainer that records what it sees, then behaves as `--mode` says:
#   ok      write <job-dir>/model.txt and exit 0
#   fail    print to stderr and exit 3
#   sleep   spawn a grandchild that sleeps, write both pids, sleep `--seconds`, exit `--code`
#   import  import extra_dep (a declared dependency) and record its VALUE
#   cluster act by TF_CONFIG task type: ps serves forever, workers exit, chief waits for them
#   credential  record the job file named by GOOGLE_APPLICATION_CREDENTIALS and some variables
TRAINER_TASK = textwrap.dedent(
    """
    import argparse
    import json
    import os
    import subprocess
    import sys
    import time

    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir")
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--code", type=int, default=0)
    parser.add_argument("--data")
    args, unknown = parser.parse_known_args()

    job_dir = args.job_dir or os.getcwd()
    os.makedirs(job_dir, exist_ok=True)
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task", {})
    me = f"{task.get('type', 'none')}-{task.get('index', 0)}"
    seen = {
        "argv": sys.argv[1:],
        "unknown": unknown,
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "tf_config": tf_config,
        "env": {
            k: os.environ.get(k)
            for k in ("CLOUD_ML_JOB_ID", "CLOUD_ML_HP_METRIC_FILE", "CLOUD_ML_TRIAL_ID")
        },
    }
    with open(os.path.join(job_dir, f"seen-{me}.json"), "w") as handle:
        json.dump(seen, handle)
    print(f"trainer {me} started with {sys.argv[1:]}")

    if args.mode == "ok":
        with open(os.path.join(job_dir, "model.txt"), "w") as handle:
            handle.write("trained")
    elif args.mode == "fail":
        print("the data could not be read", file=sys.stderr)
        sys.exit(3)
    elif args.mode == "sleep":
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pids = {"trainer": os.getpid(), "grandchild": grandchild.pid}
        with open(os.path.join(job_dir, "pids.json.tmp"), "w") as handle:
            json.dump(pids, handle)
        os.replace(os.path.join(job_dir, "pids.json.tmp"), os.path.join(job_dir, "pids.json"))
        time.sleep(args.seconds)
        grandchild.kill()
        sys.exit(args.code)
    elif args.mode == "import":
        import extra_dep

        with open(os.path.join(job_dir, "extra.txt"), "w") as handle:
            handle.write(extra_dep.VALUE)
    elif args.mode == "credential":
        with open(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]) as handle:
            credential = handle.read()
        names = ("CAIRN_API", "CAIRN_DATABASE_URL", "JOB_LABEL", "HOME", "USER")
        with open(os.path.join(job_dir, "credential-seen.json"), "w") as handle:
            json.dump({"credential": credential, **{k: os.environ.get(k) for k in names}}, handle)
    elif args.mode == "cluster":
        kind = task.get("type")
        if kind == "ps":
            time.sleep(600)
        elif kind in ("chief", "master"):
            workers = len(tf_config["cluster"].get("worker", []))
            wanted = [os.path.join(job_dir, f"seen-worker-{i}.json") for i in range(workers)]
            wanted.append(os.path.join(job_dir, "seen-evaluator-0.json"))
            while not all(os.path.exists(p) for p in wanted):
                time.sleep(0.05)
    print(f"trainer {me} done")
    """
)

EXTRA_DEP = 'VALUE = "extra dependency installed"\n'


def build_sdist(
    where: Path,
    name: str,
    modules: dict[str, str],
    install_requires: list[str] | None = None,
    version: str = "0.1",
) -> Path:
    """Build an sdist of `modules` ({"pkg/mod.py": source}) with setuptools; return its path."""
    source = where / f"{name}-src"
    for relative, text in modules.items():
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (source / "setup.py").write_text(
        "from setuptools import find_packages, setup\n"
        f"setup(name={name!r}, version={version!r}, packages=find_packages(), "
        f"py_modules=[m[:-3] for m in {sorted(modules)!r} if '/' not in m], "
        f"install_requires={install_requires or []!r})\n"
    )
    dist = where / "dist"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(dist)],
        cwd=source,
        check=True,
        capture_output=True,
    )
    return dist / f"{name}-{version}.tar.gz"


def trainer_modules(extra_source: str = "") -> dict[str, str]:
    return {"trainer/__init__.py": "", "trainer/task.py": TRAINER_TASK + extra_source}


def local_buckets(root: Path) -> BucketStorage:
    """Cairn's local buckets over `root` (gs://BUCKET/PATH -> root/BUCKET/PATH)."""
    return BucketStorage(root)
