"""What each AI Platform runtime version installs here, and how a trainer's pins are met.

AI Platform's runtimes (`domain.runtimes`) shipped TensorFlow 1.15 ... 2.11 with Keras 2,
TensorBoard and that era's scikit-learn, XGBoost and pandas, on Python 3.7. None of those
TensorFlow releases has a wheel for Cairn's Python, so every runtime stands on one shared
base, TensorFlow 2.15 (the newest release with Keras 2 by default and `tf.estimator`, with
wheels for Python 3.11), plus `tf_keras` with `TF_USE_LEGACY_KERAS=1`, TensorBoard,
google-cloud-storage and cloudml-hypertune. On that base each runtime has a layer of its
own with its scikit-learn, XGBoost and pandas: the runtime's version where a wheel for this
Python exists, else the nearest release that has one (`nearest_with_wheel`; for
scikit-learn, the release Cairn serves with, so the models jobs write deploy), and a
`sklearn.externals.joblib` module where the runtime's scikit-learn had one.

A trainer's pins on what a runtime provides (`PROVIDED`) are honoured when a wheel for
them exists for this Python, and otherwise replaced by the runtime's version with a
warning (`plan_pins`); a framework is never built from source.

The environments themselves are built by `training.environments`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import cast

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from cairn.domain.runtimes import RUNTIMES, Runtime

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"

# The base every runtime stands on (see the module docstring for why 2.15).
BASE_NAME = f"tensorflow-2.15-py{PYTHON}"
TENSORFLOW_VERSION = "2.15.1"
BASE_REQUIREMENTS = (
    f"tensorflow-cpu=={TENSORFLOW_VERSION}",
    "numpy<2",  # TensorFlow 2.15 and every runtime's compiled frameworks need NumPy 1
    "google-cloud-storage",
    "google-api-python-client",
    "cloudml-hypertune",
    # Trainer sdists are built without build isolation, with what the runtime has.
    "setuptools",
    "wheel",
)
# Installed once the base records `tensorflow` as provided by tensorflow-cpu: tf-keras
# requires `tensorflow`, and pip would otherwise install the full build over the CPU one.
KERAS_2 = f"tf-keras=={TENSORFLOW_VERSION}"
# SciPy releases that still run the old scikit-learn releases the runtimes get.
RUNTIME_SCIPY = "scipy<1.12"

# Distributions a runtime provides: a trainer's pin on one is honoured only with a wheel.
PROVIDED = frozenset(
    canonicalize_name(name)
    for name in (
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-estimator",
        "tensorboard",
        "keras",
        "tf-keras",
        "scikit-learn",
        "xgboost",
        "pandas",
        "numpy",
        "scipy",
    )
)
# Names the base installs under another name, recorded so that pip sees them provided.
ALIASES = (("tensorflow", "tensorflow-cpu"),)

# Executed at start-up by every process of a runtime environment (a .pth line).
LEGACY_KERAS_PTH = "import os; os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')\n"

# Code of AI Platform's era that newer releases under it break, mended where the break is
# (a module plus a .pth line that imports it, in the base), each once its module loads:
# - AI Platform's runtimes ran Python 3.7, whose pickle handed files bytes; since 3.8 it hands
#   large frames over as memoryviews, which TensorFlow 2.15's GFile refuses, and Google's
#   samples `joblib.dump` into `tf.io.gfile.GFile(path, 'w')`;
# - XGBoost 1.x's scikit-learn wrappers ask for `_estimator_type`, which scikit-learn 1.8
#   dropped, and the runtimes' scikit-learn may be Cairn's own (see `_served_version`).
RUNTIME_COMPAT_MODULE = "_cairn_runtime_compat"
RUNTIME_COMPAT = '''"""Mends what AI Platform-era code meets on newer releases (Cairn, docs/runtimes.md).

Each patch runs right after its module has loaded, so nothing is imported early.
"""
import importlib.abc
import importlib.machinery
import sys


def _gfile_takes_memoryviews(compat):
    original = compat.as_bytes

    def as_bytes(bytes_or_text, encoding="utf-8"):
        if isinstance(bytes_or_text, memoryview):
            return bytes(bytes_or_text)
        return original(bytes_or_text, encoding)

    compat.as_bytes = as_bytes


def _mixins_name_their_type(base):
    for mixin, kind in (("ClassifierMixin", "classifier"), ("RegressorMixin", "regressor")):
        cls = getattr(base, mixin, None)
        if cls is not None and not hasattr(cls, "_estimator_type"):
            cls._estimator_type = kind


_PATCHES = {
    "tensorflow.python.util.compat": _gfile_takes_memoryviews,
    "sklearn.base": _mixins_name_their_type,
}


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        patch = _PATCHES.pop(name, None)
        if patch is None:
            return None
        if not _PATCHES:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                patch(module)

            spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
'''

# `from sklearn.externals import joblib` (scikit-learn < 0.23): joblib itself under the
# old name, so old pickles naming `sklearn.externals.joblib.*` load too.
SKLEARN_EXTERNALS_JOBLIB = (
    '"""scikit-learn < 0.23 vendored joblib here; AI Platform runtime {runtime} had it."""\n'
    "import sys\n\n"
    "import joblib\n\n"
    "sys.modules[__name__] = joblib\n"
)


def layer_name(runtime: Runtime) -> str:
    return f"runtime-{runtime.version}-py{PYTHON}"


@dataclass(frozen=True)
class LayerPlan:
    """What a runtime's layer installs: distribution -> (AI Platform's version, installed)."""

    runtime: Runtime
    frameworks: dict[str, tuple[str, str]]

    def requirements(self) -> list[str]:
        pins = [f"{name}=={installed}" for name, (_, installed) in self.frameworks.items()]
        return [*pins, RUNTIME_SCIPY]

    def notes(self) -> list[str]:
        """One line per framework whose version differs from AI Platform's."""
        return [
            f"{name} {installed} (runtime {self.runtime.version} had {wanted}, which has no "
            f"wheel for Python {PYTHON})"
            for name, (wanted, installed) in self.frameworks.items()
            if wanted != installed
        ]


