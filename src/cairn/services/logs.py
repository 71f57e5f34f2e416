"""Every log Cairn keeps, read as Cloud Logging entries with one filter language.

`LogService.list_entries` answers Cloud Logging v2's `entries:list`. For each scope
(`projects/P`, or `organizations/cairn` for the instance) it finds the sources the filter
can match and the caller may read, and merges them in time order (`monitoring/logsearch.py`):

| Source | Entries | Readable with |
|---|---|---|
| a job's replica and service logs (`<home>/jobs/P/J/logs`, trials' too) | `ml_job` | ml.jobs.get on the job |
| a version's node console logs (models with onlinePredictionConsoleLogging) | `cloudml_model_version` | ml.versions.get on the model |
| a model's access log (onlinePredictionLogging) | `cloudml_model_version` | ml.versions.get on the model |
| a model's sampled requests and responses (requestLoggingConfig) | `cloudml_model_version` | ml.versions.update on the model (bodies may be personal data) |
| the audit log of a project, or of the instance | `audited_resource` | logging.logEntries.list on the scope |
| Cairn's own service log (instance scope) | `cairn_server` | resourcemanager.projects.setIamPolicy on the instance |

What the filter pins (`resource.type`, `resource.labels.job_id`, `…task_name`, `…model_id`,
`…version_id`, a `timestamp` range) decides which files are opened and what the store is
asked, so a filter on one job reads that job alone. A caller who may read no source of a
scope at all is refused (PERMISSION_DENIED, as before for the audit log); one who may read
some sees only those entries. The route parses the request (`api/logging.py`); entries are
rendered by `monitoring/logentries.py`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.errors import ApiError, Code
from cairn.iam.policy import INSTANCE
from cairn.monitoring.logentries import (
    AUDIT_TYPE,
    JOB_TYPE,
    SERVER_TYPE,
    VERSION_TYPE,
    access_entry,
    console_renderer,
    entry_time,
    job_line_renderer,
    request_entry,
    service_renderer,
    timestamp_of,
)
from cairn.monitoring.logfiles import StampedLog
from cairn.monitoring.logfilter import Hints, parse_filter
from cairn.monitoring.logsearch import (
    Item,
    Source,
    Window,
    query_digest,
    read_page,
    token_key,
)
from cairn.monitoring.service_log import service_log_files
from cairn.services.access import AccessService, Principal
from cairn.services.records import ListRequest, page_size_of
from cairn.services.request_logs import LogRead, RequestLogService
from cairn.store.prediction_logs import encode_log_cursor

_PROJECT_TYPES = (JOB_TYPE, VERSION_TYPE, AUDIT_TYPE)
_INSTANCE_TYPES = (AUDIT_TYPE, SERVER_TYPE)
LIST_PERMISSION = "logging.logEntries.list"
ADMIN_PERMISSION = "resourcemanager.projects.setIamPolicy"
_STORE_PAGE = 100
# Jobs and models whose own policies the request of a caller with no role on the project
# checks (each a permission probe, cached): kept small so that a stranger's requests stay
# cheap. The store has no reverse lookup of the policies naming a member yet.
_MAX_ROLE_SCAN = 50
_AUDIT_SLACK_US = 60_000_000  # audit entries come in insertion order, a moment apart at most


class ModelLister(Protocol):
    def list(self, project: str, request: ListRequest) -> dict[str, Any]: ...


class VersionLister(Protocol):
    def list(self, project: str, model: str, request: ListRequest) -> dict[str, Any]: ...


NodeLogPaths = Callable[[str], list[Path]]


# ----- sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSource:
    """One log file (a replica's, a job's service log, a node's console) as entries."""

    source_id: str
    log: StampedLog
    render: Callable[[str, int, int], dict[str, Any]]  # (text, time_us, end) -> entry
    newest_bound_us: int | None = None  # the file's modification time: no line is newer
    # Each entry carries its own time (the service log's records): the file's stamps cannot
    # seek, so the window is applied to the rendered entries.
    own_times: bool = False

    def read(self, window: Window, resume: Any) -> Iterator[Item]:
        # resume: [offset, size, fallback time] - the file as the listing first saw it. A
        # log nobody stamps (a node's console) gives every line the file's modification
        # time; without these, a line appended between pages would make the rest of the
        # file "newer than the listing" and it would vanish from later pages.
        if (
            isinstance(resume, list)
            and len(resume) == 3
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in resume)
        ):
            offset, limit, fallback = resume
        else:
            extent = self.log.extent()
            if extent is None:
                return
            offset, (limit, fallback) = None, extent
            if window.listing_us is not None:
                fallback = min(fallback, window.listing_us)  # written as the listing began
        for line in self.log.lines(
            newest_first=window.newest_first,
            resume=offset,
            since_us=None if self.own_times else window.since_us,
            until_us=None if self.own_times else window.until_us,
            limit=limit,
            fallback_us=fallback,
        ):
            entry = self.render(line.text, line.time_us, line.end)
            at = [line.end if window.newest_first else line.start, limit, fallback]
            if not self.own_times:
                yield Item(line.time_us, entry, at)
                continue
            moment = entry_time(entry)
            early = window.since_us is not None and moment < window.since_us
            late = window.until_us is not None and moment > window.until_us
            if (early and window.newest_first) or (late and not window.newest_first):
                return  # records are written in time order: the rest is out of range too
            yield Item(moment, entry, at, skipped=early or late)


