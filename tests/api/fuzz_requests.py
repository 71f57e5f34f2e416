"""Requests for the fuzz test, drawn with hypothesis from Google's discovery document.

Every method of `ml.v1.json` (and Cairn's own log and upload routes) gets its path, query
parameters and body from the document's description of them, in these kinds:

- valid: the shape the schema describes, with values that pass Cairn's rules where the
  field's meaning is known (ids, labels, storage URIs), so requests reach deep into the
  services and change state;
- extreme: valid where the meaning is known, boundary and out-of-range numbers and odd
  text everywhere else, with more optional fields;
- mutated: a valid request with one thing broken: a wrong type, huge or odd text, NUL,
  deep nesting, a huge number, a field missing or unknown, a strange path segment;
- without a credential;
- random: any JSON, bytes that are not JSON, or a method the path does not take.

Path segments naming resources are drawn as `Known` slots and resolved when the request
is sent, against the resources the run has created so far (`Names`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from googleapiclient.discovery_cache import get_static_doc
from hypothesis import strategies as st

# The deepest a generated body nests objects; the schemas refer to themselves.
MAX_SCHEMA_DEPTH = 4
# Huge values stay well below the server's 32 MB body limit, so they test the fields.
HUGE_TEXT_CHARS = (10_000, 400_000)
# Long path segments and query values keep a URL (at most 3 of each) below 64 KiB: uvicorn
# refuses longer request lines itself, with a plain-text 400 the app never sees.
LONG_SEGMENT = 3_000
LONG_QUERY = 15_000
DEEP_NESTING = (100, 3_000)

ID = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True)
LABEL_KEY = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
LABEL_VALUE = st.from_regex(r"[a-z0-9_-]{0,8}", fullmatch=True)
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "nl\n",
        "..",
        "../../etc/passwd",
        "/etc/passwd",
        "~",
        "file:///etc",
        "gs://",
        "gs://b/../x",
        "gs://fuzz-bucket/a/../../x",
        "%2e%2e",
        "名前",
        "🙂" * 40,
        "\u202e\u0301",
        "'; DROP TABLE documents; --",
        "{}",
        "null",
        "-1",
        "9" * 400,
    ]
)
HUGE_TEXT = st.integers(*HUGE_TEXT_CHARS).map(lambda n: "x" * n)
HUGE_NUMBER = st.sampled_from(
    [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64 + 1, 10**30, 1e308, -1e308, 1e-320, 0.5]
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
ANY_JSON = st.recursive(
    SCALAR,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass(frozen=True)
class Known:
    """A path segment naming the `index`-th (modulo) resource of its kind the run knows."""

    kind: str
    index: int


@dataclass(frozen=True)
class Method:
    """One REST method of the discovery document."""

    id: str  # e.g. projects.models.versions.create
    http_method: str
    path: str  # e.g. v1/projects/{projectsId}/models/{modelsId}/versions
    query: dict[str, dict[str, Any]] = field(repr=False)
    request_schema: str | None = None

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def is_predict(self) -> bool:
        return self.id == "projects.predict"


@dataclass(frozen=True)
class FuzzRequest:
    """A request before its `Known` path segments are resolved."""

    method: Method
    http_method: str
    segments: dict[str, Known | str]
    query: list[tuple[str, str]]
    body: bytes | None
    content_type: str = "application/json"
    authenticated: bool = True
    kind: str = "valid"


@dataclass
class Names:
    """Resources the run knows, by kind; `path` fills a method's path with them."""

    project: str
    values: dict[str, list[str]] = field(default_factory=dict)
    # Versions as (model, version): a version slot also decides its model's segment.
    versions: list[tuple[str, str]] = field(default_factory=list)
    # Targets of predict and explain: `P/models/M` or `P/models/M/versions/V`.
    predict_targets: list[str] = field(default_factory=list)

    def add(self, kind: str, value: str) -> None:
        known = self.values.setdefault(kind, [])
        if value not in known:
            known.append(value)

    def add_version(self, model: str, version: str) -> None:
        if (model, version) not in self.versions:
            self.versions.append((model, version))

    def path(self, template: str, segments: dict[str, Known | str]) -> str:
        """`template` with every `{param}` replaced by its segment, URL-encoded."""
        values = {param: self._resolve(slot) for param, slot in segments.items()}
        version = segments.get("versionsId")
        model = segments.get("modelsId")
        if isinstance(version, Known) and isinstance(model, Known) and self.versions:
            model_id, version_id = self.versions[version.index % len(self.versions)]
            values["modelsId"], values["versionsId"] = model_id, version_id
        for param, value in values.items():
            safe = "/" if isinstance(segments[param], Known) else ""
            template = template.replace("{" + param + "}", quote(value, safe=safe))
        return template

    def _resolve(self, slot: Known | str) -> str:
        if isinstance(slot, str):
            return slot
        if slot.kind == "project":
            return self.project
        if slot.kind == "target":
            targets = self.predict_targets or [self.project]
            return targets[slot.index % len(targets)]
        if slot.kind == "version":
            known = [version for _, version in self.versions] or ["nothing_here"]
        else:
            known = self.values.get(slot.kind) or ["nothing_here"]
        return known[slot.index % len(known)]


