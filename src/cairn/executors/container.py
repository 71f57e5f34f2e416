"""Replicas in containers: Podman or Docker on this machine, under the same replica shim.

A container replica is an ordinary replica whose command is this module's supervisor:
`python -m cairn.executors.container --engine podman --name N --image I -- podman run ...`.
The replica shim wraps it as it wraps any command, so logs, the exit file, cancel and
re-adoption after a server restart work unchanged. The supervisor adds what a bare
`podman run` lacks:

- an image missing on this machine is pulled if the engine can (no registry may be
  reachable), and otherwise the replica fails with a message saying what to do;
- a stop (SIGTERM) stops the container itself (`podman stop`), not only the client: under
  Docker the container is the daemon's child, not ours, and a killed client would leave it
  running;
- however `podman run` ends, the container is removed (`rm -f`), so no stopped container
  is left behind under the replica's name.

The engine runs as the server's user (root: rootful Podman); the user code inside runs as
the job's own uid (`--user`), with no capabilities and `no-new-privileges`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ENGINES = ("podman", "docker")
# Seconds the container gets between the stop's SIGTERM and the engine's SIGKILL: less than
# the replica's grace period (executors.base.DEFAULT_GRACE_S), after which the supervisor
# itself is killed and could no longer remove the container.
STOP_TIMEOUT_S = 3
# Exit status of a replica whose container could not be started (the engines' own 125).
ENGINE_FAILED = 125
# A failed engine probe is retried after this long; a working engine is trusted from then on.
_PROBE_RETRY_S = 10.0
_PROBE_TIMEOUT_S = 30.0
# Labels every container Cairn starts carries, so an operator can find them.
LABEL = "io.cairn.replica"


@dataclass(frozen=True)
class Mount:
    """A host path bind-mounted into the container (at the same path, unless `target`)."""

    source: Path
    target: Path
    read_only: bool = False

    def volume(self) -> str:
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class ContainerRun:
    """One replica's container: what `podman run` (or `docker run`) is given."""

    name: str  # unique per launch: a leftover of an earlier launch never clashes
    image: str
    # Replaces the image's ENTRYPOINT when not empty (AI Platform's containerCommand).
    command: Sequence[str]
    # After the entrypoint, replacing the image's CMD (containerArgs, or args + --job-dir).
    args: Sequence[str]
    env_file: Path  # KEY=VALUE lines, read by the engine (values never reach a command line)
    workdir: Path
    user: tuple[int, int]  # uid, gid the user code runs as
    mounts: Sequence[Mount] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


