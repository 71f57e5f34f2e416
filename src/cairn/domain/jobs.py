"""Job and everything inside it (training and batch-prediction specs), with AI Platform's rules."""

from __future__ import annotations

import json
import math
import re
from typing import Literal

from cairn.domain.errors import ApiError, Code, invalid_field, shown
from cairn.domain.names import check_id
from cairn.domain.runtimes import check_runtime
from cairn.domain.wire import Int32, Int64, Message, Timestamp

JobState = Literal[
    "STATE_UNSPECIFIED",
    "QUEUED",
    "PREPARING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELLING",
    "CANCELLED",
]
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
ACTIVE_STATES = frozenset({"QUEUED", "PREPARING", "RUNNING", "CANCELLING"})

ScaleTier = Literal["BASIC", "STANDARD_1", "PREMIUM_1", "BASIC_GPU", "BASIC_TPU", "CUSTOM"]
AcceleratorType = Literal[
    "ACCELERATOR_TYPE_UNSPECIFIED",
    "NVIDIA_TESLA_K80",
    "NVIDIA_TESLA_P100",
    "NVIDIA_TESLA_V100",
    "NVIDIA_TESLA_P4",
    "NVIDIA_TESLA_T4",
    "NVIDIA_TESLA_A100",
    "TPU_V2",
    "TPU_V3",
    "TPU_V2_POD",
    "TPU_V3_POD",
    "TPU_V4_POD",
]
DataFormat = Literal[
    "DATA_FORMAT_UNSPECIFIED", "JSON", "TEXT", "TF_RECORD", "TF_RECORD_GZIP", "CSV", "FILE_LIST"
]

# Replicas besides the master that AI Platform runs for its predefined scale tiers:
# (workers, parameter servers).
TIER_REPLICAS: dict[str, tuple[int, int]] = {
    "BASIC": (0, 0),
    "BASIC_GPU": (0, 0),
    "STANDARD_1": (4, 3),
    "PREMIUM_1": (19, 11),
}
# Largest training input (as JSON) a job may have: each replica's TF_CONFIG carries it, and
# leaves room below Linux's 128 KiB limit for the cluster's addresses.
MAX_TRAINING_INPUT_BYTES = 64 * 1024
# Replica processes one job may ask for, master included (Settings.max_replicas).
DEFAULT_MAX_REPLICAS = 64

_DURATION = re.compile(r"[0-9]+(\.[0-9]{1,9})?s")


class AcceleratorConfig(Message):
    count: Int64 | None = None
    type: AcceleratorType | None = None


class DiskConfig(Message):
    boot_disk_size_gb: Int32 | None = None
    boot_disk_type: str | None = None


class ReplicaConfig(Message):
    accelerator_config: AcceleratorConfig | None = None
    container_args: list[str] | None = None
    container_command: list[str] | None = None
    disk_config: DiskConfig | None = None
    image_uri: str | None = None
    tpu_tf_version: str | None = None


class EncryptionConfig(Message):
    kms_key_name: str | None = None


class Scheduling(Message):
    max_running_time: str | None = None
    max_wait_time: str | None = None
    priority: Int32 | None = None
    strategy: Literal["STRATEGY_UNSPECIFIED", "ON_DEMAND", "LOW_COST"] | None = None
    resilient_to_worker_restart: bool | None = None


class ParameterSpec(Message):
    parameter_name: str | None = None
    type: (
        Literal["PARAMETER_TYPE_UNSPECIFIED", "DOUBLE", "INTEGER", "CATEGORICAL", "DISCRETE"] | None
    ) = None
    min_value: float | None = None
    max_value: float | None = None
    categorical_values: list[str] | None = None
    discrete_values: list[float] | None = None
    scale_type: (
        Literal["NONE", "UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE"] | None
    ) = None