def load_methods(discovery: dict[str, Any]) -> list[Method]:
    """Every method of the document, depth first."""
    found: list[Method] = []

    def walk(resources: dict[str, Any]) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                found.append(
                    Method(
                        id=method["id"].removeprefix("ml."),
                        http_method=method["httpMethod"],
                        path=method.get("flatPath") or method["path"],
                        query={
                            name: spec
                            for name, spec in method.get("parameters", {}).items()
                            if spec.get("location") == "query"
                        },
                        request_schema=(method.get("request") or {}).get("$ref"),
                    )
                )
            walk(resource.get("resources", {}))

    walk(discovery["resources"])
    return found


# Cairn's own routes beside ml v1's, which clients use as much: job logs and Cloud
# Storage's media upload.
LOGS = Method(
    "cairn.jobs.logs",
    "GET",
    "cairn/v1/projects/{projectsId}/jobs/{jobsId}/logs",
    {"cursor": {"type": "string"}},
)
UPLOAD = Method(
    "storage.objects.insert",
    "POST",
    "upload/storage/v1/b/{bucket}/o",
    {"name": {"type": "string"}, "uploadType": {"type": "string"}},
)
UPLOAD_BUCKET = "fuzz-uploads"


def read_discovery() -> dict[str, Any]:
    """ml v1's discovery document, as google-api-python-client ships it."""
    document: dict[str, Any] = json.loads(get_static_doc("ml", "v1") or "{}")
    return document


# ----- bodies from schemas ---------------------------------------------------------------

# Fields a valid body of these schemas always carries (the discovery document marks
# requirements only in prose).
ALWAYS = {
    "GoogleCloudMlV1__Job": ("jobId", "trainingInput"),
    "GoogleCloudMlV1__TrainingInput": ("packageUris", "pythonModule", "region"),
    "GoogleCloudMlV1__Model": ("name",),
    "GoogleCloudMlV1__Version": ("name", "deploymentUri"),
}
# A schema's other fields appear in a valid body this often, in percent (few, so that
# bodies stay mostly valid).
OPTIONAL_FIELD_PERCENT = 15