def plan_layer(runtime: Runtime, wheels: WheelIndex) -> LayerPlan:
    """The runtime's scikit-learn, XGBoost and pandas, or the nearest with a wheel."""
    frameworks: dict[str, tuple[str, str]] = {}
    for name, wanted in runtime.frameworks().items():
        if name == "tensorflow":
            continue  # every runtime shares the base's TensorFlow
        available = wheels.versions(name)
        chosen = nearest_with_wheel(wanted, available)
        served = _served_version(name)
        if chosen != wanted and served in available:
            # A model a job writes must load where Cairn serves it, and scikit-learn's pickles
            # do not load across releases: rather than another release that also differs
            # from AI Platform's, take the one Cairn predicts with.
            chosen = served
        if chosen is None:
            raise RuntimeError(
                f"No {name} release has a wheel for Python {PYTHON} in the package index; "
                f"runtime {runtime.version} needs one (it had {name} {wanted})."
            )
        frameworks[name] = (wanted, chosen)
    return LayerPlan(runtime, frameworks)


def _served_version(name: str) -> str | None:
    """The release of `name` Cairn's own prediction nodes load models with, for the
    frameworks whose saved models are tied to their release (scikit-learn's pickles)."""
    if name != "scikit-learn":
        return None
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def nearest_with_wheel(wanted: str, available: Iterable[str]) -> str | None:
    """`wanted` when it has a wheel; else the oldest newer release; else the newest older."""
    target = Version(wanted)
    versions = sorted(
        {v for v in (_version(a) for a in available) if v is not None and not v.is_prerelease}
    )
    if target in versions:
        return str(versions[versions.index(target)])
    newer = [v for v in versions if v > target]
    if newer:
        return str(newer[0])
    return str(versions[-1]) if versions else None


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


class WheelIndex:
    """Releases of a distribution that have a wheel for this Python, as pip's index says."""

    def __init__(self, pip_args: Sequence[str] = ()) -> None:
        self._pip_args = [a for a in pip_args if a not in ("--no-cache-dir",)]
        self._known: dict[str, tuple[str, ...]] = {}

    def versions(self, name: str) -> tuple[str, ...]:
        """Asked once per server and name; an index that does not answer is asked again
        next time (a cached empty answer would replace every pin for good)."""
        if name not in self._known:
            found = self._ask(name)
            if found:
                self._known[name] = found
            return found
        return self._known[name]

    def _ask(self, name: str) -> tuple[str, ...]:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "index",
                "versions",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                *self._pip_args,
                name,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        match = re.search(r"^Available versions: (.*)$", result.stdout, re.MULTILINE)
        if not match:
            # A single release prints only its name line: `name (1.2.3)`.
            single = re.search(rf"^{re.escape(name)} \(([^)]+)\)$", result.stdout, re.M | re.I)
            return (single.group(1),) if single else ()
        return tuple(v.strip() for v in match.group(1).split(",") if v.strip())


@dataclass
class PinPlan:
    """How to install a trainer's declared requirements into a runtime's package env."""

    keep: list[str] = field(default_factory=list)  # handed to pip as they are
    binary_only: set[str] = field(default_factory=set)  # provided names: wheels only
    warnings: list[str] = field(default_factory=list)


def plan_pins(
    requires: Mapping[str, Sequence[str]],
    provided: Mapping[str, str],
    wheels: WheelIndex,
) -> PinPlan:
    """Sort each package's `Requires-Dist` into kept and replaced requirements.

    `requires`: package name -> its requirement strings; `provided`: canonical name ->
    version the runtime environment has. A requirement on a provided distribution that the
    runtime's version satisfies is kept (pip finds it installed); one it does not satisfy
    is kept when some release with a wheel for this Python satisfies it (installed over
    the runtime's, wheels only), else dropped with a warning naming both versions.
    """
    plan = PinPlan()
    environment: dict[str, str] = {**cast(dict[str, str], default_environment()), "extra": ""}
    for package, lines in requires.items():
        for line in lines:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                plan.keep.append(line)  # pip will say what is wrong with it
                continue
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            name = canonicalize_name(requirement.name)
            if name not in PROVIDED:
                plan.keep.append(str(requirement))
                continue
            plan.binary_only.add(name)
            have = provided.get(name)
            if have is not None and requirement.specifier.contains(have, prereleases=True):
                continue
            candidates = [
                v for v in wheels.versions(requirement.name) if requirement.specifier.contains(v)
            ]
            if candidates:
                plan.keep.append(str(requirement))
                continue
            if have is None:
                plan.keep.append(str(requirement))  # pip will say no wheel fits
                continue
            plan.warnings.append(
                f"WARNING: {package} requires {requirement.name}{requirement.specifier}, and no "
                f"release with a wheel for Python {PYTHON} matches; using the runtime's "
                f"{requirement.name} {have} instead."
            )
    return plan


def provided_versions(site_dirs: Sequence[Path]) -> dict[str, str]:
    """Canonical name -> version of what `site_dirs` hold (first one wins, like sys.path)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions(path=[str(d) for d in site_dirs]):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist.version)
    return found


def runtime_for(version: str | None) -> Runtime | None:
    return RUNTIMES.get(version.strip()) if version else None