@dataclass(frozen=True)
class PagedSource:
    """A source read in pages through a service call: `fetch(window, token)` returns
    (entries, next token); an entry resumes as (its page's token, its index there)."""

    source_id: str
    fetch: Callable[[Window, str | None], tuple[list[dict[str, Any]], str | None]]
    sorted_by_time: bool = True

    def read(self, window: Window, resume: Any) -> Iterator[Item]:
        token: str | None = None
        skip = 0
        if isinstance(resume, list) and len(resume) == 2 and isinstance(resume[1], int):
            token, skip = (resume[0] if isinstance(resume[0], str) else None), resume[1]
        while True:
            entries, following = self.fetch(window, token)
            slack = 0 if self.sorted_by_time else _AUDIT_SLACK_US
            for index, entry in enumerate(entries):
                if index < skip:
                    continue
                moment = entry_time(entry)
                since, until = window.since_us, window.until_us
                early = since is not None and moment < since
                late = until is not None and moment > until
                if early or late:
                    # Past the far end of the range (allowing for entries written a moment
                    # out of order): nothing further can be in it.
                    if window.newest_first and since is not None and moment < since - slack:
                        return
                    if not window.newest_first and until is not None and moment > until + slack:
                        return
                    yield Item(moment, entry, [token, index], skipped=True)
                    continue
                yield Item(moment, entry, [token, index])
            if following is None:
                return
            token, skip = following, 0


_Rows = tuple[list[tuple[int, int, dict[str, Any]]], str | None]


@dataclass(frozen=True)
class RowSource:
    """A table of the store read in (time, seq) order: `fetch(window, cursor)` returns
    (time, seq, entry) rows and the store's cursor of the next page. An entry resumes at
    the store's own cursor just before its row, so rows written late (the prediction log
    writer flushes in batches) neither shift nor repeat what later pages read."""

    source_id: str
    fetch: Callable[[Window, str | None], _Rows]

    def read(self, window: Window, resume: Any) -> Iterator[Item]:
        cursor = resume if isinstance(resume, str) else None
        step = 1 if window.newest_first else -1  # "past (time, seq + step)" includes the row
        while True:
            rows, following = self.fetch(window, cursor)
            for moment, seq, entry in rows:
                yield Item(moment, entry, encode_log_cursor(moment, max(seq + step, 0)))
            if following is None:
                return
            cursor = following


# ----- the service ----------------------------------------------------------------------


@dataclass(frozen=True)
class ListEntries:
    """Cloud Logging v2's ListLogEntriesRequest, checked (`api/logging.py` parses it)."""

    resource_names: tuple[str, ...]
    filter_text: str | None
    newest_first: bool
    page_size: int
    page_token: str | None


