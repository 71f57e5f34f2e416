"""Model and Version, with AI Platform's lifecycle rules."""

from __future__ import annotations

import re
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


class CairnServing(Message):
    """Cairn-specific, output only: what the version's nodes are doing now (`versions describe`).

    Not a field of Google's Version: clients built from Google's discovery document keep it as
    an unknown field; Cairn drops it when a client sends it back.
    """

    nodes: Int32 | None = None  # node processes running or starting
    ready_nodes: Int32 | None = None  # of which answer predictions now
    in_flight_requests: Int32 | None = None
    cold_starts: Int32 | None = None  # nodes started for a request while none was running
    last_cold_start_seconds: float | None = None  # the last one: spawn to warmed up


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
    cairn_serving: CairnServing | None = None


OUTPUT_ONLY_VERSION_FIELDS = (
    "state",
    "error_message",
    "is_default",
    "create_time",
    "last_use_time",
    "last_migration_model_id",
    "last_migration_time",
    "cairn_serving",
)

# Like AI Platform's limit on a training job's packages.
MAX_PACKAGE_URIS = 100
# "module.Class" (pydoc.locate's form): dotted Python identifiers, at least one dot.
_PREDICTION_CLASS = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


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
    check_custom_code(version)
    if not version.deployment_uri:
        raise invalid_field(
            "version.deployment_uri",
            "A deployment URI (the directory holding the model file) is required.",
        )
    if version.auto_scaling is not None and version.manual_scaling is not None:
        raise invalid_field("version.auto_scaling", "Set autoScaling or manualScaling, not both.")
    validate_scaling(version)


def check_custom_code(version: Version) -> None:
    """predictionClass and packageUris, as AI Platform accepts them."""
    uris = version.package_uris or []
    if len(uris) > MAX_PACKAGE_URIS:
        raise invalid_field(
            "version.package_uris", f"At most {MAX_PACKAGE_URIS} package URIs are allowed."
        )
    for index, uri in enumerate(uris):
        if not uri:
            raise invalid_field(f"version.package_uris[{index}]", "A package URI is empty.")
    cls = version.prediction_class
    if cls is None:
        return
    if not _PREDICTION_CLASS.fullmatch(cls):
        raise invalid_field(
            "version.prediction_class",
            f"'{cls}' is not a class path; write module.ClassName, e.g. predictor.MyPredictor.",
        )
    if not uris:
        raise invalid_field(
            "version.package_uris",
            "A custom prediction routine needs the package holding its class in packageUris "
            "(an sdist or wheel in a gs:// bucket).",
        )
    if version.framework not in (None, "FRAMEWORK_UNSPECIFIED"):
        raise invalid_field(
            "version.framework",
            "Leave framework unset for a custom prediction routine: its class loads the model.",
        )


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
