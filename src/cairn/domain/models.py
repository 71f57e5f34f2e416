"""Model and Version, with AI Platform's lifecycle rules."""

from __future__ import annotations

from typing import Literal

from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.domain.jobs import AcceleratorConfig, check_labels
from cairn.domain.names import check_id
from cairn.domain.wire import Int32, Message, Timestamp

Framework = Literal["FRAMEWORK_UNSPECIFIED", "TENSORFLOW", "SCIKIT_LEARN", "XGBOOST"]
VersionState = Literal["UNKNOWN", "READY", "CREATING", "FAILED", "DELETING", "UPDATING"]
# A version in one of these states is busy: it refuses patch, delete and setDefault.
BUSY_VERSION_STATES = frozenset({"CREATING", "UPDATING", "DELETING"})


class MetricSpec(Message):
    name: Literal["METRIC_NAME_UNSPECIFIED", "CPU_USAGE", "GPU_DUTY_CYCLE"] | None = None
    target: Int32 | None = None


class AutoScaling(Message):
    max_nodes: Int32 | None = None
    min_nodes: Int32 | None = None
    metrics: list[MetricSpec] | None = None


class ManualScaling(Message):
    nodes: Int32 | None = None


class RequestLoggingConfig(Message):
    bigquery_table_name: str | None = None
    sampling_percentage: float | None = None


class IntegratedGradientsAttribution(Message):
    num_integral_steps: Int32 | None = None


class SampledShapleyAttribution(Message):
    num_paths: Int32 | None = None


class XraiAttribution(Message):
    num_integral_steps: Int32 | None = None


class ExplanationConfig(Message):
    integrated_gradients_attribution: IntegratedGradientsAttribution | None = None
    sampled_shapley_attribution: SampledShapleyAttribution | None = None
    xrai_attribution: XraiAttribution | None = None


class EnvVar(Message):
    name: str | None = None
    value: str | None = None


class ContainerPort(Message):
    container_port: Int32 | None = None


class ContainerSpec(Message):
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[EnvVar] | None = None
    ports: list[ContainerPort] | None = None


class RouteMap(Message):
    health: str | None = None
    predict: str | None = None


class Version(Message):
    name: str | None = None
    description: str | None = None
    deployment_uri: str | None = None
    runtime_version: str | None = None
    python_version: str | None = None
    framework: Framework | None = None
    machine_type: str | None = None
    accelerator_config: AcceleratorConfig | None = None
    auto_scaling: AutoScaling | None = None
    manual_scaling: ManualScaling | None = None
    package_uris: list[str] | None = None
    prediction_class: str | None = None
    service_account: str | None = None
    container: ContainerSpec | None = None
    routes: RouteMap | None = None
    explanation_config: ExplanationConfig | None = None
    request_logging_config: RequestLoggingConfig | None = None
    labels: dict[str, str] | None = None
    etag: str | None = None
    # Output only.
    state: VersionState | None = None
    error_message: str | None = None
    is_default: bool | None = None
    create_time: Timestamp | None = None
    last_use_time: Timestamp | None = None
    last_migration_model_id: str | None = None
    last_migration_time: Timestamp | None = None


OUTPUT_ONLY_VERSION_FIELDS = (
    "state",
    "error_message",
    "is_default",
    "create_time",
    "last_use_time",
    "last_migration_model_id",
    "last_migration_time",
)


class Model(Message):
    name: str | None = None
    description: str | None = None
    default_version: Version | None = None
    regions: list[str] | None = None
    online_prediction_logging: bool | None = None
    online_prediction_console_logging: bool | None = None
    labels: dict[str, str] | None = None
    etag: str | None = None


# Longest description of a model or version: a few pages of text, like Google's limit.
MAX_DESCRIPTION_CHARS = 8192


def check_description(description: str | None, field_path: str) -> None:
    if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
        raise invalid_field(
            field_path,
            f"A description has at most {MAX_DESCRIPTION_CHARS} characters; this one has "
            f"{len(description)}.",
        )


def validate_new_model(model: Model) -> None:
    check_id(model.name, "model.name")
    if model.regions is not None and len(model.regions) > 1:
        raise invalid_field("model.regions", "A model must have exactly one region.")
    check_description(model.description, "model.description")
    check_labels(model.labels, "model.labels")


def validate_new_version(version: Version) -> None:
    check_id(version.name, "version.name")
    check_description(version.description, "version.description")
    check_labels(version.labels, "version.labels")
    if version.container is not None:
        raise ApiError(
            Code.UNIMPLEMENTED,
            "Custom prediction containers (version.container) are not built in Cairn yet.",
        )
    if version.prediction_class or version.package_uris:
        raise ApiError(
            Code.UNIMPLEMENTED,
            "Custom prediction routines (predictionClass, packageUris) are not built in Cairn yet.",
        )
    if not version.deployment_uri:
        raise invalid_field(
            "version.deployment_uri",
            "A deployment URI (the directory holding the model file) is required.",
        )
    if version.auto_scaling is not None and version.manual_scaling is not None:
        raise invalid_field("version.auto_scaling", "Set autoScaling or manualScaling, not both.")
    validate_scaling(version)


def validate_scaling(version: Version) -> None:
    auto, manual = version.auto_scaling, version.manual_scaling
    if auto is not None:
        low, high = auto.min_nodes or 0, auto.max_nodes
        if low < 0:
            raise invalid_field("version.auto_scaling.min_nodes", "Must not be negative.")
        if high is not None and high < max(low, 1):
            raise invalid_field(
                "version.auto_scaling.max_nodes", "maxNodes must be at least minNodes and 1."
            )
        for index, metric in enumerate(auto.metrics or []):
            if metric.target is not None and not 0 <= metric.target <= 100:
                raise invalid_field(
                    f"version.auto_scaling.metrics[{index}].target",
                    "A target is a percentage, 0 to 100.",
                )
    if manual is not None and (manual.nodes or 0) < 1:
        raise invalid_field("version.manual_scaling.nodes", "At least one node is required.")


def serving_nodes(version: Version) -> int:
    """Node processes to start: manual nodes, else autoscaling's floor (at least one)."""
    if version.manual_scaling is not None and version.manual_scaling.nodes:
        return version.manual_scaling.nodes
    if version.auto_scaling is not None and version.auto_scaling.min_nodes:
        return version.auto_scaling.min_nodes
    return 1
