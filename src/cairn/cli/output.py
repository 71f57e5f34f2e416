"""The one console object of the `cairn` commands that talk to a server.

gcloud's habits: `describe` prints YAML, `list` prints an aligned table, status lines
("Created model [m].") go to stderr so stdout stays pipeable, and `--format json|yaml|table`
switches any command's result. gcloud's projections that scripts use work too:
`--format 'value(state)'` (tab-separated values, no heading), `csv[no-heading](a,b.c)` and
`table(a,b)`. Every command prints through a `Printer`, so output looks
the same everywhere and tests can rely on it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import click
import yaml

FORMATS = ("json", "yaml", "table")
PROJECTION = re.compile(r"(value|csv|table)(?:\[([a-z-]*)\])?\((.+)\)", re.IGNORECASE)

Extractor = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Column:
    """One table column: its header and how to read its cell from a resource."""

    header: str
    read: Extractor


def field(path: str) -> Extractor:
    """Extractor for a dotted field path (`defaultVersion.name`); missing -> empty."""

    def read(doc: dict[str, Any]) -> Any:
        value: Any = doc
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    return read


def basename_of(path: str) -> Extractor:
    """Extractor for the last segment of a resource-name field (gcloud's `.basename()`)."""
    read_field = field(path)

    def read(doc: dict[str, Any]) -> Any:
        value = read_field(doc)
        return value.rsplit("/", 1)[-1] if isinstance(value, str) else value

    return read


class Printer:
    """Writes results to stdout in the chosen format and status lines to stderr."""

    def __init__(self, fmt: str | None = None) -> None:
        self.format = fmt
        match = PROJECTION.fullmatch(fmt.strip()) if fmt else None
        self._projection: tuple[str, list[str], bool] | None = None
        if match:
            kind, attributes, fields = match.groups()
            names = [name.strip() for name in fields.split(",") if name.strip()]
            self._projection = (kind.lower(), names, "no-heading" in (attributes or ""))

    # -- results -------------------------------------------------------------------------

    def resource(self, doc: dict[str, Any]) -> None:
        """One resource: YAML unless another format was asked for."""
        if self._projection:
            self._project([doc])
            return
        fmt = self.format or "yaml"
        if fmt == "json":
            self._out(_json(doc))
        elif fmt == "table":
            rows = [[key, _cell(value)] for key, value in doc.items()]
            self._out(render_table(["FIELD", "VALUE"], rows))
        else:
            self._out(_yaml(doc))

    def resources(self, docs: Iterable[dict[str, Any]], columns: Sequence[Column]) -> None:
        """A list: a table unless another format was asked for; nothing printed for none."""
        items = list(docs)
        if self._projection:
            self._project(items)
            return
        fmt = self.format or "table"
        if fmt == "json":
            self._out(_json(items))
        elif fmt == "yaml":
            if items:
                self._out("---\n".join(_yaml(item) for item in items))
        elif items:
            rows = [[_cell(column.read(item)) for column in columns] for item in items]
            self._out(render_table([c.header for c in columns], rows))
        if not items:
            self.status("Listed 0 items.")

    def value(self, doc: Any, columns: Sequence[Column] | None = None) -> None:
        """A computed result (predictions): JSON by default, a table when columns fit."""
        if self._projection:
            self._project(doc if isinstance(doc, list) else [doc])
            return
        fmt = self.format or ("table" if columns else "json")
        if fmt == "yaml":
            self._out(_yaml(doc))
        elif fmt == "table" and columns is not None and isinstance(doc, list):
            rows = [[_cell(column.read(item)) for column in columns] for item in doc]
            self._out(render_table([c.header for c in columns], rows))
        else:
            self._out(_json(doc))

    def _project(self, items: list[Any]) -> None:
        """gcloud's value(...), csv[no-heading](...) and table(...) over dotted field paths."""
        assert self._projection is not None
        kind, names, no_heading = self._projection
        readers = [field(name) for name in names]
        rows = [
            [_plain(read(item)) if isinstance(item, dict) else _plain(item) for read in readers]
            for item in items
        ]
        headers = [name.rsplit(".", 1)[-1] for name in names]
        if kind == "value":
            lines = ["\t".join(row) for row in rows]
        elif kind == "csv":
            lines = ([] if no_heading else [",".join(headers)]) + [",".join(r) for r in rows]
        else:
            lines = [render_table([h.upper() for h in headers], rows)] if rows else []
        if lines:
            self._out("\n".join(lines))

    def line(self, text: str) -> None:
        """A line of plain output on stdout (log lines)."""
        click.echo(text)

    # -- status --------------------------------------------------------------------------

    def status(self, text: str) -> None:
        """A human-facing note on stderr (never mixed into the result on stdout)."""
        click.echo(text, err=True)

    def error(self, command: str, message: str) -> None:
        click.echo(f"ERROR: ({command}) {message}", err=True)

    def spinner(self, text: str) -> AbstractContextManager[Any]:
        """A progress spinner on stderr while waiting, when stderr is a terminal."""
        if not sys.stderr.isatty():
            self.status(text)
            return nullcontext()
        from rich.console import Console

        return Console(stderr=True).status(text)

    def _out(self, text: str) -> None:
        click.echo(text.rstrip("\n"))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """gcloud's list layout: upper-case headers, columns padded by two spaces, no borders."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _plain(value: Any) -> str:
    """A value as gcloud's value() prints it: lists joined with ';', objects as JSON."""
    if isinstance(value, list):
        return ";".join(_plain(item) for item in value)
    return _cell(value)


def _json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)


def _yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True)