class Bodies:
    """Strategies for JSON values of the discovery document's schemas.

    `extreme` bodies keep the fields whose meaning is known valid (so they pass the first
    checks), include more optional fields, and fill the others with boundary and
    out-of-range numbers and odd text: what reaches storage and rendering unchecked.
    """

    def __init__(
        self, schemas: dict[str, Any], storage_uris: list[str], *, extreme: bool = False
    ) -> None:
        self.schemas = schemas
        self.storage_uris = storage_uris
        self.extreme = extreme
        self.optional_percent = 40 if extreme else OPTIONAL_FIELD_PERCENT
        # One strategy per schema and depth: built eagerly, nested schemas would multiply.
        self._objects: dict[tuple[str, int], st.SearchStrategy[Any]] = {}
        uris = st.sampled_from(storage_uris)
        # Fields whose meaning is known get values Cairn accepts, so that bodies get past
        # validation; every other field comes from the schema alone.
        self.hints: dict[str, st.SearchStrategy[Any]] = {
            "name": ID,
            "jobId": ID,
            "labels": st.dictionaries(LABEL_KEY, LABEL_VALUE, max_size=3),
            "description": st.text(max_size=40),
            "deploymentUri": uris,
            "jobDir": uris,
            "packageUris": st.lists(uris, min_size=1, max_size=2),
            "pythonModule": st.sampled_from(["trainer.task", "task"]),
            "region": st.just("us-central1"),
            "runtimeVersion": st.sampled_from(["2.11", "1.15"]),
            "pythonVersion": st.just("3.7"),
            "machineType": st.just("mls1-c1-m2"),
            "scaleTier": st.sampled_from(["BASIC", "BASIC_GPU", "STANDARD_1"]),
            "args": st.lists(
                st.one_of(st.sampled_from(["--epochs", "3", "--flag=on"]), uris), max_size=3
            ),
            "nodes": st.integers(1, 2),
            "minNodes": st.integers(0, 2),
            "maxNodes": st.integers(1, 3),
            "etag": st.just(""),
        }

    def value(
        self, schema: dict[str, Any], depth: int = 0, name: str = ""
    ) -> st.SearchStrategy[Any]:
        """A value the schema describes."""
        if name in self.hints:
            return self.hints[name]
        if "$ref" in schema:
            return self._object(schema["$ref"], depth)
        scalar = self._scalar(schema)
        if scalar is not None:
            return st.one_of(scalar, ODD_TEXT, HUGE_NUMBER) if self.extreme else scalar
        kind = schema.get("type")
        if kind == "array":
            return st.lists(self.value(schema.get("items", {}), depth + 1), max_size=3)
        if kind == "object" and "additionalProperties" in schema:
            values = self.value(schema["additionalProperties"], depth + 1)
            return st.dictionaries(st.text(max_size=10), values, max_size=3)
        if kind == "object" and "properties" in schema:
            return self._properties(schema, depth, ())
        return ANY_JSON

    def _object(self, schema_id: str, depth: int) -> st.SearchStrategy[Any]:
        if depth >= MAX_SCHEMA_DEPTH:
            return st.just({})
        key = (schema_id, depth)
        if key not in self._objects:
            always = ALWAYS.get(schema_id, ())
            self._objects[key] = self._properties(self.schemas[schema_id], depth, always)
        return self._objects[key]

    def _properties(
        self, schema: dict[str, Any], depth: int, always: tuple[str, ...]
    ) -> st.SearchStrategy[dict[str, Any]]:
        fields = [
            (key, key in always, self.value(spec, depth + 1, key))
            for key, spec in schema.get("properties", {}).items()
        ]
        # Hypothesis starts from 0, so the simplest body leaves optional fields out.
        sometimes = st.integers(0, 99).map(lambda n: n >= 100 - self.optional_percent)

        @st.composite
        def message(draw: st.DrawFn) -> dict[str, Any]:
            # Values are drawn only for the fields present: drawing all would be slow.
            return {
                key: draw(value) for key, required, value in fields if required or draw(sometimes)
            }

        return message()

    @staticmethod
    def _scalar(schema: dict[str, Any]) -> st.SearchStrategy[Any] | None:
        kind = schema.get("type")
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if kind == "string":
            return _string(schema.get("format"))
        if kind == "integer":
            return st.integers(-(2**31), 2**31 - 1)
        if kind == "number":
            return st.floats(allow_nan=False, allow_infinity=False, width=32)
        if kind == "boolean":
            return st.booleans()
        return None


