"""Per-package-set Python environments, built once and reused.

A job's `packageUris` are pip-installed (with their declared dependencies) into a
virtual environment under `envs_root/<key>`, where the key is the sha256 of what the
packages contain (an archive's members, so a rebuilt sdist of unchanged code matches). The
environment sees Cairn's own site-packages through a `.pth` file, so the big frameworks (TensorFlow, scikit-learn, XGBoost) are never reinstalled and pip only adds
what is missing. Environments are built in a temporary directory and renamed into place,
so two jobs racing for the same packages never see a half-built one.

With `identities` (a root server), pip runs as a builder uid of its own per build (building
an sdist runs its `setup.py`, which is user code), which owns the build directory alone.
Once pip is done, whatever still runs as that uid is ended and the environment is sealed
(`acl.seal_tree`): the server's, readable by the group every job runs in, writable by
nobody else, so no job (nor a later build) can change an environment another job uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tarfile
import threading
import time
import uuid
import venv
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from cairn.domain.runtimes import RUNTIMES, Runtime
from cairn.executors import RunAs, UidAllocator, terminate_tree, user_code_environment
from cairn.executors.acl import seal_tree
from cairn.training.runtimes import (
    ALIASES,
    BASE_NAME,
    BASE_REQUIREMENTS,
    KERAS_2,
    LEGACY_KERAS_PTH,
    PROVIDED,
    RUNTIME_COMPAT,
    RUNTIME_COMPAT_MODULE,
    SKLEARN_EXTERNALS_JOBLIB,
    WheelIndex,
    layer_name,
    plan_layer,
    plan_pins,
    provided_versions,
    runtime_for,
)

log = logging.getLogger(__name__)

# Age after which a `.building-*` directory is a leftover of a crashed build.
_ABANDONED_BUILD_S = 3600.0
# Builder uids are allocated under this prefix plus the build directory's name.
_BUILD_OWNER = "builds/"
# Written into an environment once it is sealed: those without it are sealed at start-up.
SEALED_MARKER = ".cairn-sealed"
# In a package environment standing on a runtime: the runtime environment's name.
RUNTIME_MARKER = ".cairn-runtime"
# `<root>/.used/<name>`: its mtime is when a job last got the environment `<root>/<name>`.
_USED_DIR = ".used"

# Lines of pip's output kept in the error message of a failed install.
PIP_TAIL_LINES = 30

# Distributions Cairn's venv holds under a build-specific name; trainers declare the plain
# name. The environment records the plain name as provided so pip does not download the
# framework a second time (declared name, name installed in Cairn's venv).
FRAMEWORK_ALIASES = (("tensorflow", "tensorflow-cpu"), ("xgboost", "xgboost-cpu"))


class EnvironmentBuildError(Exception):
    """pip could not install the packages; the message carries the tail of its output."""


class EnvironmentBuildCancelled(Exception):
    """The job was cancelled while its environment was being built."""


@dataclass(frozen=True)
class PythonEnvironment:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"


def environment_key(package_files: Sequence[Path], runtime: str | None = None) -> str:
    """sha256 over what the packages install (and the Python version and runtime they serve).

    An archive counts by its members' names and contents, not its bytes: every `cairn jobs
    submit --package-path` builds a fresh sdist whose timestamps differ, and the same code
    must find the same environment.
    """
    digest = hashlib.sha256(f"cp{sys.version_info[0]}{sys.version_info[1]}\0".encode())
    if runtime is not None:
        digest.update(f"runtime {runtime}\0".encode())
    for path in sorted(package_files, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0")
        digest.update(_content_digest(path))
    return digest.hexdigest()


def _content_digest(path: Path) -> bytes:
    """Digest of an archive's members (sorted names and contents), else of the file's bytes."""
    members = hashlib.sha256()
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in sorted(archive.infolist(), key=lambda i: i.filename):
                    if not info.is_dir():
                        members.update(info.filename.encode() + b"\0")
                        members.update(hashlib.sha256(archive.read(info)).digest())
            return members.digest()
        if tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                for member in sorted(archive.getmembers(), key=lambda m: m.name):
                    extracted = archive.extractfile(member) if member.isfile() else None
                    if extracted is None:
                        continue
                    members.update(member.name.encode() + b"\0")
                    content = hashlib.sha256()
                    while chunk := extracted.read(1 << 20):
                        content.update(chunk)
                    members.update(content.digest())
            return members.digest()
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError):
        pass  # not a readable archive: pip will say so; key on the bytes
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def _cairn_site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def _site_packages(root: Path) -> Path:
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return root / "lib" / version / "site-packages"


class EnvironmentCache:
    """Builds and finds the environment for a set of package files (and a runtime's)."""

    def __init__(
        self,
        envs_root: Path,
        pip_args: Sequence[str] = (),
        *,
        identities: UidAllocator | None = None,
        runtimes_root: Path | None = None,
    ) -> None:
        """`runtimes_root`: where runtime environments live; None: `runtimeVersion` picks
        nothing and every job sees Cairn's own frameworks (see `use_runtimes`)."""
        self.envs_root = envs_root
        self.runtimes_root = runtimes_root
        self._pip_args = list(pip_args)
        # Builder uids come from here: building an sdist runs its setup.py, user code.
        self._identities = identities
        self._wheels = WheelIndex(self._pip_args)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._collector: threading.Thread | None = None
        self._collector_stop = threading.Event()
        self._protectors: list[Callable[[], Iterable[Path]]] = []
        if identities is not None:
            # Builds a previous server left unfinished: end what still runs as their uids.
            for owner in identities.owners(_BUILD_OWNER):
                identities.release(owner)
        self._remove_abandoned_builds(envs_root)
        if identities is not None:
            self._seal_unsealed(envs_root)
        if runtimes_root is not None:
            self.use_runtimes(runtimes_root)

    def use_runtimes(self, runtimes_root: Path) -> None:
        """From now on a job's `runtimeVersion` picks its runtime environment."""
        self.runtimes_root = runtimes_root
        self._remove_abandoned_builds(runtimes_root)
        if self._identities is not None:
            self._seal_unsealed(runtimes_root)

    def _seal_unsealed(self, parent: Path) -> None:
        """Seal environments built before builds were sealed (writable by their builder),
        or whose sealing a crash cut short."""
        assert self._identities is not None
        for entry in _environment_dirs(parent):
            if not (entry / SEALED_MARKER).exists():
                _seal(entry, self._identities.base.gid)

    @staticmethod
    def _remove_abandoned_builds(parent: Path) -> None:
        """Builds a crashed server left behind (none can still be running an hour later)."""
        cutoff = time.time() - _ABANDONED_BUILD_S
        for pattern in (".building-*", ".removing-*"):
            for leftover in parent.glob(pattern):
                with contextlib.suppress(OSError):
                    if leftover.stat().st_mtime < cutoff or pattern == ".removing-*":
                        shutil.rmtree(leftover, ignore_errors=True)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def runtime(self, runtime_version: str | None) -> Runtime | None:
        """The runtime whose environment jobs with this `runtimeVersion` get (None: Cairn's)."""
        if self.runtimes_root is None:
            return None
        return runtime_for(runtime_version)

    def find(
        self, package_files: Sequence[Path], runtime_version: str | None = None
    ) -> PythonEnvironment | None:
        """The ready environment for these packages, if one was built before."""
        runtime = self.runtime(runtime_version)
        root = self.envs_root / environment_key(package_files, runtime.version if runtime else None)
        return PythonEnvironment(root) if (root / "bin" / "python").exists() else None

    def ensure(
        self,
        package_files: Sequence[Path],
        *,
        log_path: Path,
        cancelled: threading.Event | None = None,
        runtime_version: str | None = None,
        python_version: str | None = None,
    ) -> PythonEnvironment:
        """The environment for `package_files`, built (pip output to `log_path`) if needed.

        With a `runtime_version` (and runtimes in use) the environment stands on that
        runtime's environment instead of Cairn's own frameworks. `python_version` was
        checked at create (`domain.runtimes`): every runtime runs this Python 3.
        """
        del python_version
        runtime = self.runtime(runtime_version)
        parent = None
        if runtime is not None:
            parent = self.ensure_runtime(runtime, log_path=log_path, cancelled=cancelled)
        key = environment_key(package_files, runtime.version if runtime else None)
        final = self.envs_root / key
        with self._lock_for(key):
            if not (final / "bin" / "python").exists():
                self.envs_root.mkdir(parents=True, exist_ok=True)

                def build(root: Path, builder: RunAs | None) -> None:
                    self._build_packages(root, package_files, log_path, cancelled, builder, parent)

                self._build_into(self.envs_root, key, build)
            _mark_used(self.envs_root, key)
        return PythonEnvironment(final)

    def ensure_runtime(
        self,
        runtime: Runtime,
        *,
        log_path: Path,
        cancelled: threading.Event | None = None,
    ) -> PythonEnvironment:
        """The runtime's environment (its layer over the shared base), built on first use.

        Safe with other builders: a lock file per environment lets one process build it
        while the others wait, and a build only appears under its name once complete.
        """
        if self.runtimes_root is None:
            raise ValueError("This environment cache has no runtimes_root.")
        root = self.runtimes_root

        def build_base(target: Path, builder: RunAs | None) -> None:
            self._build_base(target, log_path, cancelled, builder)

        base = self._ensure_named(root, BASE_NAME, log_path, build_base)
        name = layer_name(runtime)

        def build_layer(target: Path, builder: RunAs | None) -> None:
            self._build_layer(target, runtime, base, log_path, cancelled, builder)

        return self._ensure_named(root, name, log_path, build_layer)

    def _ensure_named(
        self,
        parent: Path,
        name: str,
        log_path: Path,
        build: Callable[[Path, RunAs | None], None],
    ) -> PythonEnvironment:
        final = parent / name
        with self._lock_for(f"runtime:{name}"):
            parent.mkdir(parents=True, exist_ok=True)
            with open(parent / f".{name}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it
                if not (final / "bin" / "python").exists():
                    started = time.monotonic()
                    _log_line(
                        log_path,
                        f"Preparing the runtime environment {name} (built once, on first use; "
                        "this downloads and installs its frameworks and takes minutes).",
                    )
                    self._build_into(parent, name, build)
                    _log_line(
                        log_path,
                        f"The runtime environment {name} is ready "
                        f"({time.monotonic() - started:.0f} s).",
                    )
                _mark_used(parent, name)
        return PythonEnvironment(final)

    def _build_into(
        self, parent: Path, name: str, build: Callable[[Path, RunAs | None], None]
    ) -> None:
        """Build in a temporary directory, then rename it into place as `parent/name`."""
        final = parent / name
        building = parent / f".building-{name[:24]}-{uuid.uuid4().hex[:8]}"
        try:
            self._build_as_builder(building, build)
            _retarget_scripts(building, final)
            try:
                os.rename(building, final)
            except OSError:
                # Another process finished the same environment first: use theirs.
                if not (final / "bin" / "python").exists():
                    raise
        finally:
            shutil.rmtree(building, ignore_errors=True)

    def _build_as_builder(self, root: Path, build: Callable[[Path, RunAs | None], None]) -> None:
        """`build` as a builder uid of its own; the result is sealed for the jobs' group."""
        if self._identities is None:
            build(root, None)
            return
        owner = f"{_BUILD_OWNER}{root.name}"
        builder = self._identities.allocate(owner)
        try:
            build(root, builder)
        finally:
            # Ends whatever setup.py left running as the builder, so nothing changes the
            # tree while (or after) it is sealed.
            self._identities.release(owner)
        _seal(root, builder.gid)

    # ----- what each kind of environment holds ---------------------------------------------

    def _new_venv(self, root: Path, site_dirs: Sequence[str], *, with_pip: bool = False) -> Path:
        """A virtual environment whose site-packages also sees `site_dirs`."""
        venv.EnvBuilder(with_pip=with_pip, symlinks=True, clear=True).create(root)
        site_packages = _site_packages(root)
        if site_dirs:
            # Executed at start-up: adds the directories (and runs their own .pth files).
            lines = [f"import site; site.addsitedir({path!r})" for path in site_dirs]
            (site_packages / "_cairn_frameworks.pth").write_text("\n".join(lines) + "\n")
        # Google's clients reach Cairn through the replica's PYTHONPATH
        # (executors/google_clients), never through files in the environment.
        return site_packages

    def _build_packages(
        self,
        root: Path,
        package_files: Sequence[Path],
        log_path: Path,
        cancelled: threading.Event | None,
        builder: RunAs | None,
        runtime_env: PythonEnvironment | None,
    ) -> None:
        """The job's packages with their dependencies, over Cairn's or a runtime's frameworks."""
        if runtime_env is None:
            site_packages = self._new_venv(root, _cairn_site_dirs())
            _record_framework_aliases(site_packages)
        else:
            runtime_site = _site_packages(runtime_env.root)
            self._new_venv(root, [str(runtime_site)])
            (root / RUNTIME_MARKER).write_text(runtime_env.root.name + "\n")
        if builder is not None:
            _give_tree(root, builder)  # the builder's alone (0700 under the server's umask)
        names = ", ".join(p.name for p in package_files)
        files = [str(p) for p in package_files]
        # Build sdists with the setuptools the environment already has: no download.
        no_isolation = ["--no-build-isolation"]
        if runtime_env is None:
            self._pip(
                root, [*no_isolation, *files], f"Installing {names}", log_path, cancelled, builder
            )
            return
        # A runtime: first read what the packages declare, to honour or replace the pins
        # on the runtime's frameworks, then install those and the packages (no deps).
        report = root / ".cairn-requirements.json"
        self._pip(
            root,
            [
                "--dry-run",
                "--no-deps",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                *no_isolation,
                *files,
            ],
            f"Reading the requirements of {names}",
            log_path,
            cancelled,
            builder,
        )
        requires = _declared_requirements(report)
        report.unlink(missing_ok=True)
        base_site = _site_packages(runtime_env.root.parent / BASE_NAME)
        provided = provided_versions([_site_packages(runtime_env.root), base_site])
        plan = plan_pins(requires, provided, self._wheels)
        for warning in plan.warnings:
            _log_line(log_path, warning)
        only_binary = ["--only-binary", ",".join(sorted(PROVIDED | plan.binary_only))]
        if plan.keep:
            self._pip(
                root,
                [*only_binary, *no_isolation, *plan.keep],
                f"Installing the requirements of {names}",
                log_path,
                cancelled,
                builder,
            )
        self._pip(
            root,
            ["--no-deps", *no_isolation, *files],
            f"Installing {names}",
            log_path,
            cancelled,
            builder,
        )

    def _build_base(
        self,
        root: Path,
        log_path: Path,
        cancelled: threading.Event | None,
        builder: RunAs | None,
    ) -> None:
        """TensorFlow 2.15 with Keras 2 and TensorBoard: what every runtime stands on."""
        site_packages = self._new_venv(root, [], with_pip=True)
        (site_packages / "_cairn_legacy_keras.pth").write_text(LEGACY_KERAS_PTH)
        (site_packages / f"{RUNTIME_COMPAT_MODULE}.py").write_text(RUNTIME_COMPAT)
        compat_pth = site_packages / f"{RUNTIME_COMPAT_MODULE}.pth"
        compat_pth.write_text(f"import {RUNTIME_COMPAT_MODULE}\n")
        if builder is not None:
            _give_tree(root, builder)
        only_binary = ["--only-binary", ",".join(sorted(PROVIDED))]
        self._pip(
            root,
            [*only_binary, *BASE_REQUIREMENTS],
            f"Installing {', '.join(BASE_REQUIREMENTS)}",
            log_path,
            cancelled,
            builder,
            runtime_build=True,
        )
        for written in _record_aliases(site_packages, ALIASES, "the runtime's"):
            if builder is not None:
                _give_tree(written, builder)  # pip, as the builder, reads it next
        self._pip(
            root,
            [*only_binary, KERAS_2],
            f"Installing {KERAS_2}",
            log_path,
            cancelled,
            builder,
            runtime_build=True,
        )

    def _build_layer(
        self,
        root: Path,
        runtime: Runtime,
        base: PythonEnvironment,
        log_path: Path,
        cancelled: threading.Event | None,
        builder: RunAs | None,
    ) -> None:
        """A runtime's scikit-learn, XGBoost and pandas over the shared base."""
        plan = plan_layer(runtime, self._wheels)
        for note in plan.notes():
            _log_line(log_path, f"Runtime {runtime.version}: {note}.")
        site_packages = self._new_venv(root, [str(_site_packages(base.root))])
        if builder is not None:
            _give_tree(root, builder)
        requirements = plan.requirements()
        self._pip(
            root,
            ["--only-binary=:all:", *requirements],
            f"Installing {', '.join(requirements)}",
            log_path,
            cancelled,
            builder,
            runtime_build=True,
        )
        if runtime.has_sklearn_externals_joblib:
            shim = site_packages / "sklearn" / "externals" / "joblib.py"
            shim.write_text(SKLEARN_EXTERNALS_JOBLIB.format(runtime=runtime.version))
        description = {
            "runtimeVersion": runtime.version,
            "base": BASE_NAME,
            "frameworks": {
                name: {"aiPlatform": wanted, "installed": installed}
                for name, (wanted, installed) in plan.frameworks.items()
            },
        }
        (root / "runtime.json").write_text(json.dumps(description, indent=2) + "\n")

    def _pip(
        self,
        root: Path,
        install_args: Sequence[str],
        header: str,
        log_path: Path,
        cancelled: threading.Event | None,
        builder: RunAs | None,
        *,
        runtime_build: bool = False,
    ) -> None:
        """`pip install` in the environment at `root`, its output appended to `log_path`."""
        command = [
            str(root / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            # A builder uid has no home to keep a cache in.
            *(["--no-cache-dir"] if builder is not None else []),
            # The deployer's pip options are for jobs' packages; runtimes use the index.
            *([] if runtime_build else self._pip_args),
            *install_args,
        ]
        env = user_code_environment()
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONHOME", None)
        user_options: dict[str, Any] = {}
        if builder is not None:
            builder.open_the_way()
            env = builder.environment(env, home=root)
            user_options = builder.popen_options()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"{header}\n".encode())
            log.flush()
            start = log.tell()
            pip = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=root,
                start_new_session=True,
                **user_options,
            )
            while True:
                try:
                    code = pip.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    if cancelled is not None and cancelled.is_set():
                        terminate_tree(pip.pid, grace_s=2.0)
                        pip.wait()
                        raise EnvironmentBuildCancelled() from None
        if code != 0:
            raise EnvironmentBuildError(
                f"Installing the job's packages with pip failed (exit status {code}). "
                f"The last lines of pip's output:\n{_tail(log_path, start)}"
            )

    # ----- removing what no job uses ----------------------------------------------------

    def collect_unused(self, max_idle_s: float) -> list[Path]:
        """Remove environments no job has used for `max_idle_s` seconds; never one in use.

        A package environment is in use while a process runs its Python; a runtime
        environment while a package environment standing on it remains (or a process runs
        its Python, as `cairn local train --runtime-version` does). Returns what went.
        """
        cutoff = time.time() - max_idle_s
        running = _running_interpreters()
        for source in self._protectors:
            for path in source():
                running.update(Path(path).parents)
        removed = [
            entry
            for entry in _environment_dirs(self.envs_root)
            if self._remove_if_idle(self.envs_root, entry.name, entry.name, cutoff, running)
        ]
        if self.runtimes_root is None:
            return removed
        wanted = {
            (entry / RUNTIME_MARKER).read_text().strip()
            for entry in _environment_dirs(self.envs_root)
            if (entry / RUNTIME_MARKER).is_file()
        }
        layers = [e for e in _environment_dirs(self.runtimes_root) if e.name != BASE_NAME]
        for entry in layers:
            if entry.name not in wanted and self._remove_if_idle(
                self.runtimes_root, entry.name, f"runtime:{entry.name}", cutoff, running
            ):
                removed.append(entry)
        base = self.runtimes_root / BASE_NAME
        if (
            base.is_dir()
            and not any(e.name != BASE_NAME for e in _environment_dirs(self.runtimes_root))
            and self._remove_if_idle(
                self.runtimes_root, BASE_NAME, f"runtime:{BASE_NAME}", cutoff, running
            )
        ):
            removed.append(base)
        return removed

    def protect(self, source: Callable[[], Iterable[Path]]) -> None:
        """Never collect the environments holding the paths `source` returns when asked
        (deployed model versions' interpreters, which may start nodes again at any time)."""
        self._protectors.append(source)

    def _remove_if_idle(
        self, parent: Path, name: str, lock_key: str, cutoff: float, running: set[Path]
    ) -> bool:
        lock = self._lock_for(lock_key)
        if not lock.acquire(blocking=False):
            return False  # being built or handed out right now
        try:
            # Judged under the lock that handing it out takes, so a job given it a moment
            # ago (its use marked) keeps it.
            if not _idle(parent, name, cutoff, running):
                return False
            doomed = parent / f".removing-{name[:24]}-{uuid.uuid4().hex[:8]}"
            try:
                os.rename(parent / name, doomed)  # gone for every reader at once
            except OSError:
                return False
            (parent / _USED_DIR / name).unlink(missing_ok=True)
        finally:
            lock.release()
        shutil.rmtree(doomed, ignore_errors=True)
        log.info("Removed the environment %s, unused for longer than allowed.", parent / name)
        return True

    def start_collector(self, max_idle_s: float, interval_s: float | None = None) -> None:
        """`collect_unused` now (start-up) and then every `interval_s`, in a daemon thread."""
        if self._collector is not None:
            return
        every = interval_s if interval_s is not None else min(max(max_idle_s / 4, 60.0), 3600.0)

        def collect() -> None:
            while True:
                try:
                    self.collect_unused(max_idle_s)
                except Exception:
                    log.exception("removing unused environments failed")
                if self._collector_stop.wait(every):
                    return

        self._collector = threading.Thread(target=collect, name="cairn-env-collector", daemon=True)
        self._collector.start()

    def stop_collector(self) -> None:
        self._collector_stop.set()
        if self._collector is not None:
            self._collector.join(timeout=10)


def _environment_dirs(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return [
        entry
        for entry in parent.iterdir()
        if not entry.name.startswith(".") and entry.is_dir() and not entry.is_symlink()
    ]


def _mark_used(parent: Path, name: str) -> None:
    """Record that a job (or local run) was given `parent/name` now."""
    marks = parent / _USED_DIR
    marks.mkdir(exist_ok=True)
    (marks / name).touch()
    os.utime(marks / name)


def _idle(parent: Path, name: str, cutoff: float, running: set[Path]) -> bool:
    mark = parent / _USED_DIR / name
    try:
        last_used = mark.stat().st_mtime if mark.exists() else (parent / name).stat().st_mtime
    except OSError:
        return False
    return last_used < cutoff and (parent / name) not in running


def _running_interpreters() -> set[Path]:
    """The environment directories whose Python some process on this machine is running."""
    roots: set[Path] = set()
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if cmdline and cmdline[0].endswith("/bin/python"):
            roots.add(Path(cmdline[0]).parent.parent)
    return roots


def _log_line(log_path: Path, line: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as handle:
        handle.write(line + "\n")


def _declared_requirements(report: Path) -> dict[str, list[str]]:
    """Package name -> Requires-Dist, from `pip install --dry-run --report`."""
    data = json.loads(report.read_text())
    return {
        item["metadata"]["name"]: list(item["metadata"].get("requires_dist") or [])
        for item in data.get("install", [])
    }


def _seal(root: Path, gid: int) -> None:
    """`acl.seal_tree`, then the marker that says it is done."""
    seal_tree(root, gid)
    fd = os.open(root / SEALED_MARKER, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o640)
    try:
        os.fchown(fd, os.geteuid(), gid)
    finally:
        os.close(fd)


def _give_tree(root: Path, builder: RunAs) -> None:
    """Hand the fresh venv (only the server has touched it so far) to the builder."""
    builder.give(root)
    for directory, subdirs, files in os.walk(root):
        for name in subdirs + files:
            builder.give(Path(directory, name))


def _tail(path: Path, start: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(start)
        lines = handle.read().decode(errors="replace").splitlines()
    return "\n".join(lines[-PIP_TAIL_LINES:])


def _record_framework_aliases(site_packages: Path) -> None:
    """Declare `tensorflow` provided when Cairn has `tensorflow-cpu` (and alike)."""
    for declared, installed in FRAMEWORK_ALIASES:
        try:
            importlib.metadata.version(declared)
            continue  # present under its own name
        except importlib.metadata.PackageNotFoundError:
            pass
        try:
            version = importlib.metadata.version(installed)
        except importlib.metadata.PackageNotFoundError:
            continue
        _write_alias(site_packages, declared, installed, version, "Cairn's environment")


def _record_aliases(
    site_packages: Path, aliases: Sequence[tuple[str, str]], provider: str
) -> list[Path]:
    """Declare each alias provided when `site_packages` holds the distribution it names;
    returns the directories written."""
    have = {
        (dist.metadata["Name"] or "").lower(): dist.version
        for dist in importlib.metadata.distributions(path=[str(site_packages)])
    }
    return [
        _write_alias(site_packages, declared, installed, have[installed], provider)
        for declared, installed in aliases
        if declared not in have and installed in have
    ]


def _write_alias(
    site_packages: Path, declared: str, installed: str, version: str, provider: str
) -> Path:
    info = site_packages / f"{declared}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {declared}\nVersion: {version}\n"
        f"Summary: Provided by {installed} {version} from {provider}.\n"
    )
    (info / "INSTALLER").write_text("cairn\n")
    (info / "RECORD").write_text("")
    return info


def _retarget_scripts(built: Path, final: Path) -> None:
    """Point scripts' shebangs and activate files at where the environment will live.

    pip wrote `bin/` as the user-code user, who could swap a script for a link to a system
    file between a check and a write; reading and writing through one descriptor opened
    without following links leaves no such gap.
    """
    old, new = str(built).encode(), str(final).encode()
    for script in (built / "bin").iterdir():
        try:
            fd = os.open(script, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # a symlink (the interpreter) or something else that is no script
        with os.fdopen(fd, "r+b") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            data = handle.read()
            if old in data:
                handle.seek(0)
                handle.write(data.replace(old, new))
                handle.truncate()


def local_runtime_python(
    runtime_version: str, envs_root: Path, runtimes_root: Path, log_path: Path
) -> Path:
    """The interpreter of a runtime's environment for `cairn local train --runtime-version`
    (built on first use, pip's output to `log_path`); ValueError for an unknown runtime."""
    runtime = runtime_for(runtime_version)
    if runtime is None:
        raise ValueError(
            f"{runtime_version!r} is not a runtime version AI Platform had; known ones: "
            f"{', '.join(RUNTIMES)}."
        )
    cache = EnvironmentCache(envs_root, runtimes_root=runtimes_root)
    return cache.ensure_runtime(runtime, log_path=log_path).python