class HyperparameterSpec(Message):
    algorithm: Literal["ALGORITHM_UNSPECIFIED", "GRID_SEARCH", "RANDOM_SEARCH"] | None = None
    enable_trial_early_stopping: bool | None = None
    goal: Literal["GOAL_TYPE_UNSPECIFIED", "MAXIMIZE", "MINIMIZE"] | None = None
    hyperparameter_metric_tag: str | None = None
    max_failed_trials: Int32 | None = None
    max_parallel_trials: Int32 | None = None
    max_trials: Int32 | None = None
    params: list[ParameterSpec] | None = None
    resume_previous_job_id: str | None = None


class TrainingInput(Message):
    args: list[str] | None = None
    enable_web_access: bool | None = None
    encryption_config: EncryptionConfig | None = None
    evaluator_config: ReplicaConfig | None = None
    evaluator_count: Int64 | None = None
    evaluator_type: str | None = None
    hyperparameters: HyperparameterSpec | None = None
    job_dir: str | None = None
    master_config: ReplicaConfig | None = None
    master_type: str | None = None
    network: str | None = None
    package_uris: list[str] | None = None
    parameter_server_config: ReplicaConfig | None = None
    parameter_server_count: Int64 | None = None
    parameter_server_type: str | None = None
    python_module: str | None = None
    python_version: str | None = None
    region: str | None = None
    runtime_version: str | None = None
    scale_tier: ScaleTier | None = None
    scheduling: Scheduling | None = None
    service_account: str | None = None
    use_chief_in_tf_config: bool | None = None
    worker_config: ReplicaConfig | None = None
    worker_count: Int64 | None = None
    worker_type: str | None = None


class HyperparameterMetric(Message):
    objective_value: float | None = None
    training_step: Int64 | None = None


class BuiltInAlgorithmOutput(Message):
    framework: str | None = None
    model_path: str | None = None
    python_version: str | None = None
    runtime_version: str | None = None


class HyperparameterOutput(Message):
    all_metrics: list[HyperparameterMetric] | None = None
    built_in_algorithm_output: BuiltInAlgorithmOutput | None = None
    end_time: Timestamp | None = None
    final_metric: HyperparameterMetric | None = None
    hyperparameters: dict[str, str] | None = None
    is_trial_stopped_early: bool | None = None
    start_time: Timestamp | None = None
    state: JobState | None = None
    trial_id: str | None = None
    web_access_uris: dict[str, str] | None = None


class TrainingOutput(Message):
    built_in_algorithm_output: BuiltInAlgorithmOutput | None = None
    completed_trial_count: Int64 | None = None
    consumed_m_l_units: float | None = None
    hyperparameter_metric_tag: str | None = None
    is_built_in_algorithm_job: bool | None = None
    is_hyperparameter_tuning_job: bool | None = None
    trials: list[HyperparameterOutput] | None = None
    web_access_uris: dict[str, str] | None = None


class PredictionInput(Message):
    batch_size: Int64 | None = None
    data_format: DataFormat | None = None
    input_paths: list[str] | None = None
    max_worker_count: Int64 | None = None
    model_name: str | None = None
    output_data_format: DataFormat | None = None
    output_path: str | None = None
    region: str | None = None
    runtime_version: str | None = None
    signature_name: str | None = None
    uri: str | None = None
    version_name: str | None = None


class PredictionOutput(Message):
    error_count: Int64 | None = None
    node_hours: float | None = None
    output_path: str | None = None
    prediction_count: Int64 | None = None


class CairnReplica(Message):
    """Cairn-specific, output only (`jobs describe`): one replica of a training job, its
    state (RUNNING, RESTARTING, SUCCEEDED, FAILED, STOPPED), restarts after crashes and last
    exit code. Not a field of Google's Job; Cairn drops it when a client sends it back."""

    task_name: str | None = None
    state: str | None = None
    restart_count: Int32 | None = None
    exit_code: Int32 | None = None


class Job(Message):
    job_id: str | None = None
    labels: dict[str, str] | None = None
    etag: str | None = None
    training_input: TrainingInput | None = None
    prediction_input: PredictionInput | None = None
    # Output only.
    create_time: Timestamp | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    state: JobState | None = None
    error_message: str | None = None
    job_position: Int64 | None = None
    training_output: TrainingOutput | None = None
    prediction_output: PredictionOutput | None = None
    cairn_replicas: list[CairnReplica] | None = None


