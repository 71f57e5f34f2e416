"""A small local image for the custom-container tests, built with `podman import`.

No image registry is reachable from the test machines, so the image is assembled here: a
root filesystem holding this machine's Python interpreter (its binary, the libraries `ldd`
lists, its standard library without tests and site-packages) and the trainer below, at
/trainer/task.py, as the image's ENTRYPOINT. The tarball is cached under
~/.cache/cairn-tests and the image tagged by a hash of its contents, so a rerun imports
nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from cairn.executors.container import ulimit_options

CACHE = Path.home() / ".cache" / "cairn-tests"
REPOSITORY = "localhost/cairn-test-trainer"

# Modes: `tune` (reports --lr times 10 as cloudml-hypertune would), `cluster` (each replica writes what it saw to --job-dir; the master and worker 0
# talk over the master's TF_CONFIG address), `fail`, `sleep`, `wait-for` (until a file in
# --job-dir appears), `probe`.
TRAINER = r"""
import argparse, json, os, socket, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--mode", default="probe")
parser.add_argument("--job-dir")
parser.add_argument("--seconds", type=float, default=600)
args, rest = parser.parse_known_args()
if args.mode == "probe":
    print("probe ok")
    sys.exit(0)
tf_config = json.loads(os.environ["TF_CONFIG"])
task = tf_config["task"]
me = f"{task['type']}-{task['index']}"
print(f"{me} starts", flush=True)
if args.mode == "fail":
    print("training blew up: the input has no rows", file=sys.stderr, flush=True)
    sys.exit(3)
if args.mode == "sleep":
    print("sleeping", flush=True)
    time.sleep(args.seconds)
    sys.exit(0)
if args.mode == "wait-for":
    flag = os.path.join(args.job_dir, "go")
    print("waiting for", flag, flush=True)
    while not os.path.exists(flag):
        time.sleep(0.2)
    print("saw the flag", flush=True)
    sys.exit(0)
if args.mode == "tune":
    # What cloudml-hypertune writes: one JSON line per report, the metric as a string.
    lr = float(next(a.split("=", 1)[1] for a in rest if a.startswith("--lr=")))
    with open(os.environ["CLOUD_ML_HP_METRIC_FILE"], "w") as handle:
        report = {"score": str(lr * 10), "global_step": "1", "trial": task.get("trial"),
                  "timestamp": time.time(), "checkpoint_path": ""}
        handle.write(json.dumps(report) + "\n")
    print(f"trial {task.get('trial')} reported {lr * 10}", flush=True)
    sys.exit(0)

credential = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
seen = {
    "tf_config": tf_config,
    "job_id": os.environ.get("CLOUD_ML_JOB_ID"),
    "argv": sys.argv[1:],
    "uid": os.getuid(),
    "cwd": os.getcwd(),
    "home": os.environ.get("HOME"),
    "credential_type": json.load(open(credential)).get("type") if credential else None,
    "path": os.environ.get("PATH"),
}
host, port = tf_config["cluster"]["master"][0].split(":")
if task["type"] == "master":
    # The worker finds the master at its TF_CONFIG address: host networking works.
    with socket.create_server((host, int(port))) as server:
        server.settimeout(120)
        connection, _ = server.accept()
        with connection:
            seen["heard"] = connection.recv(100).decode()
else:
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=5) as connection:
                connection.sendall(f"hello from {me}".encode())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
with open(os.path.join(args.job_dir, f"{me}.json"), "w") as handle:
    json.dump(seen, handle)