class ContainerEngine:
    """The container engine a setting names: `podman`, `docker`, a path to either, or None
    for whichever is installed (Podman first: it needs no daemon)."""

    def __init__(self, setting: str | None = None) -> None:
        self.setting = setting.strip() if setting and setting.strip() else None
        self._lock = threading.Lock()
        self._working: bool = False
        self._failure: tuple[float, str] | None = None

    @property
    def binary(self) -> str | None:
        """The engine's executable, or None when it is not installed."""
        if self.setting is None:
            for name in ENGINES:
                if found := shutil.which(name):
                    return found
            return None
        return shutil.which(self.setting)

    @property
    def kind(self) -> str:
        """`docker` or `podman`: whose command-line dialect to speak."""
        name = Path(self.binary or self.setting or "podman").name
        return "docker" if "docker" in name else "podman"

    def problem(self) -> str | None:
        """Why no container can run here (None: the engine answers). Probed by running the
        engine's `version` (a Docker client without its daemon fails it); a working engine
        is remembered, a failure is probed again after a few seconds."""
        with self._lock:
            if self._working:
                return None
            if self._failure is not None and time.monotonic() - self._failure[0] < _PROBE_RETRY_S:
                return self._failure[1]
            problem = self._probe()
            if problem is None:
                self._working = True
            else:
                self._failure = (time.monotonic(), problem)
            return problem

    def _probe(self) -> str | None:
        binary = self.binary
        if binary is None:
            if self.setting is None:
                return (
                    "Custom containers (imageUri) need Podman or Docker on the server's "
                    "machine, and neither is installed (none on the server's PATH). Install "
                    "one (apt-get install podman) or set CAIRN_CONTAINER_ENGINE to its path."
                )
            return (
                f"Custom containers (imageUri) need the container engine "
                f"{self.setting!r} (CAIRN_CONTAINER_ENGINE), which is not installed on the "
                "server's machine. Install it, or point CAIRN_CONTAINER_ENGINE at podman or "
                "docker."
            )
        try:
            done = subprocess.run(
                [binary, "version"],
                capture_output=True,
                text=True,
                timeout=_PROBE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"Custom containers (imageUri) need {binary}, which cannot run: {error}."
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            detail = said[-1] if said else f"exit status {done.returncode}"
            return (
                f"Custom containers (imageUri) need {binary}, which does not work on the "
                f"server's machine: {detail}"
            )
        return None

    def supervisor_argv(self, run: ContainerRun) -> list[str]:
        """The replica command: this module supervising `run_argv(run)`."""
        binary = self.binary
        if binary is None:
            raise RuntimeError(self._probe() or "No container engine is installed.")
        return [
            sys.executable,
            "-m",
            "cairn.executors.container",
            "--engine",
            binary,
            "--name",
            run.name,
            "--image",
            run.image,
            "--",
            *self.run_argv(run),
        ]

    def run_argv(self, run: ContainerRun) -> list[str]:
        """`podman run ...` (or `docker run ...`) for one replica."""
        binary = self.binary or self.setting or self.kind
        uid, gid = run.user
        argv = [
            binary,
            "run",
            "--rm",
            "--name",
            run.name,
            # An init as PID 1 forwards the stop signal to the user's process (a process
            # that is PID 1 ignores SIGTERM unless it handles it) and reaps its zombies.
            "--init",
            # The cluster's loopback ports and the server's API are the host's.
            "--network",
            "host",
            "--user",
            f"{uid}:{gid}",
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--env-file",
            str(run.env_file),
            "--workdir",
            str(run.workdir),
            # The supervisor pulls what is missing (and says so); the run never does.
            "--pull",
            "never",
            *ulimit_options(),
        ]
        for key, value in sorted(run.labels.items()):
            argv += ["--label", f"{key}={value}"]
        for mount in run.mounts:
            argv += ["--volume", mount.volume()]
        command = list(run.command)
        if command:
            # One executable replaces the ENTRYPOINT (the only form Docker takes); the rest
            # of containerCommand goes before the arguments, as Kubernetes' command does.
            argv += ["--entrypoint", command[0]]
        argv += [run.image, *command[1:], *run.args]
        return argv


def ulimit_options() -> list[str]:
    """The limits a package replica would inherit from the server, for the container too.

    The engines' defaults (a million open files and processes) cannot be set where the
    server lacks CAP_SYS_RESOURCE (in many a VM or container), and the container then fails
    to start; these values never exceed what this process may set.
    """
    options = []
    for name, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        soft, hard = resource.getrlimit(limit)
        if name == "nproc":
            # Podman caps its own process limit at pid_max before it starts the container.
            with contextlib.suppress(OSError, ValueError):
                cap = int(Path("/proc/sys/kernel/pid_max").read_text())
                soft, hard = _lower(soft, cap), _lower(hard, cap)
        if soft == resource.RLIM_INFINITY or hard == resource.RLIM_INFINITY:
            continue
        options += ["--ulimit", f"{name}={soft}:{hard}"]
    return options


def _lower(value: int, cap: int) -> int:
    return cap if value == resource.RLIM_INFINITY else min(value, cap)


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    """`KEY=VALUE` lines the engine reads (`--env-file`), readable by the server alone.

    The engines take each line as it is (no quoting), so a value cannot hold a newline.
    """
    lines = []
    for key, value in sorted(env.items()):
        if "\n" in value or "\r" in value or "=" in key or not key:
            raise ValueError(
                f"The environment variable {key!r} cannot be passed to a container: "
                "its name or value holds a line break or its name an '='."
            )
        lines.append(f"{key}={value}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(lines)
    os.replace(temporary, path)


# ----- the supervisor (runs under the replica shim) -----------------------------------------


def _engine_kind(engine: str) -> str:
    return "docker" if "docker" in Path(engine).name else "podman"


def _quiet(argv: Sequence[str], timeout: float = 60.0) -> int:
    try:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return -1


def image_present(engine: str, image: str) -> bool:
    if _engine_kind(engine) == "podman":
        return _quiet([engine, "image", "exists", image]) == 0
    return _quiet([engine, "image", "inspect", image]) == 0


def _say(message: str) -> None:
    print(f"Cairn: {message}", file=sys.stderr, flush=True)


def _ensure_image(engine: str, image: str) -> bool:
    """True when the image is on this machine, pulled now if the engine can reach it."""
    if image_present(engine, image):
        return True
    name = Path(engine).name
    _say(f"the image {image} is not on this machine; trying `{name} pull {image}`.")
    with contextlib.suppress(OSError):
        pulled = subprocess.run([engine, "pull", image], stdin=subprocess.DEVNULL, check=False)
        if pulled.returncode == 0 and image_present(engine, image):
            return True
    _say(
        f"the image {image} is not on this machine and {name} could not pull it (no image "
        f"registry may be reachable from here). Build or load it on the server's machine "
        f"first ({name} build, {name} load or {name} import), then submit the job again."
    )
    return False


def supervise(engine: str, name: str, image: str, run_argv: Sequence[str]) -> int:
    """Run the container, stop it on SIGTERM/SIGINT, remove it; its exit code."""
    stopping = threading.Event()
    stopper: list[threading.Thread] = []

    def stop(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        thread = threading.Thread(
            target=_quiet, args=([engine, "stop", "-t", str(STOP_TIMEOUT_S), name],), daemon=True
        )
        stopper.append(thread)
        thread.start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if not _ensure_image(engine, image):
            return ENGINE_FAILED
        if stopping.is_set():
            return 128 + signal.SIGTERM
        try:
            child = subprocess.Popen(list(run_argv), stdin=subprocess.DEVNULL)
        except OSError as error:
            _say(f"could not start {run_argv[0]}: {error}")
            return ENGINE_FAILED
        code = child.wait()
        for thread in stopper:
            thread.join(timeout=STOP_TIMEOUT_S + 5)
        return code
    finally:
        # `--rm` removes it when the run ends normally; a killed client or engine does not.
        _quiet([engine, "rm", "-f", name])


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run one replica's container: pull its image if missing, stop it on "
        "SIGTERM, remove it when it ends (Cairn's replica shim runs this)."
    )
    parser.add_argument("--engine", required=True, help="path to podman or docker")
    parser.add_argument("--name", required=True, help="the container's name")
    parser.add_argument("--image", required=True, help="the image it runs")
    parser.add_argument("run_argv", nargs=argparse.REMAINDER, help="-- ENGINE run ...")
    args = parser.parse_args()
    run_argv = args.run_argv[1:] if args.run_argv[:1] == ["--"] else args.run_argv
    if not run_argv:
        parser.error("give the engine's run command after --")
    code = supervise(args.engine, args.name, args.image, run_argv)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