# `consumedMLUnits` does not follow the camel-case generator's spelling.
TrainingOutput.model_fields["consumed_m_l_units"].alias = "consumedMLUnits"
TrainingOutput.model_fields["consumed_m_l_units"].serialization_alias = "consumedMLUnits"
TrainingOutput.model_fields["consumed_m_l_units"].validation_alias = "consumedMLUnits"
TrainingOutput.model_rebuild(force=True)

OUTPUT_ONLY_JOB_FIELDS = (
    "create_time",
    "start_time",
    "end_time",
    "state",
    "error_message",
    "job_position",
    "training_output",
    "prediction_output",
    "cairn_replicas",
)


def validate_new_job(job: Job) -> None:
    """AI Platform's rules for `jobs.create`; raises INVALID_ARGUMENT naming the field."""
    check_id(job.job_id, "job.job_id")
    if (job.training_input is None) == (job.prediction_input is None):
        raise invalid_field("job", "Exactly one of trainingInput and predictionInput must be set.")
    check_labels(job.labels, "job.labels")
    if job.training_input is not None:
        validate_training_input(job.training_input)
    if job.prediction_input is not None:
        validate_prediction_input(job.prediction_input)


def validate_training_input(spec: TrainingInput) -> None:
    path = "job.training_input"
    if not spec.region:
        raise invalid_field(f"{path}.region", "A region is required (for example us-central1).")
    image = spec.master_config.image_uri if spec.master_config else None
    if image and spec.runtime_version:
        raise invalid_field(
            f"{path}.runtime_version",
            "Set either masterConfig.imageUri or runtimeVersion, not both.",
        )
    # Only runtime and Python versions AI Platform had (domain/runtimes.py).
    check_runtime(spec.runtime_version, spec.python_version, field_prefix=path)
    if not image:
        if not spec.package_uris:
            raise invalid_field(f"{path}.package_uris", "At least one package URI is required.")
        if len(spec.package_uris) > 100:
            raise invalid_field(f"{path}.package_uris", "At most 100 package URIs are allowed.")
        if not spec.python_module:
            raise invalid_field(
                f"{path}.python_module", "A Python module (e.g. trainer.task) is required."
            )
        if not all(part.isidentifier() for part in spec.python_module.split(".")):
            raise invalid_field(
                f"{path}.python_module",
                f"{shown(spec.python_module)} is not a Python module name like trainer.task.",
            )
    _check_cluster(spec, path)
    if spec.scheduling is not None:
        for name in ("max_running_time", "max_wait_time"):
            value = getattr(spec.scheduling, name)
            if value is not None and (
                not _DURATION.fullmatch(value) or float(value.removesuffix("s")) <= 0
            ):
                raise invalid_field(
                    f"{path}.scheduling.{name}",
                    f"{shown(value)} is not a positive duration like '7200s'.",
                )
        if spec.scheduling.priority is not None and not 0 <= spec.scheduling.priority <= 1000:
            raise invalid_field(
                f"{path}.scheduling.priority",
                "Must be between 0 and 1000 (higher runs first; the default is 0).",
            )
    if spec.hyperparameters is not None:
        validate_hyperparameters(spec.hyperparameters, f"{path}.hyperparameters")
    _check_launchable(spec, path)


def _check_launchable(spec: TrainingInput, path: str) -> None:
    """Refuse what no replica process could be started with, rather than fail at launch."""
    for index, arg in enumerate(spec.args or []):
        if "\x00" in arg:
            raise invalid_field(
                f"{path}.args[{index}]",
                "Arguments cannot hold NUL characters: a process cannot receive them.",
            )
    # Every replica gets the whole training input in TF_CONFIG, and Linux limits one
    # environment variable to 128 KiB (MAX_ARG_STRLEN); json.dumps is how it is written.
    size = len(json.dumps(spec.to_json()))
    if size > MAX_TRAINING_INPUT_BYTES:
        raise invalid_field(
            path,
            f"The training input is {size} bytes as JSON; at most {MAX_TRAINING_INPUT_BYTES} "
            "fit, since every replica receives it in TF_CONFIG. Pass long inputs in a file "
            "(gs://...) instead of in args.",
        )