class LogService:
    def __init__(
        self,
        access: AccessService,
        request_logs: RequestLogService,
        models: ModelLister,
        versions: VersionLister,
        *,
        jobs_root: Path,
        home: Path,
        node_log_paths: NodeLogPaths | None = None,
    ) -> None:
        self._access = access
        self._request_logs = request_logs
        self._models = models
        self._versions = versions
        self._jobs_root = jobs_root
        self._home = home
        self._node_log_paths = node_log_paths
        self._token_key: bytes | None = None

    def list_entries(self, caller: Principal, request: ListEntries) -> dict[str, Any]:
        log_filter = parse_filter(request.filter_text)
        hints = log_filter.hints
        # Taken before the files are looked at: their modification times then bound every
        # line the listing shows (logsearch.read_page opens the newest files first).
        now_us = time.time_ns() // 1000
        sources: list[Source] = []
        for scope in request.resource_names:
            sources += self._sources(caller, scope, hints)
        window = Window(request.newest_first, hints.since_us, hints.until_us)
        digest = query_digest(request.resource_names, request.filter_text, request.newest_first)
        page = read_page(
            sources,
            log_filter.matches,
            window,
            page_size=request.page_size,
            token=request.page_token,
            digest=digest,
            key=self._key(),
            now_us=now_us,
        )
        answer: dict[str, Any] = {}
        if page.entries:
            answer["entries"] = page.entries
        if page.next_token:
            answer["nextPageToken"] = page.next_token
        return answer

    def _key(self) -> bytes:
        if self._token_key is None:
            self._token_key = token_key(self._home)
        return self._token_key

    # -- which sources ------------------------------------------------------------------

    def _may(self, caller: Principal, permission: str, resource: str) -> bool:
        if not self._access.enforcing:
            return True
        return permission in self._access.permissions_on(caller, resource)

    def _refuse(self, caller: Principal, scope: str) -> ApiError:
        return ApiError(
            Code.PERMISSION_DENIED,
            f"Permission '{LIST_PERMISSION}' denied on resource '{scope}' for "
            f"{caller.member}, and it may read none of the jobs' or models' logs there. "
            "Ask an owner for roles/logging.viewer, roles/ml.viewer or a role on the job.",
        )

    def _sources(self, caller: Principal, scope: str, hints: Hints) -> list[Source]:
        if scope == INSTANCE:
            return self._instance_sources(caller, hints)
        project = scope.split("/", 1)[1]
        allowed_any = any(
            self._may(caller, permission, scope)
            for permission in (LIST_PERMISSION, "ml.jobs.get", "ml.versions.get")
        )
        sources: list[Source] = []
        types = set(_PROJECT_TYPES) if hints.resource_types is None else hints.resource_types
        if not hints.allows("project_ids", project):
            types = set()
        if AUDIT_TYPE in types and self._may(caller, LIST_PERMISSION, scope):
            sources.append(self._audit_source(scope))
        if not allowed_any and not self._holds_a_resource_role(caller, project, hints):
            raise self._refuse(caller, scope)
        if JOB_TYPE in types:
            sources += self._job_sources(caller, project, hints)
        if VERSION_TYPE in types:
            sources += self._model_sources(caller, project, hints)
        return sources

    def _holds_a_resource_role(self, caller: Principal, project: str, hints: Hints) -> bool:
        """Whether a role on one of the project's jobs or models lets the caller read its logs
        (asked only of callers with no such role on the project).

        The jobs and models the filter names come first; then at most `_MAX_ROLE_SCAN` of
        each, so a stranger cannot make every request check every job's policy.
        """
        jobs = self._job_ids(project)
        named = [job for job in jobs if hints.job_ids is not None and hints.allows("job_ids", job)]
        for job_id in dict.fromkeys(named[:_MAX_ROLE_SCAN] + jobs[:_MAX_ROLE_SCAN]):
            if self._may(caller, "ml.jobs.get", f"projects/{project}/jobs/{job_id}"):
                return True
        model_ids = [
            str(model["name"]).rsplit("/", 1)[-1]
            for model in self._list_models(project, hints, limit=_MAX_ROLE_SCAN)
            if hints.model_ids is not None
        ]
        model_ids += [
            str(model["name"]).rsplit("/", 1)[-1]
            for model in self._list_models(project, Hints(), limit=_MAX_ROLE_SCAN)
        ]
        return any(
            self._may(caller, "ml.versions.get", f"projects/{project}/models/{model_id}")
            for model_id in dict.fromkeys(model_ids)
        )

    def _job_ids(self, project: str) -> list[str]:
        return [entry.name for entry in _entries(self._jobs_root / project) if _is_dir(entry)]

    def _instance_sources(self, caller: Principal, hints: Hints) -> list[Source]:
        may_list = self._may(caller, LIST_PERMISSION, INSTANCE)
        may_admin = self._may(caller, ADMIN_PERMISSION, INSTANCE)
        if not may_list and not may_admin:
            raise self._refuse(caller, INSTANCE)
        types = set(_INSTANCE_TYPES) if hints.resource_types is None else hints.resource_types
        sources: list[Source] = []
        if AUDIT_TYPE in types and may_list:
            sources.append(self._audit_source(INSTANCE))
        if SERVER_TYPE in types and may_admin:
            sources += self._service_log_sources(hints)
        return sources

    def _audit_source(self, scope: str) -> Source:
        access = self._access

        def fetch(window: Window, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
            page = access.read_audit(
                scope,
                ListRequest(None, _STORE_PAGE, token),
                newest_first=window.newest_first,
            )
            return list(page.get("entries") or []), page.get("nextPageToken")

        return PagedSource(f"audit:{scope}", fetch, sorted_by_time=False)

    def _job_sources(self, caller: Principal, project: str, hints: Hints) -> list[Source]:
        # A job named in any case (`=` ignores case) is found among the project's jobs.
        job_ids = [job for job in self._job_ids(project) if hints.allows("job_ids", job)]
        on_project = self._may(caller, "ml.jobs.get", f"projects/{project}")
        sources: list[Source] = []
        for job_id in job_ids:
            if on_project or self._may(caller, "ml.jobs.get", f"projects/{project}/jobs/{job_id}"):
                sources += self._job_files(
                    project, job_id, self._jobs_root / project / job_id, hints
                )
        return sources

    def _job_files(self, project: str, job_id: str, job_dir: Path, hints: Hints) -> list[Source]:
        found: list[tuple[Path, str | None]] = [(path, None) for path in _logs_in(job_dir)]
        for trial_dir in _entries(job_dir / "trials"):
            if _is_dir(trial_dir):
                found += [(path, trial_dir.name) for path in _logs_in(Path(trial_dir.path))]
        sources: list[Source] = []
        for path, trial in found:
            task_name = path.name.removesuffix(".log")
            if not hints.allows("task_names", task_name):
                continue
            log = StampedLog(path, path.with_name(task_name + ".times"))
            modified = log.modified_us()
            if modified is None or (hints.since_us is not None and modified < hints.since_us):
                continue  # nothing in it is recent enough
            relative = path.relative_to(job_dir).as_posix()
            source_id = f"job:{project}/{job_id}/{relative}"
            sources.append(
                FileSource(
                    source_id,
                    log,
                    job_line_renderer(project, job_id, task_name, trial, source_id),
                    modified,
                )
            )
        return sources

    def _model_sources(self, caller: Principal, project: str, hints: Hints) -> list[Source]:
        sources: list[Source] = []
        for model in self._list_models(project, hints):
            model_id = str(model["name"]).rsplit("/", 1)[-1]
            resource = f"projects/{project}/models/{model_id}"
            if not self._may(caller, "ml.versions.get", resource):
                continue
            version = self._one_version(project, model_id, hints)
            sources.append(self._access_log_source(project, model_id, version))
            if self._may(caller, "ml.versions.update", resource):
                sources.append(self._request_log_source(project, model_id, version))
            if model.get("onlinePredictionConsoleLogging") and self._node_log_paths:
                sources += self._console_sources(project, model_id, hints)
        return sources

    def _one_version(self, project: str, model_id: str, hints: Hints) -> str | None:
        """The version the store's logs may be asked for alone: the filter names one (in
        any case), and the model has it under that name; else None, the filter decides."""
        named = hints.version_ids
        if named is None or len(named) != 1:
            return None
        matching = [v for v in self._version_ids(project, model_id) if v.casefold() in named]
        return matching[0] if len(matching) == 1 else None

    def _version_ids(self, project: str, model_id: str) -> list[str]:
        versions: list[str] = []
        token: str | None = None
        while True:
            try:
                page = self._versions.list(project, model_id, ListRequest(None, 100, token))
            except ApiError:
                return versions
            versions += [str(v["name"]).rsplit("/", 1)[-1] for v in page.get("versions") or []]
            token = page.get("nextPageToken")
            if not token:
                return versions

    def _list_models(
        self, project: str, hints: Hints, limit: int | None = None
    ) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = []
        token: str | None = None
        while limit is None or len(models) < limit:
            try:
                page = self._models.list(project, ListRequest(None, 100, token))
            except ApiError:
                return models
            for model in page.get("models") or []:
                model_id = str(model.get("name", "")).rsplit("/", 1)[-1]
                if hints.allows("model_ids", model_id):
                    models.append(model)
            token = page.get("nextPageToken")
            if not token:
                return models
        return models[:limit]

    def _console_sources(self, project: str, model_id: str, hints: Hints) -> list[Source]:
        assert self._node_log_paths is not None
        sources: list[Source] = []
        for version in self._version_ids(project, model_id):
            if not hints.allows("version_ids", version):
                continue
            key = f"projects/{project}/models/{model_id}/versions/{version}"
            for path in self._node_log_paths(key):
                log = StampedLog(Path(path))
                modified = log.modified_us()
                if modified is None or (hints.since_us is not None and modified < hints.since_us):
                    continue
                node = Path(path).name.removesuffix(".log").rpartition("-node")[2]
                source_id = f"console:{key}/{node}"
                sources.append(
                    FileSource(
                        source_id,
                        log,
                        console_renderer(project, model_id, version, node, source_id),
                        modified,
                    )
                )
        return sources

    def _access_log_source(self, project: str, model_id: str, version: str | None) -> Source:
        read = self._request_logs.access_log_rows

        def fetch(window: Window, cursor: str | None) -> _Rows:
            rows, following = read(project, model_id, _log_read(window, version, cursor))
            return [(t, seq, access_entry(project, model_id, seq, row)) for t, seq, row in rows], (
                following
            )

        return RowSource(f"access:{project}/{model_id}/{version or ''}", fetch)

    def _request_log_source(self, project: str, model_id: str, version: str | None) -> Source:
        read = self._request_logs.request_log_rows

        def fetch(window: Window, cursor: str | None) -> _Rows:
            rows, following = read(project, model_id, _log_read(window, version, cursor))
            return [(t, seq, request_entry(project, model_id, row)) for t, seq, row in rows], (
                following
            )

        return RowSource(f"requests:{project}/{model_id}/{version or ''}", fetch)

    def _service_log_sources(self, hints: Hints) -> list[Source]:
        sources: list[Source] = []
        for path in service_log_files(self._home):
            log = StampedLog(path)
            modified = log.modified_us()
            if modified is None or (hints.since_us is not None and modified < hints.since_us):
                continue
            try:
                identity = path.stat().st_ino  # survives rotation's renames
            except OSError:
                continue
            source_id = f"service:{identity}"
            sources.append(
                FileSource(source_id, log, service_renderer(source_id), modified, own_times=True)
            )
        return sources


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    """A directory's entries by name; none if it is missing or no directory."""
    try:
        with os.scandir(directory) as listing:
            return sorted(listing, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    # Never through a symbolic link: a link in a job's directory must not open other logs.
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _logs_in(directory: Path) -> list[Path]:
    """The `*.log` files of `directory/logs` (a link to a directory is not followed)."""
    logs = directory / "logs"
    if logs.is_symlink():
        return []
    return [Path(e.path) for e in _entries(logs) if e.name.endswith(".log")]


# ----- rendering ------------------------------------------------------------------------


def _log_read(window: Window, version: str | None, token: str | None) -> LogRead:
    until = None if window.until_us is None else timestamp_of(window.until_us + 1)
    since = None if window.since_us is None else timestamp_of(window.since_us)
    return LogRead(
        version=version,
        since=since,
        until=until,  # the store's bound is exclusive
        order="desc" if window.newest_first else "asc",
        page_size=page_size_of(_STORE_PAGE),
        page_token=token,
    )
