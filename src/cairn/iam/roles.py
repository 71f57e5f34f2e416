"""AI Platform's predefined roles and the basic roles, as permission sets.

The ml roles are Google's lists (reference §6.1). Cairn adds the few permissions its own
surfaces need — local buckets, service accounts, users, the audit log — under Google's
names for them, and only to the roles that hold them on Google Cloud too.
"""

from __future__ import annotations

from collections.abc import Iterable


def _expand(prefix: str, verbs: str) -> set[str]:
    return {f"{prefix}.{verb}" for verb in verbs.split()}


_JOBS_ALL = _expand("ml.jobs", "cancel create get getIamPolicy list setIamPolicy update")
_MODELS_ALL = _expand(
    "ml.models", "create delete get getIamPolicy list predict setIamPolicy update"
)
_VERSIONS_ALL = _expand("ml.versions", "create delete get list predict update")
_OPERATIONS_ALL = _expand("ml.operations", "cancel get list")
_STUDIES_ALL = _expand("ml.studies", "create delete get getIamPolicy list setIamPolicy")
_TRIALS_ALL = _expand("ml.trials", "create delete get list update")
_LOCATIONS = _expand("ml.locations", "get list")
_PROJECT_READ = {"ml.projects.getConfig", "resourcemanager.projects.get"}

ML_ADMIN = (
    _JOBS_ALL
    | _MODELS_ALL
    | _VERSIONS_ALL
    | _OPERATIONS_ALL
    | _STUDIES_ALL
    | _TRIALS_ALL
    | _LOCATIONS
    | _PROJECT_READ
)
ML_DEVELOPER = (
    _expand("ml.jobs", "create get getIamPolicy list")
    | _expand("ml.models", "create get getIamPolicy list predict")
    | _expand("ml.operations", "get list")
    | _STUDIES_ALL
    | _TRIALS_ALL
    | _expand("ml.versions", "get list predict")
    | _LOCATIONS
    | _PROJECT_READ
)
ML_VIEWER = (
    _expand("ml.jobs", "get list")
    | _expand("ml.models", "get list")
    | _expand("ml.operations", "get list")
    | _expand("ml.studies", "get getIamPolicy list")
    | _expand("ml.trials", "get list")
    | _expand("ml.versions", "get list")
    | _LOCATIONS
    | _PROJECT_READ
)
ML_MODEL_OWNER = _MODELS_ALL | _VERSIONS_ALL
ML_MODEL_USER = _expand("ml.models", "get predict") | _expand("ml.versions", "get list predict")

# Writing into Cairn's local buckets through the API (trainer packages, model directories).
_STORAGE_WRITE = _expand("storage.objects", "create delete get list")
# Cloud Storage's JSON API on local buckets (google-cloud-storage, gcsfs, gsutil).
_STORAGE_BUCKETS = _expand("storage.buckets", "create get list")
# Reading the audit log (Cloud Logging's admin-activity log on Google Cloud).
_AUDIT_READ = {"logging.logEntries.list"}
_ACT_AS = {"iam.serviceAccounts.actAs"}
_SERVICE_ACCOUNT_ADMIN = _expand("iam.serviceAccounts", "create delete get list") | _expand(
    "iam.serviceAccountKeys", "create delete get list"
)
# Instance-wide: people and groups are Cairn's own directory (no external identity provider).
_DIRECTORY_ADMIN = _expand("cairn.users", "create delete list") | _expand(
    "cairn.groups", "create delete list update"
)
_PROJECT_IAM_READ = {"resourcemanager.projects.getIamPolicy"}

EDITOR = ML_ADMIN | _STORAGE_WRITE | _STORAGE_BUCKETS | _AUDIT_READ | _ACT_AS | _PROJECT_IAM_READ
VIEWER = ML_VIEWER | _expand("ml.models", "predict") | {"ml.versions.predict"} | _AUDIT_READ
VIEWER |= _PROJECT_IAM_READ
OWNER = (
    EDITOR | _SERVICE_ACCOUNT_ADMIN | _DIRECTORY_ADMIN | {"resourcemanager.projects.setIamPolicy"}
)

# What a job runs as when its trainingInput names no service account: it may read the
# project's jobs and models and predict, and nothing that changes the project. Like
# Google's agent it reads and writes the project's buckets (trainers copy models there).
ML_SERVICE_AGENT = (
    _STORAGE_WRITE
    | _expand("storage.buckets", "get list")
    | _expand("ml.jobs", "get list")
    | _expand("ml.models", "get list predict")
    | _expand("ml.versions", "get list predict")
    | _PROJECT_READ
)

ROLES: dict[str, frozenset[str]] = {
    "roles/owner": frozenset(OWNER),
    "roles/editor": frozenset(EDITOR),
    "roles/viewer": frozenset(VIEWER),
    "roles/ml.admin": frozenset(ML_ADMIN),
    "roles/ml.editor": frozenset(
        ML_ADMIN - {"ml.jobs.setIamPolicy", "ml.models.setIamPolicy", "ml.studies.setIamPolicy"}
    ),
    "roles/ml.developer": frozenset(ML_DEVELOPER),
    "roles/ml.viewer": frozenset(ML_VIEWER),
    "roles/ml.modelOwner": frozenset(ML_MODEL_OWNER),
    "roles/ml.modelUser": frozenset(ML_MODEL_USER),
    "roles/ml.jobOwner": frozenset(_JOBS_ALL),
    "roles/ml.operationOwner": frozenset(_OPERATIONS_ALL),
    "roles/ml.serviceAgent": frozenset(ML_SERVICE_AGENT),
    "roles/iam.serviceAccountUser": frozenset(_ACT_AS),
    "roles/iam.serviceAccountAdmin": frozenset(_SERVICE_ACCOUNT_ADMIN | _ACT_AS),
    "roles/storage.objectAdmin": frozenset(_STORAGE_WRITE),
    "roles/logging.viewer": frozenset(_AUDIT_READ),
}

ALL_PERMISSIONS: frozenset[str] = frozenset().union(*ROLES.values())


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    """Every permission the given roles grant together (unknown roles grant nothing)."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLES.get(role, frozenset())
    return frozenset(granted)
