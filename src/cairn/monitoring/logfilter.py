"""Cloud Logging's filter language, over entries in the LogEntry shape.

What `gcloud logging read FILTER` and `entries:list` take
(https://cloud.google.com/logging/docs/view/logging-query-language), for the fields Cairn's
entries have:

* comparisons `FIELD OP VALUE` with `=`, `!=`, `>`, `>=`, `<`, `<=`, `:` (has: a
  case-insensitive substring, or `FIELD:*` for "is present") and the regular expressions
  `=~` / `!~` (searched, not anchored; RE2 syntax, as Cloud Logging: no back-references
  or look-arounds, and time linear in the text whatever the pattern);
* `AND`, `OR`, `NOT` (upper case; `-` before a term is NOT too), parentheses, and an implicit
  AND between terms. As in Cloud Logging, NOT binds tightest, then OR, then AND: `a OR b c`
  is `(a OR b) AND c`;
* values quoted (`"…"` with backslash escapes) or bare, or a group of them
  (`FIELD=(a OR b)`); string comparisons ignore case (regular expressions aside), as in
  Cloud Logging; a bare term on its own (or a quoted one) searches every field of the
  entry, case-insensitively;
* field paths with dots (`resource.labels.job_id`, `jsonPayload.message`), a quoted segment
  for keys with dots or slashes (`labels."ml.googleapis.com/trial_id"`);
* `severity` compares by rank (DEFAULT < DEBUG < INFO < NOTICE < WARNING < ERROR < CRITICAL
  < ALERT < EMERGENCY, or their numbers), so `severity>=ERROR` works; `timestamp` compares
  as an instant (`timestamp>="2026-11-30T10:00:00Z"`); numbers compare as numbers.

`parse_filter` returns a `LogFilter`: `matches(entry)` and `hints`, what the readers may push
down (resource types, job, model and version ids, a time range) so that a filter on one job
opens only that job's files. A filter that does not parse is INVALID_ARGUMENT naming the
character where it went wrong and what was expected there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import re2  # type: ignore[import-untyped]

from cairn.domain.errors import invalid_field

SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}
MAX_FILTER_CHARS = 20_000  # Cloud Logging's own bound on a filter's length
_MAX_DEPTH = 32  # parentheses and NOTs nest at most this deep
_MAX_REGEX_CHARS = 1000
_REGEX_MEMORY = 8 * 2**20  # RE2's budget for one compiled pattern
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OPERATORS = (">=", "<=", "!=", "=~", "!~", "=", ">", "<", ":")
_WORD_END = set(' \t\r\n()"=<>!:~')
_VALUE_END = set(" \t\r\n()")


Entry = dict[str, Any]
Predicate = Callable[[Entry], bool]


@dataclass
class Hints:
    """What every matching entry must have, as far as the filter's top-level AND says.

    None means "no constraint"; a set is the values allowed. Readers use these to choose
    which files to open and which rows to query; the filter itself still decides.
    """

    resource_types: set[str] | None = None
    project_ids: set[str] | None = None
    job_ids: set[str] | None = None
    task_names: set[str] | None = None
    model_ids: set[str] | None = None
    version_ids: set[str] | None = None
    since_us: int | None = None  # entries at or after (microseconds since the epoch)
    until_us: int | None = None  # entries at or before

    def allows(self, name: str, value: str) -> bool:
        """Whether `value` may match; the sets hold case-folded values (`=` ignores case)."""
        allowed: set[str] | None = getattr(self, name)
        return allowed is None or value.casefold() in allowed


_HINTED_LABELS = {
    "resource.type": "resource_types",
    "resource.labels.project_id": "project_ids",
    "resource.labels.job_id": "job_ids",
    "resource.labels.task_name": "task_names",
    "resource.labels.model_id": "model_ids",
    "resource.labels.version_id": "version_ids",
}


@dataclass
class LogFilter:
    text: str
    matches: Predicate
    hints: Hints = field(default_factory=Hints)


# ----- the syntax tree ------------------------------------------------------------------


@dataclass(frozen=True)
class _Compare:
    path: tuple[str, ...]
    op: str
    value: str
    quoted: bool


@dataclass(frozen=True)
class _Search:
    text: str


@dataclass(frozen=True)
class _Not:
    inner: Any


@dataclass(frozen=True)
class _And:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class _Or:
    parts: tuple[Any, ...]


def parse_filter(text: str | None) -> LogFilter:
    """The filter `text` means; an empty or absent filter matches every entry."""
    if text is None or not text.strip():
        return LogFilter(text or "", lambda _entry: True)
    if len(text) > MAX_FILTER_CHARS:
        raise _error(f"The filter is {len(text)} characters long; at most {MAX_FILTER_CHARS}.")
    tree = _Parser(text).parse()
    return LogFilter(text, _compile(tree), _hints(tree))


def _error(description: str) -> Exception:
    return invalid_field("filter", description)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.depth = 0

    # -- characters ----------------------------------------------------------------------

    def skip_space(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.at] if self.at < len(self.text) else ""

    def fail(self, expected: str) -> Exception:
        self.skip_space()
        if self.at >= len(self.text):
            found = "the end of the filter"
        else:
            found = repr(self.text[self.at : self.at + 20])
        return _error(
            f"Unparseable filter at character {self.at + 1}: expected {expected}, found {found}."
        )

    def keyword(self, word: str) -> bool:
        """Whether the upper-case keyword `word` comes next (as a whole word); consumes it."""
        self.skip_space()
        end = self.at + len(word)
        if self.text.startswith(word, self.at) and (
            end == len(self.text) or self.text[end] in _WORD_END
        ):
            self.at = end
            return True
        return False

    # -- grammar: AND over OR over NOT -----------------------------------------------------

    def parse(self) -> Any:
        tree = self.conjunction()
        if self.peek() != "":
            raise self.fail("AND, OR, NOT, a term or the end of the filter")
        return tree

    def conjunction(self) -> Any:
        parts = [self.disjunction()]
        while True:
            if self.keyword("AND"):
                parts.append(self.disjunction())
            elif self.peek() not in ("", ")"):
                parts.append(self.disjunction())  # an implicit AND
            else:
                return parts[0] if len(parts) == 1 else _And(tuple(parts))

    def disjunction(self) -> Any:
        parts = [self.unary()]
        while self.keyword("OR"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else _Or(tuple(parts))

    def unary(self) -> Any:
        if self.keyword("NOT"):
            return _Not(self.nested(self.unary))
        following = self.text[self.at + 1 : self.at + 2] if self.peek() == "-" else ""
        if following and not following.isspace():
            self.at += 1
            return _Not(self.nested(self.unary))
        return self.primary()

    def nested(self, parse: Callable[[], Any]) -> Any:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _error(f"The filter nests more than {_MAX_DEPTH} levels deep.")
        try:
            return parse()
        finally:
            self.depth -= 1

    def primary(self) -> Any:
        char = self.peek()
        if char == "(":
            self.at += 1
            inner = self.nested(self.conjunction)
            if self.peek() != ")":
                raise self.fail("')'")
            self.at += 1
            return inner
        if char in ("", ")"):
            raise self.fail("a term (a comparison such as severity>=ERROR, or text to search)")
        for word in ("AND", "OR"):
            if self.keyword(word):
                self.at -= len(word)
                raise self.fail("a term before " + word)
        if char == '"':
            start = self.at
            text = self.string()
            if self.operator_ahead():
                self.at = start
                raise self.fail("a field name before the operator (field names are not quoted)")
            return _Search(text)
        start = self.at
        path = self.path()
        op = self.operator()
        if op is None:
            return _Search(self.text[start : self.at])
        if self.peek() == "(":
            return self.value_group(path, op, start)
        value, quoted = self.value(op)
        return self.comparison(path, op, value, quoted, start)

    def value_group(self, path: tuple[str, ...], op: str, start: int) -> Any:
        """`FIELD OP (v1 OR v2 ...)`, Cloud Logging's shorthand for `FIELD OP v1 OR FIELD OP
        v2 ...` (AND too; OR binds tighter, as between terms)."""
        self.at += 1
        conjuncts: list[Any] = []
        while True:
            options: list[_Compare] = []
            while True:
                at = self.at
                value, quoted = self.value(op)
                options.append(self.comparison(path, op, value, quoted, at))
                if not self.keyword("OR"):
                    break
            conjuncts.append(options[0] if len(options) == 1 else _Or(tuple(options)))
            if self.peek() == ")":
                self.at += 1
                return conjuncts[0] if len(conjuncts) == 1 else _And(tuple(conjuncts))
            if not self.keyword("AND"):
                raise self.fail("OR, AND or ')' in the group of values that starts here")

    def operator_ahead(self) -> bool:
        self.skip_space()
        return any(self.text.startswith(op, self.at) for op in _OPERATORS)

    def operator(self) -> str | None:
        self.skip_space()
        for op in _OPERATORS:
            if self.text.startswith(op, self.at):
                self.at += len(op)
                return op
        if self.text.startswith("!", self.at) or self.text.startswith("~", self.at):
            raise self.fail("one of " + ", ".join(_OPERATORS))
        return None

    def path(self) -> tuple[str, ...]:
        """A field path: bare segments joined by dots, any of them quoted."""
        segments: list[str] = []
        while True:
            if self.at < len(self.text) and self.text[self.at] == '"':
                segments.append(self.string())
            else:
                start = self.at
                while (
                    self.at < len(self.text)
                    and self.text[self.at] not in _WORD_END
                    and self.text[self.at] != "."
                ):
                    self.at += 1
                if self.at == start:
                    raise self.fail("a field name or text")
                segments.append(self.text[start : self.at])
            if self.at < len(self.text) and self.text[self.at] == ".":
                self.at += 1
                continue
            return tuple(segments)

    def value(self, op: str) -> tuple[str, bool]:
        char = self.peek()
        if char == '"':
            return self.string(), True
        start = self.at
        while self.at < len(self.text) and self.text[self.at] not in _VALUE_END:
            self.at += 1
        if self.at == start:
            raise self.fail(f"a value after '{op}'")
        return self.text[start : self.at], False

    def string(self) -> str:
        """A double-quoted string with backslash escapes; the cursor is on its quote."""
        start = self.at
        self.at += 1
        out: list[str] = []
        while self.at < len(self.text):
            char = self.text[self.at]
            if char == "\\" and self.at + 1 < len(self.text):
                escaped = self.text[self.at + 1]
                # Other escapes keep their backslash, so regular expressions read as written.
                known = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
                out.append(known.get(escaped, "\\" + escaped))
                self.at += 2
                continue
            if char == '"':
                self.at += 1
                return "".join(out)
            out.append(char)
            self.at += 1
        self.at = start
        raise self.fail("a closing '\"' for the string that starts here")

    def comparison(
        self, path: tuple[str, ...], op: str, value: str, quoted: bool, start: int
    ) -> _Compare:
        name = ".".join(path)
        end, self.at = self.at, start  # errors point at the comparison's start
        if name == "timestamp" and op not in (":", "=~", "!~") and _instant(value) is None:
            raise self.fail(
                f'an RFC 3339 time for timestamp (e.g. "2026-11-30T10:00:00Z"), not {value!r}'
            )
        if name == "severity" and op not in (":", "=~", "!~") and _rank(value) is None:
            raise self.fail(
                "a severity ("
                + ", ".join(SEVERITIES)
                + f", or a number) for severity, not {value!r}"
            )
        if op in ("=~", "!~"):
            _check_regex(value, self)
        self.at = end
        return _Compare(path, op, value, quoted)


def _check_regex(pattern: str, parser: _Parser) -> None:
    """Refuse what RE2 (Cloud Logging's engine, and ours) refuses."""
    if len(pattern) > _MAX_REGEX_CHARS:
        raise parser.fail(f"a regular expression of at most {_MAX_REGEX_CHARS} characters")
    try:
        _regex(pattern)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise parser.fail(f"a valid RE2 regular expression ({reason})") from None


def _regex(pattern: str) -> Any:
    """`pattern` compiled by RE2: time linear in the text searched, whatever the pattern,
    so no filter can hold a server thread (Python's `re` backtracks exponentially)."""
    options = re2.Options()
    options.log_errors = False  # a bad pattern is the caller's error, not the server's log
    options.max_mem = _REGEX_MEMORY
    return re2.compile(pattern, options)


# ----- evaluation -----------------------------------------------------------------------


def _rank(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    if text in SEVERITIES:
        return SEVERITIES[text]
    try:
        return int(text)
    except ValueError:
        return None


def _instant(value: Any) -> int | None:
    """An RFC 3339 time (or a date) as microseconds since the epoch (rounded down); None if
    it is none."""
    nanoseconds = _instant_ns(value)
    return None if nanoseconds is None else nanoseconds // 1000


_FRACTION = re.compile(r"[.,](\d+)")


def _instant_ns(value: Any) -> int | None:
    """An RFC 3339 time as nanoseconds since the epoch: exact to the nine digits RFC 3339
    times carry (Python's datetime keeps six), so `timestamp>"…00.0000001Z"` excludes an
    entry of `…00Z`."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    fraction = _FRACTION.search(text)
    nanos = 0
    if fraction is not None:
        nanos = int(fraction.group(1)[:9].ljust(9, "0"))
        text = text[: fraction.start()] + text[fraction.end() :]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Cloud Logging reads a time without zone as UTC
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000 + nanos


def instant_us(text: str) -> int | None:
    """Public for the readers: an RFC 3339 time as microseconds since the epoch."""
    return _instant(text)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _lookup(entry: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value at `path` (a list along the way offers each of its items)."""
    found = [entry]
    for segment in path:
        step: list[Any] = []
        for value in found:
            if isinstance(value, dict) and segment in value:
                item = value[segment]
                step.extend(item if isinstance(item, list) else [item])
            elif isinstance(value, list):
                step.extend(v[segment] for v in value if isinstance(v, dict) and segment in v)
        found = step
    return found


def _strings(value: Any) -> Iterator[str]:
    """Every leaf of a value as text (what a global search or a has-test looks through)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, bool):
        yield "true" if value else "false"
    elif value is not None:
        yield str(value)


def _all_text(entry: Any) -> str:
    """Every leaf of an entry as one case-folded text (leaves apart, so no match spans two)."""
    parts: list[str] = []
    stack = [entry]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, bool):
            parts.append("true" if value else "false")
        elif value is not None:
            parts.append(str(value))
    return "\x00".join(parts).casefold()


def _compile(node: Any) -> Predicate:
    if isinstance(node, _And):
        parts = [_compile(p) for p in node.parts]
        return lambda entry: all(p(entry) for p in parts)
    if isinstance(node, _Or):
        parts = [_compile(p) for p in node.parts]
        return lambda entry: any(p(entry) for p in parts)
    if isinstance(node, _Not):
        inner = _compile(node.inner)
        return lambda entry: not inner(entry)
    if isinstance(node, _Search):
        needle = node.text.casefold()
        return lambda entry: needle in _all_text(entry)
    assert isinstance(node, _Compare)
    return _compile_comparison(node)


def _compile_comparison(node: _Compare) -> Predicate:
    path, op, value = node.path, node.op, node.value
    name = ".".join(path)
    if op == "!=":
        equal = _compile_comparison(_Compare(path, "=", value, node.quoted))
        return lambda entry: not equal(entry)
    if op == "!~":
        search = _compile_comparison(_Compare(path, "=~", value, node.quoted))
        return lambda entry: not search(entry)
    if op == ":" and value == "*" and not node.quoted:
        return lambda entry: bool(_lookup(entry, path))
    if op == ":":
        needle = value.casefold()
        return lambda entry: any(
            needle in s.casefold() for v in _lookup(entry, path) for s in _strings(v)
        )
    if op == "=~":
        pattern = _regex(value)
        return lambda entry: any(
            pattern.search(s) is not None for v in _lookup(entry, path) for s in _strings(v)
        )
    if name == "severity":
        wanted = _rank(value)
        return _ordered(path, op, wanted, _rank)
    if name == "timestamp":
        return _ordered(path, op, _instant_ns(value), _instant_ns)
    number = _number(value)
    folded = value.casefold()  # Cloud Logging compares strings ignoring case, regexes aside
    if op == "=":

        def equal(entry: Entry) -> bool:
            for found in _lookup(entry, path):
                if isinstance(found, bool):
                    if value == ("true" if found else "false"):
                        return True
                elif isinstance(found, int | float):
                    if number is not None and float(found) == number:
                        return True
                elif isinstance(found, str) and found.casefold() == folded:
                    return True
            return False

        return equal

    def ordered(entry: Entry) -> bool:
        for found in _lookup(entry, path):
            if isinstance(found, dict | list | bool) or found is None:
                continue
            left = _number(found)
            if left is not None and number is not None:
                if _holds(op, left, number):
                    return True
            elif _holds(op, str(found).casefold(), folded):
                return True
        return False

    return ordered


def _ordered(
    path: tuple[str, ...], op: str, wanted: Any, convert: Callable[[Any], Any]
) -> Predicate:
    def compare(entry: Entry) -> bool:
        for found in _lookup(entry, path):
            converted = convert(found)
            if converted is not None and _holds(op, converted, wanted):
                return True
        return False

    return compare


def _holds(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    return bool(left <= right)  # "<="


# ----- what readers may push down -------------------------------------------------------


def _hints(tree: Any) -> Hints:
    hints = Hints()
    for part in _conjuncts(tree):
        options = part.parts if isinstance(part, _Or) else (part,)
        if not all(isinstance(o, _Compare) for o in options):
            continue
        paths = {".".join(o.path) for o in options}
        if len(paths) != 1:
            continue
        name = paths.pop()
        if name in _HINTED_LABELS and all(o.op == "=" for o in options):
            attribute = _HINTED_LABELS[name]
            values = {o.value.casefold() for o in options}
            current: set[str] | None = getattr(hints, attribute)
            setattr(hints, attribute, values if current is None else current & values)
        elif name == "timestamp" and len(options) == 1:
            nanoseconds = _instant_ns(options[0].value)
            if nanoseconds is None:
                continue
            op = options[0].op
            # Entries are stamped in microseconds: the bounds round inwards.
            earliest, latest = -(-nanoseconds // 1000), nanoseconds // 1000
            if op in (">", ">=", "="):
                since = hints.since_us
                hints.since_us = earliest if since is None else max(since, earliest)
            if op in ("<", "<=", "="):
                until = hints.until_us
                hints.until_us = latest if until is None else min(until, latest)
    return hints


def _conjuncts(tree: Any) -> Iterator[Any]:
    """The terms every match must satisfy: nested ANDs flattened, since `(a b) AND c` (as
    `cairn logging read` wraps a filter to add its time bound) requires a, b and c alike."""
    if isinstance(tree, _And):
        for part in tree.parts:
            yield from _conjuncts(part)
    else:
        yield tree