def _check_cluster(spec: TrainingInput, path: str) -> None:
    tier = spec.scale_tier or "BASIC"
    roles = (
        ("worker", spec.worker_count, spec.worker_type),
        ("parameter_server", spec.parameter_server_count, spec.parameter_server_type),
        ("evaluator", spec.evaluator_count, spec.evaluator_type),
    )
    if tier != "CUSTOM":
        if spec.master_type:
            raise invalid_field(
                f"{path}.master_type", "Machine types can only be set with scaleTier CUSTOM."
            )
        for role, count, machine in roles:
            if count or machine:
                raise invalid_field(
                    f"{path}.{role}_count" if count else f"{path}.{role}_type",
                    "Replica counts and types can only be set with scaleTier CUSTOM.",
                )
        return
    if not spec.master_type:
        raise invalid_field(f"{path}.master_type", "scaleTier CUSTOM requires a masterType.")
    for role, count, machine in roles:
        if count is not None and count < 0:
            raise invalid_field(f"{path}.{role}_count", "Must not be negative.")
        if count and not machine:
            raise invalid_field(
                f"{path}.{role}_type", f"{role}Count is set, so {role}Type is required."
            )
        if machine and not count:
            raise invalid_field(
                f"{path}.{role}_count", f"{role}Type is set, so {role}Count must be positive."
            )


# A parameter becomes the trainer flag `--NAME=VALUE`, so its name must read as one.
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
# A grid is enumerated: past this many combinations it is not a search one can finish.
MAX_GRID_SIZE = 1_000_000
MAX_TUNING_TRIALS = 10_000


def validate_hyperparameters(spec: HyperparameterSpec, path: str) -> None:
    if not spec.params:
        raise invalid_field(f"{path}.params", "At least one parameter is required.")
    for name in ("max_trials", "max_parallel_trials", "max_failed_trials"):
        value = getattr(spec, name)
        if value is not None and value < 0:
            raise invalid_field(f"{path}.{name}", "Must not be negative.")
    if spec.max_trials is not None and spec.max_trials > MAX_TUNING_TRIALS:
        raise invalid_field(
            f"{path}.max_trials", f"At most {MAX_TUNING_TRIALS} trials per tuning job."
        )
    if spec.hyperparameter_metric_tag is not None and (
        not spec.hyperparameter_metric_tag.strip() or len(spec.hyperparameter_metric_tag) > 256
    ):
        raise invalid_field(
            f"{path}.hyperparameter_metric_tag",
            "Give the metric's tag as the trainer reports it (1-256 characters), or leave it "
            "unset for training/hptuning/metric.",
        )
    if spec.resume_previous_job_id is not None:
        check_id(spec.resume_previous_job_id, f"{path}.resume_previous_job_id")
    seen: set[str] = set()
    for index, param in enumerate(spec.params):
        where = f"{path}.params[{index}]"
        if not param.parameter_name:
            raise invalid_field(f"{where}.parameter_name", "A parameter name is required.")
        if not _PARAMETER_NAME.fullmatch(param.parameter_name):
            raise invalid_field(
                f"{where}.parameter_name",
                f"{shown(param.parameter_name)} cannot be a trainer flag: use letters, digits, "
                "'_', '.' and '-', starting with a letter or '_'.",
            )
        if param.parameter_name in seen:
            raise invalid_field(
                f"{where}.parameter_name", f"Duplicate parameter '{param.parameter_name}'."
            )
        seen.add(param.parameter_name)
        _check_parameter(param, where, spec.algorithm)
    if spec.algorithm == "GRID_SEARCH":
        size = 1
        for param in spec.params:
            size *= _choice_count(param)
        if size > MAX_GRID_SIZE:
            raise invalid_field(
                f"{path}.params",
                f"This grid has {size} combinations; GRID_SEARCH runs at most {MAX_GRID_SIZE}. "
                "Narrow the ranges, or use the default algorithm (Bayesian optimisation).",
            )