def _string(format_name: str | None) -> st.SearchStrategy[str]:
    if format_name == "int64":
        return st.integers(-(2**63), 2**63 - 1).map(str)
    if format_name == "google-datetime":
        return st.datetimes().map(lambda moment: moment.isoformat() + "Z")
    if format_name == "google-duration":
        return st.integers(1, 10**6).map(lambda seconds: f"{seconds}s")
    if format_name == "byte":
        return st.binary(max_size=30).map(lambda data: base64.b64encode(data).decode())
    return st.text(max_size=30)


# ----- mutations -------------------------------------------------------------------------


_REMOVE = object()


def mutated(value: Any) -> st.SearchStrategy[Any]:
    """`value` with one node replaced by something broken, or one field removed or added."""
    paths = _paths(value)
    replacement = st.one_of(
        ODD_TEXT,
        HUGE_TEXT,
        HUGE_NUMBER,
        st.integers(*DEEP_NESTING).map(Nested),
        ANY_JSON,
        st.text(min_size=1, max_size=50),
    )

    options = [
        st.tuples(st.sampled_from(paths), replacement).map(lambda pair: _replaced(value, *pair))
    ]
    removable = [path for path in paths if path and isinstance(path[-1], str)]
    if removable:
        options.append(st.sampled_from(removable).map(lambda path: _replaced(value, path, _REMOVE)))
    objects = [path for path in paths if isinstance(_at(value, path), dict)]
    if objects:
        options.append(
            st.tuples(st.sampled_from(objects), st.text(min_size=1, max_size=12), ANY_JSON).map(
                lambda drawn: _replaced(
                    value, drawn[0], {**_at(value, drawn[0]), drawn[1]: drawn[2]}
                )
            )
        )
    return st.one_of(options)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of `value` with the node at `path` replaced by `new` (or removed: `_REMOVE`)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    inner = _replaced(value[head], rest, new)
    if inner is _REMOVE:
        del copy[head]
    else:
        copy[head] = inner
    return copy


@dataclass(frozen=True)
class Nested:
    """Arrays `depth` deep, deeper than `json.dumps` recurses: `encode` writes them as text."""

    depth: int

    @property
    def marker(self) -> str:
        return f"@@nested-{self.depth}@@"

    @property
    def text(self) -> str:
        return "[" * self.depth + '"bottom"' + "]" * self.depth


def encode(value: Any, style: str) -> bytes:
    """JSON bytes, with non-ASCII text escaped (`ascii`) or as UTF-8; lone surrogates that
    text may hold go out raw, which is not UTF-8 at all."""
    nested: list[Nested] = []

    def markers(item: Any) -> Any:
        if isinstance(item, Nested):
            nested.append(item)
            return item.marker
        if isinstance(item, dict):
            return {key: markers(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [markers(inner) for inner in item]
        return item

    text = json.dumps(markers(value), ensure_ascii=style == "ascii")
    for deep in nested:
        text = text.replace(json.dumps(deep.marker), deep.text)
    return text.encode("utf-8", "surrogatepass")


NOT_JSON = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [b"", b"{", b"[1, 2]", b"null", b'"text"', b'{"a": NaN}', b"\xff\xfe", b'"\\ud800"']
    ),
)
UNKNOWN_METHODS = st.sampled_from(["PUT", "GET", "POST", "PATCH", "DELETE", "OPTIONS"])


# ----- whole requests --------------------------------------------------------------------