print(f"{me} done", flush=True)
"""

_SKIPPED_STDLIB = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "site-packages",
    "dist-packages",
    "__pycache__",
}


def _interpreter() -> tuple[Path, Path]:
    """A Python binary and its standard library: the system's, else this venv's base."""
    system = Path("/usr/bin/python3")
    python = system if system.exists() else Path(sys.base_prefix) / "bin" / "python3"
    python = python.resolve()
    stdlib = subprocess.run(
        [str(python), "-S", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return python, Path(stdlib)


def _libraries(binary: Path) -> list[Path]:
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    found = []
    for line in done.stdout.splitlines():
        for word in line.split():
            if word.startswith("/") and Path(word).exists():
                found.append(Path(word))
    return found


def _add_file(archive: tarfile.TarFile, source: Path, name: str) -> None:
    info = archive.gettarinfo(str(source.resolve()), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with open(source.resolve(), "rb") as handle:
        archive.addfile(info, handle)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    archive.addfile(info, io.BytesIO(data))


def _add_dir(archive: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    archive.addfile(info)


def _build_rootfs(target: Path, python: Path, stdlib: Path) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tarfile.open(partial, "w") as archive:
        for directory in ("tmp",):
            _add_dir(archive, directory, 0o1777)
        _add_file(archive, python, str(python).lstrip("/"))
        for library in _libraries(python):
            _add_file(archive, library, str(library).lstrip("/"))
        for path in sorted(stdlib.rglob("*")):
            relative = path.relative_to(stdlib)
            if _SKIPPED_STDLIB & set(relative.parts) or not path.is_file():
                continue
            _add_file(archive, path, str(path).lstrip("/"))
        _add_bytes(archive, "trainer/task.py", TRAINER.encode())
    os.replace(partial, target)


def image_python() -> str:
    """Where the image's interpreter lives (the same path as on this machine)."""
    return str(_interpreter()[0])


def image_tag() -> str:
    python, stdlib = _interpreter()
    digest = hashlib.sha256(f"{python}\0{stdlib}\0{TRAINER}".encode())
    digest.update(python.read_bytes())
    return f"{REPOSITORY}:{digest.hexdigest()[:16]}"


def ensure_image(podman: str, env: dict[str, str]) -> tuple[str, str]:
    """The test image's reference (imported now if podman lacks it) and the entrypoint."""
    python, stdlib = _interpreter()
    tag = image_tag()
    entrypoint = f'["{python}", "/trainer/task.py"]'
    exists = subprocess.run([podman, "image", "exists", tag], env=env, check=False)
    if exists.returncode != 0:
        CACHE.mkdir(parents=True, exist_ok=True)
        rootfs = CACHE / f"rootfs-{tag.rpartition(':')[2]}.tar"
        if not rootfs.exists():
            for stale in CACHE.glob("rootfs-*.tar"):  # an older trainer's
                stale.unlink(missing_ok=True)
            _build_rootfs(rootfs, python, stdlib)
        subprocess.run(
            [podman, "import", "--change", f"ENTRYPOINT {entrypoint}", str(rootfs), tag],
            env=env,
            check=True,
            capture_output=True,
        )
    return tag, str(python)


def probe(podman: str, tag: str, env: dict[str, str]) -> str | None:
    """Why podman cannot run the image here (None: it can), as Cairn would run it."""
    done = subprocess.run(
        [podman, "run", "--rm", "--network", "host", *ulimit_options(), tag, "--mode", "probe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode == 0 and "probe ok" in done.stdout:
        return None
    return (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"


def usable_podman() -> tuple[str, dict[str, str]] | str:
    """(image tag, the extra environment the server needs) or why podman cannot run here.

    The machine's own configuration comes first; where it fails and runc is installed, a
    configuration with runc and cgroupfs (what .ci/run writes to /etc/containers; crun
    refuses hybrid cgroups) is tried through CONTAINERS_CONF.
    """
    podman = shutil.which("podman")
    if podman is None:
        return "podman is not installed (apt-get install podman runc, as .ci/run does)"
    base = dict(os.environ)
    try:
        tag, _ = ensure_image(podman, base)
    except (OSError, subprocess.CalledProcessError) as error:
        said = getattr(error, "stderr", b"") or b""
        return f"podman could not import the test image: {error} {said.decode(errors='replace')}"
    problem = probe(podman, tag, base)
    if problem is None:
        return tag, {}
    if shutil.which("runc") is not None:
        config = Path(tempfile.mkdtemp(prefix="cairn-containers-conf-")) / "containers.conf"
        config.write_text('[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n')
        extra = {"CONTAINERS_CONF": str(config)}
        if probe(podman, tag, {**base, **extra}) is None:
            return tag, extra
    return f"podman cannot run a container on this machine: {problem}"