def _choice_count(param: ParameterSpec) -> int:
    if param.type == "INTEGER":
        return int(param.max_value or 0) - int(param.min_value or 0) + 1
    if param.type == "CATEGORICAL":
        return len(param.categorical_values or [])
    return len(param.discrete_values or [])


def _check_parameter(param: ParameterSpec, where: str, algorithm: str | None) -> None:
    kind = param.type
    if kind in (None, "PARAMETER_TYPE_UNSPECIFIED"):
        raise invalid_field(
            f"{where}.type", "Set the type: DOUBLE, INTEGER, CATEGORICAL or DISCRETE."
        )
    if algorithm == "GRID_SEARCH" and kind == "DOUBLE":
        raise invalid_field(
            f"{where}.type",
            "GRID_SEARCH cannot search DOUBLE parameters; use INTEGER, CATEGORICAL or DISCRETE.",
        )
    log_scale = param.scale_type in ("UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE")
    if kind in ("DOUBLE", "INTEGER"):
        if param.min_value is None or param.max_value is None:
            raise invalid_field(
                f"{where}.min_value", f"{kind} parameters need minValue and maxValue."
            )
        if not math.isfinite(param.max_value - param.min_value):
            raise invalid_field(
                f"{where}.min_value", "minValue and maxValue must be finite, and so their span."
            )
        if kind == "INTEGER" and max(abs(param.min_value), abs(param.max_value)) > 2**53:
            raise invalid_field(
                f"{where}.max_value", "INTEGER bounds must lie within ±2^53 (9007199254740992)."
            )
        if param.min_value > param.max_value:
            raise invalid_field(f"{where}.max_value", "maxValue must not be below minValue.")
        if kind == "INTEGER" and not (
            float(param.min_value).is_integer() and float(param.max_value).is_integer()
        ):
            raise invalid_field(f"{where}.min_value", "INTEGER bounds must be whole numbers.")
        if log_scale and param.min_value <= 0:
            raise invalid_field(
                f"{where}.min_value", f"{param.scale_type} needs a range above zero."
            )
    elif param.min_value is not None or param.max_value is not None:
        raise invalid_field(
            f"{where}.min_value",
            f"{kind} parameters take their values from a list; leave minValue and maxValue unset.",
        )
    if kind == "CATEGORICAL":
        values = param.categorical_values or []
        if not values:
            raise invalid_field(
                f"{where}.categorical_values", "CATEGORICAL parameters need categoricalValues."
            )
        if len(set(values)) != len(values) or not all(values):
            raise invalid_field(
                f"{where}.categorical_values",
                "categoricalValues must be distinct, non-empty strings.",
            )
        if param.scale_type not in (None, "NONE"):
            raise invalid_field(f"{where}.scale_type", "Leave scaleType unset for CATEGORICAL.")
    if kind == "DISCRETE":
        discrete = param.discrete_values or []
        if not discrete:
            raise invalid_field(
                f"{where}.discrete_values", "DISCRETE parameters need discreteValues."
            )
        if len(discrete) > 1000:
            raise invalid_field(f"{where}.discrete_values", "At most 1000 values are allowed.")
        if not all(math.isfinite(v) for v in discrete):
            raise invalid_field(f"{where}.discrete_values", "discreteValues must be finite.")
        if any(b <= a for a, b in zip(discrete, discrete[1:], strict=False)):
            raise invalid_field(
                f"{where}.discrete_values", "discreteValues must be strictly increasing."
            )
        if log_scale and discrete[0] <= 0:
            raise invalid_field(
                f"{where}.discrete_values", f"{param.scale_type} needs values above zero."
            )