class RequestFactory:
    """Hypothesis strategies for `FuzzRequest`s of every method."""

    def __init__(self, discovery: dict[str, Any], storage_uris: list[str]) -> None:
        self.methods = [*load_methods(discovery), LOGS, UPLOAD]
        self.bodies = Bodies(discovery["schemas"], storage_uris)
        self.extreme_bodies = Bodies(discovery["schemas"], storage_uris, extreme=True)

    def requests(self) -> st.SearchStrategy[FuzzRequest]:
        # Built once per method (per draw, building took a third of the run).
        return weighted([(1, self._for_method(method)) for method in self.methods])

    def _for_method(self, method: Method) -> st.SearchStrategy[FuzzRequest]:
        if method is UPLOAD:
            return self._uploads()
        valid_body = self._valid_body(method)
        plain_body = valid_body.map(lambda body: _json_or_none(body, "utf8"))

        def request(kind: str, **fields: Any) -> Callable[..., FuzzRequest]:
            def build(
                segments: dict[str, Any], query: list[Any], body: bytes | None
            ) -> FuzzRequest:
                return FuzzRequest(
                    method, method.http_method, segments, query, body, kind=kind, **fields
                )

            return build

        valid = st.builds(
            request("valid"),
            self._segments(method),
            self._query(method),
            st.tuples(valid_body, st.sampled_from(["utf8", "ascii"])).map(
                lambda drawn: _json_or_none(*drawn)
            ),
        )
        extreme = st.builds(
            request("extreme body"),
            self._segments(method),
            self._query(method),
            self._valid_body(method, self.extreme_bodies).map(
                lambda body: _json_or_none(body, "utf8")
            ),
        )
        broken_body = st.builds(
            request("mutated body"),
            self._segments(method),
            self._query(method),
            valid_body.flatmap(
                lambda body: (
                    mutated(body).map(lambda new: encode(new, "utf8"))
                    | st.just(encode(body, "utf8").replace(b'"', b"'", 1))
                )
            ),
        )
        odd_path = st.builds(
            request("mutated path"),
            self._segments(method, odd=True),
            self._query(method, odd=True),
            plain_body,
        )
        no_credential = st.builds(
            request("no credential", authenticated=False),
            self._segments(method),
            st.just([]),
            plain_body,
        )
        random = st.builds(
            lambda http_method, segments, body, content_type: FuzzRequest(
                method, http_method, segments, [], body, content_type, kind="random"
            ),
            UNKNOWN_METHODS,
            self._segments(method),
            st.one_of(NOT_JSON, ANY_JSON.map(lambda value: encode(value, "utf8")), st.none()),
            st.sampled_from(
                ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
            ),
        )
        return weighted(
            [
                (35, valid),
                (15, extreme),
                (20, broken_body),
                (15, odd_path),
                (3, no_credential),
                (12, random),
            ]
        )

    def _uploads(self) -> st.SearchStrategy[FuzzRequest]:
        """Objects whose names nest into, collide with or overflow what is there."""
        part = st.one_of(st.sampled_from(["a", "b", "dir", "x.txt"]), ID, ODD_TEXT)
        name = st.one_of(
            st.lists(part, min_size=1, max_size=4).map("/".join),
            st.integers(200, 400).map(lambda n: "n" * n),
        )
        query = st.one_of(
            name.map(lambda text: [("uploadType", "media"), ("name", text)]),
            st.lists(st.tuples(st.sampled_from(["name", "uploadType"]), ODD_TEXT), max_size=2),
        )
        bucket = weighted([(8, st.just(UPLOAD_BUCKET)), (1, ODD_TEXT), (1, ID)])
        return st.builds(
            lambda bucket_name, parameters, body, content_type: FuzzRequest(
                UPLOAD,
                "POST",
                {"bucket": bucket_name},
                parameters,
                body,
                content_type,
                kind="upload",
            ),
            bucket,
            query,
            st.binary(max_size=256),
            st.sampled_from(["application/octet-stream", "application/json", ""]),
        )

    def _valid_body(self, method: Method, bodies: Bodies | None = None) -> st.SearchStrategy[Any]:
        if method.is_predict:
            return predict_bodies()
        if method.request_schema is None:
            return st.none()
        return (bodies or self.bodies).value({"$ref": method.request_schema})

    def _segments(self, method: Method, odd: bool = False) -> st.SearchStrategy[dict[str, Any]]:
        slots = {}
        for param in method.path_params:
            kind = _KIND_OF_PARAM.get(param, param)
            known: st.SearchStrategy[Any] = st.integers(0, 50).map(
                lambda index, kind=kind: Known(kind, index)
            )
            if method.is_predict or method.id == "projects.explain":
                known = st.integers(0, 50).map(lambda index: Known("target", index))
            elif kind not in _KNOWN_KINDS:
                known = ID
            slots[param] = (
                st.one_of(known, ODD_TEXT, ID, HUGE_TEXT.map(lambda text: text[:LONG_SEGMENT]))
                if odd
                else known
            )
        return st.fixed_dictionaries(slots)

    def _query(self, method: Method, odd: bool = False) -> st.SearchStrategy[list[tuple[str, str]]]:
        parameters = []
        for name, spec in method.query.items():
            value = _QUERY_HINTS[name] if name in _QUERY_HINTS else _query_value(spec)
            if odd:
                value = st.one_of(value, ODD_TEXT, HUGE_TEXT.map(lambda text: text[:LONG_QUERY]))
            parameters.append(st.tuples(st.just(name), value))
        if not parameters:
            return st.just([])
        return st.lists(st.one_of(parameters), max_size=3)


