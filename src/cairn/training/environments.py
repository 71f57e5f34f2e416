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
import hashlib
import importlib.metadata
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.executors import RunAs, UidAllocator, terminate_tree, user_code_environment
from cairn.executors.acl import seal_tree

# Age after which a `.building-*` directory is a leftover of a crashed build.
_ABANDONED_BUILD_S = 3600.0
# Builder uids are allocated under this prefix plus the build directory's name.
_BUILD_OWNER = "builds/"
# Written into an environment once it is sealed: those without it are sealed at start-up.
SEALED_MARKER = ".cairn-sealed"

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


def environment_key(package_files: Sequence[Path]) -> str:
    """sha256 over what the packages install (and the Python version they serve).

    An archive counts by its members' names and contents, not its bytes: every `cairn jobs
    submit --package-path` builds a fresh sdist whose timestamps differ, and the same code
    must find the same environment.
    """
    digest = hashlib.sha256(f"cp{sys.version_info[0]}{sys.version_info[1]}\0".encode())
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
    """Builds and finds the environment for a set of package files."""

    def __init__(
        self,
        envs_root: Path,
        pip_args: Sequence[str] = (),
        *,
        identities: UidAllocator | None = None,
    ) -> None:
        self.envs_root = envs_root
        self._pip_args = list(pip_args)
        # Builder uids come from here: building an sdist runs its setup.py, user code.
        self._identities = identities
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        if identities is not None:
            # Builds a previous server left unfinished: end what still runs as their uids.
            for owner in identities.owners(_BUILD_OWNER):
                identities.release(owner)
        self._remove_abandoned_builds()
        if identities is not None:
            self._seal_unsealed()

    def _seal_unsealed(self) -> None:
        """Seal environments built before builds were sealed (writable by their builder),
        or whose sealing a crash cut short."""
        assert self._identities is not None
        if not self.envs_root.is_dir():
            return
        for entry in self.envs_root.iterdir():
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and not entry.is_symlink() and not (entry / SEALED_MARKER).exists():
                _seal(entry, self._identities.base.gid)

    def _remove_abandoned_builds(self) -> None:
        """Builds a crashed server left behind (none can still be running an hour later)."""
        cutoff = time.time() - _ABANDONED_BUILD_S
        for leftover in self.envs_root.glob(".building-*"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def find(self, package_files: Sequence[Path]) -> PythonEnvironment | None:
        """The ready environment for these packages, if one was built before."""
        root = self.envs_root / environment_key(package_files)
        return PythonEnvironment(root) if (root / "bin" / "python").exists() else None

    def ensure(
        self,
        package_files: Sequence[Path],
        *,
        log_path: Path,
        cancelled: threading.Event | None = None,
    ) -> PythonEnvironment:
        """The environment for `package_files`, built (pip output to `log_path`) if needed."""
        key = environment_key(package_files)
        final = self.envs_root / key
        with self._lock_for(key):
            if (final / "bin" / "python").exists():
                return PythonEnvironment(final)
            self.envs_root.mkdir(parents=True, exist_ok=True)
            building = self.envs_root / f".building-{key[:16]}-{uuid.uuid4().hex[:8]}"
            try:
                self._build_as_builder(building, package_files, log_path, cancelled)
                _retarget_scripts(building, final)
                try:
                    os.rename(building, final)
                except OSError:
                    # Another process finished the same environment first: use theirs.
                    if not (final / "bin" / "python").exists():
                        raise
            finally:
                shutil.rmtree(building, ignore_errors=True)
        return PythonEnvironment(final)

    def _build_as_builder(
        self,
        root: Path,
        package_files: Sequence[Path],
        log_path: Path,
        cancelled: threading.Event | None,
    ) -> None:
        """`_build` as a builder uid of its own; the result is sealed for the jobs' group."""
        if self._identities is None:
            self._build(root, package_files, log_path, cancelled, None)
            return
        owner = f"{_BUILD_OWNER}{root.name}"
        builder = self._identities.allocate(owner)
        try:
            self._build(root, package_files, log_path, cancelled, builder)
        finally:
            # Ends whatever setup.py left running as the builder, so nothing changes the
            # tree while (or after) it is sealed.
            self._identities.release(owner)
        _seal(root, builder.gid)

    def _build(
        self,
        root: Path,
        package_files: Sequence[Path],
        log_path: Path,
        cancelled: threading.Event | None,
        builder: RunAs | None,
    ) -> None:
        venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(root)
        site_packages = _site_packages(root)
        # Executed at start-up: adds Cairn's site-packages (and runs their own .pth files).
        lines = [f"import site; site.addsitedir({path!r})" for path in _cairn_site_dirs()]
        (site_packages / "_cairn_frameworks.pth").write_text("\n".join(lines) + "\n")
        _record_framework_aliases(site_packages)
        if builder is not None:
            _give_tree(root, builder)  # the builder's alone (0700 under the server's umask)
        command = [
            str(root / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            # Build sdists with the setuptools Cairn already has: no download, no network.
            "--no-build-isolation",
            # A builder uid has no home to keep a cache in.
            *(["--no-cache-dir"] if builder is not None else []),
            *self._pip_args,
            *[str(p) for p in package_files],
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
            log.write(f"Installing {', '.join(p.name for p in package_files)}\n".encode())
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
        info = site_packages / f"{declared}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {declared}\nVersion: {version}\n"
            f"Summary: Provided by {installed} {version} from Cairn's environment.\n"
        )
        (info / "INSTALLER").write_text("cairn\n")
        (info / "RECORD").write_text("")


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