# Batch prediction: what Cairn reads and writes (CSV input is Cairn's own extension).
PREDICTION_INPUT_FORMATS = ("JSON", "TEXT", "CSV", "TF_RECORD", "TF_RECORD_GZIP")
PREDICTION_OUTPUT_FORMATS = ("JSON", "TEXT", "CSV")
MAX_PREDICTION_INPUT_PATHS = 100
MAX_PREDICTION_BATCH_SIZE = 100_000
_RUNTIME_VERSION = re.compile(r"[0-9]+\.[0-9]+")
_MODEL_NAME = re.compile(r"projects/[^/]+/models/[^/]+")
_VERSION_NAME = re.compile(r"projects/[^/]+/models/[^/]+/versions/[^/]+")


def validate_prediction_input(spec: PredictionInput) -> None:
    path = "job.prediction_input"
    sources = [v for v in (spec.model_name, spec.version_name, spec.uri) if v]
    if len(sources) != 1:
        raise invalid_field(
            path,
            "Set exactly one of modelName (projects/P/models/M: its default version), "
            "versionName (projects/P/models/M/versions/V) and uri (a model directory).",
        )
    if spec.model_name and not _MODEL_NAME.fullmatch(spec.model_name):
        raise invalid_field(
            f"{path}.model_name",
            f"{shown(spec.model_name)} is not a model name like projects/P/models/M.",
        )
    if spec.version_name and not _VERSION_NAME.fullmatch(spec.version_name):
        raise invalid_field(
            f"{path}.version_name",
            f"{shown(spec.version_name)} is not a version name like "
            "projects/P/models/M/versions/V.",
        )
    if spec.data_format in (None, "DATA_FORMAT_UNSPECIFIED"):
        raise invalid_field(
            f"{path}.data_format",
            "A data format is required: JSON (or TEXT: one JSON instance per line), CSV, "
            "TF_RECORD or TF_RECORD_GZIP.",
        )
    if spec.data_format not in PREDICTION_INPUT_FORMATS:
        raise invalid_field(
            f"{path}.data_format",
            f"{spec.data_format} input is not supported; use JSON (or TEXT), CSV, TF_RECORD "
            "or TF_RECORD_GZIP.",
        )
    output = spec.output_data_format
    if output not in (None, "DATA_FORMAT_UNSPECIFIED") and output not in (
        PREDICTION_OUTPUT_FORMATS
    ):
        raise invalid_field(
            f"{path}.output_data_format",
            f"Predictions cannot be written as {output}; use JSON (the default) or CSV.",
        )
    if not spec.input_paths:
        raise invalid_field(f"{path}.input_paths", "At least one input path is required.")
    if len(spec.input_paths) > MAX_PREDICTION_INPUT_PATHS:
        raise invalid_field(
            f"{path}.input_paths",
            f"At most {MAX_PREDICTION_INPUT_PATHS} input paths are allowed; use wildcards "
            "(gs://BUCKET/DIR/*) to name many files.",
        )
    for index, input_path in enumerate(spec.input_paths):
        if not input_path.strip():
            raise invalid_field(f"{path}.input_paths[{index}]", "An input path cannot be empty.")
    if not spec.output_path:
        raise invalid_field(f"{path}.output_path", "An output path is required.")
    if not spec.region:
        raise invalid_field(f"{path}.region", "A region is required (for example us-central1).")
    if spec.max_worker_count is not None and spec.max_worker_count < 1:
        raise invalid_field(f"{path}.max_worker_count", "Must be at least 1.")
    if spec.batch_size is not None and not 1 <= spec.batch_size <= MAX_PREDICTION_BATCH_SIZE:
        raise invalid_field(
            f"{path}.batch_size",
            f"Must be between 1 and {MAX_PREDICTION_BATCH_SIZE} instances per model call.",
        )
    if spec.runtime_version is not None and not _RUNTIME_VERSION.fullmatch(spec.runtime_version):
        raise invalid_field(
            f"{path}.runtime_version",
            f"{shown(spec.runtime_version)} is not a runtime version like 2.11.",
        )
    check_runtime(spec.runtime_version, None, field_prefix=path)  # domain/runtimes.py
    if spec.signature_name is not None and not 0 < len(spec.signature_name.strip()) <= 256:
        raise invalid_field(
            f"{path}.signature_name",
            "Name a signature of the SavedModel (1-256 characters), or leave it unset for "
            "serving_default.",
        )