def weighted(choices: list[tuple[int, st.SearchStrategy[Any]]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn in proportion to its weight."""
    slots = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(slots) - 1).flatmap(lambda index: slots[index])


def predict_bodies() -> st.SearchStrategy[Any]:
    """Bodies of the predict contract (`{"instances": [...]}`), mostly well formed rows."""
    row = st.lists(st.floats(-10, 10, allow_nan=False), min_size=4, max_size=4)
    return st.one_of(
        st.fixed_dictionaries({"instances": st.lists(row, min_size=1, max_size=5)}),
        st.fixed_dictionaries({"instances": st.lists(ANY_JSON, max_size=3)}),
        st.fixed_dictionaries(
            {
                "instances": st.lists(row, min_size=1, max_size=2),
                "signature_name": st.text(max_size=8),
            }
        ),
    )


def _json_or_none(body: Any, style: str) -> bytes | None:
    return None if body is None else encode(body, style)


def _query_value(spec: dict[str, Any]) -> st.SearchStrategy[str]:
    if spec.get("type") == "integer":
        return st.integers(-5, 200).map(str)
    if spec.get("type") == "boolean":
        return st.sampled_from(["true", "false"])
    return st.text(max_size=20)


_KIND_OF_PARAM = {
    "projectsId": "project",
    "modelsId": "model",
    "versionsId": "version",
    "jobsId": "job",
    "operationsId": "operation",
}
_KNOWN_KINDS = frozenset(_KIND_OF_PARAM.values())
_FILTERS = [
    "",
    "state:FAILED",
    "jobId:job*",
    "labels.team=ml",
    "NOT state:READY",
    "(name:a* OR name:b*) AND -state:FAILED",
    'createTime>"2020-01-01T00:00:00Z"',
    "state=",
    "((",
    "a:b c:d OR e:f",
    "(" * 5000,
    "NOT " * 2000 + "a:b",
    "-" * 3000 + "a:b",
    "a:" + "*?" * 3000,
]


def _log_cursor(offsets: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(offsets).encode()).decode()


_QUERY_HINTS: dict[str, st.SearchStrategy[str]] = {
    "cursor": st.one_of(
        st.dictionaries(
            st.sampled_from(["logs/master-replica-0.log", "logs/service.log", "x"]),
            st.one_of(st.integers(-(2**70), 2**70), st.integers(-5, 5000)),
            max_size=2,
        ).map(_log_cursor),
        ANY_JSON.map(lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).decode()),
        st.text(max_size=30),
    ),
    "pageSize": st.integers(-3, 300).map(str),
    "filter": st.sampled_from(_FILTERS),
    "updateMask": st.lists(
        st.sampled_from(
            [
                "labels",
                "description",
                "etag",
                "defaultVersion.name",
                "manualScaling.nodes",
                "autoScaling.minNodes",
                "requestLoggingConfig",
                "state",
            ]
        ),
        min_size=1,
        max_size=3,
    ).map(",".join),
}
