"""The `filter` of list methods: a subset of Google's list-filter language (AIP-160).

Examples the reference gives: `jobId:census*`, `jobId:rnn* AND state:FAILED`. Also supported:
`labels.team=ml`, `state!=SUCCEEDED`, `createTime>"2024-01-01T00:00:00Z"`, `NOT`, `-`, `OR`,
parentheses, and implicit AND between terms. Fields use the resource's JSON names
(snake_case is accepted too). A filter is parsed once, then evaluated against each document.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cairn.domain.errors import invalid_field, shown

Predicate = Callable[[dict[str, Any]], bool]

# Bounds that keep parsing cheap and the parser's recursion far from Python's limit: a
# filter of 5000 '(' once ended in a RecursionError (a 500) instead of a 400.
MAX_FILTER_CHARS = 8192
MAX_FILTER_NESTING = 32

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) |
        (?P<op><=|>=|!=|=|<|>|:) |
        (?P<string>"(?:[^"\\]|\\.)*") |
        (?P<word>[^\s()<>=!:"]+)
    )""",
    re.VERBOSE,
)
_OPERATORS = {":", "=", "!=", "<", "<=", ">", ">="}


def parse_filter(text: str | None) -> Predicate:
    """Compile `text` into a predicate over resource documents; empty means match all."""
    if not text or not text.strip():
        return lambda _doc: True
    if len(text) > MAX_FILTER_CHARS:
        raise _error(text, f"a filter has at most {MAX_FILTER_CHARS} characters")
    tokens = _tokenize(text)
    parser = _Parser(tokens, text)
    predicate = parser.expression()
    if parser.position != len(tokens):
        raise _error(text, f"unexpected '{tokens[parser.position][1]}'")
    return predicate


def _error(text: str, why: str) -> Exception:
    return invalid_field("filter", f"Invalid filter {shown(text)}: {why}.")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    end = len(text.rstrip())
    while position < end:
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise _error(text, f"cannot read from position {position}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0
        self.depth = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise _error(self.text, "it ends too early")
        self.position += 1
        return token

    def _nested(self, parse: Callable[[], Predicate]) -> Predicate:
        """`parse()` one level deeper (a parenthesis or a negation), within the bound."""
        self.depth += 1
        if self.depth > MAX_FILTER_NESTING:
            raise _error(self.text, f"it nests deeper than {MAX_FILTER_NESTING} levels")
        try:
            return parse()
        finally:
            self.depth -= 1

    def expression(self) -> Predicate:
        terms = [self._conjunction()]
        while self._peek() == ("word", "OR"):
            self._next()
            terms.append(self._conjunction())
        if len(terms) == 1:
            return terms[0]
        return lambda doc: any(term(doc) for term in terms)

    def _conjunction(self) -> Predicate:
        terms = [self._unary()]
        while (token := self._peek()) is not None and token not in (
            ("rparen", ")"),
            ("word", "OR"),
        ):
            if token == ("word", "AND"):
                self._next()
            terms.append(self._unary())
        if len(terms) == 1:
            return terms[0]
        return lambda doc: all(term(doc) for term in terms)

    def _unary(self) -> Predicate:
        token = self._peek()
        if token == ("word", "NOT"):
            self._next()
            inner = self._nested(self._unary)
            return lambda doc: not inner(doc)
        if (
            token is not None
            and token[0] == "word"
            and token[1].startswith("-")
            and len(token[1]) > 1
        ):
            self.tokens[self.position] = ("word", token[1][1:])
            inner = self._nested(self._unary)
            return lambda doc: not inner(doc)
        return self._primary()

    def _primary(self) -> Predicate:
        kind, value = self._next()
        if kind == "lparen":
            inner = self._nested(self.expression)
            if self._next() != ("rparen", ")"):
                raise _error(self.text, "a '(' is not closed")
            return inner
        if kind != "word":
            raise _error(self.text, f"expected a field name, found '{value}'")
        field = value
        op_kind, op = self._next()
        if op_kind != "op" or op not in _OPERATORS:
            raise _error(self.text, f"expected an operator after '{field}'")
        value_kind, operand = self._next()
        if value_kind not in ("word", "string"):
            raise _error(self.text, f"expected a value after '{field}{op}'")
        return _comparison(field, op, operand)


def _camel(segment: str) -> str:
    head, *rest = segment.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _lookup(doc: dict[str, Any], field: str) -> Any:
    value: Any = doc
    for index, segment in enumerate(field.split(".")):
        if not isinstance(value, dict):
            return None
        # Map keys (labels.*) are taken verbatim; message fields also accept snake_case.
        if segment in value:
            value = value[segment]
        elif index == 0 or not isinstance(value, dict) or _camel(segment) in value:
            value = value.get(_camel(segment))
        else:
            return None
    return value


def _as_comparable(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text


def _matches(actual: Any, pattern: str) -> bool:
    if isinstance(actual, list):
        return any(_matches(item, pattern) for item in actual)
    if isinstance(actual, dict):
        return pattern == "*" or pattern in actual
    if actual is None:
        return False
    text = str(actual).lower() if isinstance(actual, bool) else str(actual)
    if "*" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(text, pattern)
    return text == pattern


def _comparison(field: str, op: str, operand: str) -> Predicate:
    if op in (":", "="):
        return lambda doc: _matches(_lookup(doc, field), operand)
    if op == "!=":
        return lambda doc: not _matches(_lookup(doc, field), operand)
    target = _as_comparable(operand)

    def compare(doc: dict[str, Any]) -> bool:
        actual = _lookup(doc, field)
        if actual is None:
            return False
        left = _as_comparable(actual)
        if type(left) is not type(target):
            return False
        try:
            if op == "<":
                return bool(left < target)
            if op == "<=":
                return bool(left <= target)
            if op == ">":
                return bool(left > target)
            return bool(left >= target)
        except TypeError:
            return False

    return compare
