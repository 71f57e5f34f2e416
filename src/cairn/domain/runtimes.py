"""AI Platform's runtime versions and Python versions: which values exist, and what they held.

AI Platform accepted `runtimeVersion` 1.15 and 2.1 ... 2.11 for training and prediction
(older 1.x runtimes were retired before its `ml` v1 era ended); each came with fixed
framework versions, listed here as Google's runtime version list gave them. A value AI
Platform never had is refused at create with the list of known ones; what Cairn installs
for each runtime (the nearest release with a wheel for its own Python) is decided in
`training.runtimes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cairn.domain.errors import ApiError, invalid_field


@dataclass(frozen=True)
class Runtime:
    """One AI Platform runtime version as Google's runtime version list described it."""

    version: str
    python_versions: tuple[str, ...]
    tensorflow: str
    scikit_learn: str
    xgboost: str
    pandas: str

    @property
    def has_sklearn_externals_joblib(self) -> bool:
        """scikit-learn kept the vendored `sklearn.externals.joblib` until 0.23."""
        return _release(self.scikit_learn) < (0, 23)

    @property
    def primary_task_type(self) -> str:
        """TF_CONFIG's name for the primary: `master` on TensorFlow 1 runtimes."""
        return "master" if self.version.startswith("1.") else "chief"

    def frameworks(self) -> dict[str, str]:
        """Distribution name -> the version AI Platform installed."""
        return {
            "tensorflow": self.tensorflow,
            "scikit-learn": self.scikit_learn,
            "xgboost": self.xgboost,
            "pandas": self.pandas,
        }


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


RUNTIMES: dict[str, Runtime] = {
    r.version: r
    for r in (
        Runtime("1.15", ("2.7", "3.7"), "1.15.0", "0.20.4", "0.90", "0.25.3"),
        Runtime("2.1", ("3.7",), "2.1.0", "0.22.1", "0.90", "0.25.3"),
        Runtime("2.2", ("3.7",), "2.2.0", "0.22.1", "1.1.0", "1.0.5"),
        Runtime("2.3", ("3.7",), "2.3.0", "0.23.2", "1.2.0", "1.1.3"),
        Runtime("2.4", ("3.7",), "2.4.0", "0.24.0", "1.3.1", "1.1.5"),
        Runtime("2.5", ("3.7",), "2.5.0", "0.24.2", "1.4.2", "1.2.4"),
        Runtime("2.6", ("3.7",), "2.6.0", "0.24.2", "1.4.2", "1.3.2"),
        Runtime("2.7", ("3.7",), "2.7.0", "1.0.1", "1.5.0", "1.3.4"),
        Runtime("2.8", ("3.7",), "2.8.0", "1.0.2", "1.5.2", "1.3.5"),
        Runtime("2.9", ("3.7",), "2.9.0", "1.0.2", "1.6.1", "1.3.5"),
        Runtime("2.10", ("3.7",), "2.10.0", "1.0.2", "1.6.2", "1.3.5"),
        Runtime("2.11", ("3.7",), "2.11.0", "1.0.2", "1.7.6", "1.3.5"),
    )
}

# Every pythonVersion AI Platform accepted with some runtime (3.5 only with 1.4-1.14).
PYTHON_VERSIONS = ("2.7", "3.5", "3.7")


def known_runtime_versions() -> str:
    return ", ".join(RUNTIMES)


def check_runtime(
    runtime_version: str | None,
    python_version: str | None,
    *,
    field_prefix: str,
) -> Runtime | None:
    """The runtime a job or version asks for (None: unset); ApiError for unknown values.

    `field_prefix` is the request's path to the two fields (`job.training_input`,
    `version`), for the field violation.
    """
    runtime = None
    if runtime_version is not None:
        runtime = RUNTIMES.get(runtime_version.strip())
        if runtime is None:
            raise invalid_field(
                f"{field_prefix}.runtime_version",
                f"{runtime_version!r} is not a runtime version AI Platform had. Known "
                f"runtime versions: {known_runtime_versions()} (docs/runtimes.md says what "
                "each one contains).",
            )
    if python_version is None:
        return runtime
    python = python_version.strip()
    if python not in PYTHON_VERSIONS:
        raise invalid_field(
            f"{field_prefix}.python_version",
            f"{python_version!r} is not a Python version AI Platform had. Known Python "
            f"versions: {', '.join(PYTHON_VERSIONS)} (3.7 with runtime 1.15 and later).",
        )
    if runtime is not None and python not in runtime.python_versions:
        raise invalid_field(
            f"{field_prefix}.python_version",
            f"Runtime version {runtime.version} had Python "
            f"{' and '.join(runtime.python_versions)}, not {python}.",
        )
    if python != "3.7":
        raise _unrunnable_python(field_prefix, python)
    return runtime


def _unrunnable_python(field_prefix: str, python: str) -> ApiError:
    # AI Platform had it, but Cairn runs every runtime on one Python 3 interpreter:
    # Python 2 (or 3.5-only) code would fail later with a confusing error.
    return invalid_field(
        f"{field_prefix}.python_version",
        f"Python {python} code cannot run on Cairn, whose runtimes run Python 3 code "
        "(pythonVersion 3.7). Port the trainer to Python 3 and set pythonVersion to 3.7.",
    )
