"""`MetadataStore`: the one object the rest of Cairn holds to reach its metadata."""

from __future__ import annotations

from types import TracebackType

from cairn.store.credentials import CredentialStore
from cairn.store.database import Database
from cairn.store.documents import DocumentRepository
from cairn.store.migrate import upgrade_to_head
from cairn.store.prediction_logs import PredictionLogStore
from cairn.store.runtime import RuntimeStore
from cairn.store.schema import (
    AUDIT,
    JOBS,
    LOCATION_OPERATIONS,
    MODELS,
    OPERATIONS,
    POLICIES,
    PRINCIPALS,
    STUDIES,
    STUDY_TRIALS,
    VERSIONS,
)


class MetadataStore:
    """Jobs, models, versions, operations, access control and runtime notes in one database.

    `url` is a SQLAlchemy URL: `sqlite:///path/cairn.db` (WAL mode) or
    `postgresql+psycopg://user@host/db`. Opening migrates the schema to the newest version.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._database = Database(url)
        try:
            upgrade_to_head(self._database)
        except BaseException:
            self._database.dispose()
            raise
        self.jobs = DocumentRepository(self._database, JOBS)  # key (project, job_id)
        self.models = DocumentRepository(self._database, MODELS)  # key (project, model)
        # key (project, model, version)
        self.versions = DocumentRepository(self._database, VERSIONS)
        # key (project, operation_id)
        self.operations = DocumentRepository(self._database, OPERATIONS)
        self.runtime = RuntimeStore(self._database)
        # key (kind, email); kind is "user", "serviceAccount" or "group"
        self.principals = DocumentRepository(self._database, PRINCIPALS)
        self.policies = DocumentRepository(self._database, POLICIES)  # key (resource,)
        self.audit = DocumentRepository(self._database, AUDIT)  # key (project, entry_id)
        self.credentials = CredentialStore(self._database)
        self.studies = DocumentRepository(self._database, STUDIES)  # key (project, location, study)
        # key (project, location, study, trial)
        self.study_trials = DocumentRepository(self._database, STUDY_TRIALS)
        # key (project, location, operation_id)
        self.location_operations = DocumentRepository(self._database, LOCATION_OPERATIONS)
        # Online prediction's sampled requests/responses and access-log rows.
        self.prediction_logs = PredictionLogStore(self._database)

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return "postgresql" if self._database.is_postgresql else "sqlite"

    def close(self) -> None:
        """Release every pooled connection; the store must not be used afterwards."""
        self._database.dispose()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