# Google's label rules: at most 64 per resource, keys 1-63 characters starting with a
# letter, values 0-63 characters.
MAX_LABELS = 64
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


def check_labels(labels: dict[str, str] | None, path: str) -> None:
    if labels and len(labels) > MAX_LABELS:
        raise invalid_field(
            path, f"A resource has at most {MAX_LABELS} labels; {len(labels)} were given."
        )
    for key, value in (labels or {}).items():
        if not _LABEL_KEY.fullmatch(key):
            raise invalid_field(
                path,
                f"Label key {shown(key)} is invalid: use lowercase letters, digits, '_' and '-', "
                "starting with a letter, at most 63 characters.",
            )
        if not _LABEL_VALUE.fullmatch(value):
            raise invalid_field(
                path,
                f"Label value {shown(value)} is invalid: use lowercase letters, digits, '_' and "
                "'-', at most 63 characters.",
            )


def replica_count(spec: TrainingInput) -> int:
    """How many replicas one run of the job starts, master included."""
    tier = spec.scale_tier or "BASIC"
    if tier == "CUSTOM":
        counts = (spec.worker_count, spec.parameter_server_count, spec.evaluator_count)
        return 1 + sum(count or 0 for count in counts)
    return 1 + sum(TIER_REPLICAS.get(tier, (0, 0)))


def check_replica_limit(spec: TrainingInput, max_replicas: int) -> None:
    """Refuse a cluster larger than this server runs (`CAIRN_MAX_REPLICAS`, master included).

    Every replica is a process with a port of its own, and TF_CONFIG lists them all in each
    replica's environment: a huge count would stall the create request looking for ports and
    then fail at launch (E2BIG), so it is refused here, naming the field to change.
    """
    path = "job.training_input"
    field = f"{path}.scale_tier"
    if (spec.scale_tier or "BASIC") == "CUSTOM":
        counts = {
            "worker_count": spec.worker_count or 0,
            "parameter_server_count": spec.parameter_server_count or 0,
            "evaluator_count": spec.evaluator_count or 0,
        }
        # Name the count that contributes most: the one to lower.
        field = f"{path}.{max(counts, key=lambda name: counts[name])}"
    total = replica_count(spec)
    if total > max_replicas:
        raise invalid_field(
            field,
            f"This server runs at most {max_replicas} replicas per job, master included "
            f"(CAIRN_MAX_REPLICAS); this job asks for {total}.",
        )
    parallel = parallel_trials(spec)
    if total * parallel > max_replicas:
        raise invalid_field(
            f"{path}.hyperparameters.max_parallel_trials",
            f"This server runs at most {max_replicas} replicas per job (CAIRN_MAX_REPLICAS); "
            f"{parallel} parallel trials of {total} replicas each would be "
            f"{total * parallel}. Lower maxParallelTrials.",
        )


def parallel_trials(spec: TrainingInput) -> int:
    """How many trials of a tuning job run at once (1 for a plain job); AI Platform's
    defaults are maxTrials 1 and maxParallelTrials 1."""
    tuning = spec.hyperparameters
    if tuning is None:
        return 1
    return max(1, min(tuning.max_parallel_trials or 1, tuning.max_trials or 1))


def unsupported_training_features(spec: TrainingInput) -> ApiError | None:
    """Features of a valid job that Cairn cannot run yet: an honest UNIMPLEMENTED."""
    # Custom containers (imageUri) run when an engine is installed: training/containers.py.
    if spec.scale_tier == "BASIC_TPU":
        # A job that could never start here: refused, as one asking for absent GPUs is.
        return ApiError(
            Code.FAILED_PRECONDITION,
            "scaleTier BASIC_TPU needs a Cloud TPU, and Cairn has none to offer; use BASIC, "
            "STANDARD_1, PREMIUM_1, BASIC_GPU or CUSTOM.",
        )
    return None
