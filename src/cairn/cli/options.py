"""Options shared by every server-facing command, and the command class that reports errors.

Each command takes `--api`, `--project`, `--region` and `--format` (gcloud's global flags,
with Cairn defaults from the environment) and receives them as one `Session`. Commands use
`cls=CairnCommand` so a user mistake prints `ERROR: (cairn.group.command) message` and exits
1 — never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from cairn.cli.output import FORMATS, Printer
from cairn.client import CairnClient
from cairn.config import api_url
from cairn.domain.errors import ApiError, Code, invalid_field

DEFAULT_PROJECT = "cairn-local"

F = TypeVar("F", bound=Callable[..., Any])


def default_project() -> str:
    return os.environ.get("CAIRN_PROJECT") or DEFAULT_PROJECT


@dataclass
class Session:
    """What a command needs to reach the server and print: built from the shared options."""

    api: str
    project: str
    region: str | None
    printer: Printer
    _client: CairnClient | None = field(default=None, repr=False)

    @property
    def client(self) -> CairnClient:
        if self._client is None:
            self._client = CairnClient(self.api, self.project)
        return self._client


def common_options(command: F) -> F:
    """Add --api/--project/--region/--format and hand the command a `session` argument."""

    @click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default=None,
        help="Output format (default: yaml for one resource, table for lists).",
    )
    @click.option(
        "--region",
        default=None,
        help="Region of the resources (accepted for gcloud compatibility; Cairn runs locally).",
    )
    @click.option(
        "--project",
        default=default_project,
        show_default="$CAIRN_PROJECT or cairn-local",
        help="Project that owns the resources.",
    )
    @click.option(
        "--api",
        default=api_url,
        show_default="$CAIRN_API or http://127.0.0.1:8080",
        help="URL of the Cairn server.",
    )
    @functools.wraps(command)
    def wrapper(
        *args: Any, api: str, project: str, region: str | None, output_format: str | None, **kw: Any
    ) -> Any:
        session = Session(api=api, project=project, region=region, printer=Printer(output_format))
        try:
            return command(*args, session=session, **kw)
        finally:
            if session._client is not None:
                session._client.close()

    return wrapper  # type: ignore[return-value]


class CairnCommand(click.Command):
    """A click command that prints `ApiError`s gcloud-style instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as error:
            _report(ctx, _describe(error))
        except OSError as error:
            _report(ctx, f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
        except UnicodeDecodeError as error:
            _report(ctx, f"The input is not UTF-8 text ({error.reason} at byte {error.start}).")
        return None


class TrainerArgsCommand(CairnCommand):
    """A command whose words after `--` go to the trainer as `user_args`, as in gcloud.

    Nothing before `--` may be a stray word: a mistyped flag or value fails here instead of
    reaching the trainer silently.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        user_args: list[str] = []
        if "--" in args:
            cut = args.index("--")
            args, user_args = args[:cut], args[cut + 1 :]
        rest = super().parse_args(ctx, args)
        ctx.params["user_args"] = tuple(user_args)
        return rest


def _report(ctx: click.Context, message: str) -> None:
    Printer().error(command_id(ctx), message)
    ctx.exit(1)


def command_id(ctx: click.Context) -> str:
    """`cairn.jobs.submit.training` for `cairn jobs submit training` (whatever prog name)."""
    names: list[str] = []
    current: click.Context | None = ctx
    while current is not None:
        names.append(current.info_name or "")
        current = current.parent
    names[-1] = "cairn"
    return ".".join(reversed(names))


def _describe(error: ApiError) -> str:
    """The message to print; flag problems read like argparse's (`argument --x: ...`)."""
    if len(error.field_violations) == 1:
        violation = error.field_violations[0]
        if violation.field.startswith("-") and error.message == (
            f"Field: {violation.field} Error: {violation.description}"
        ):
            return f"argument {violation.field}: {violation.description}"
    extra = [
        f"  {v.field}: {v.description}"
        for v in error.field_violations
        if v.description and v.description not in error.message
    ]
    return "\n".join([error.message, *extra])


# -- flag values ---------------------------------------------------------------------------


def parse_labels(text: str | None, flag: str = "--labels") -> dict[str, str]:
    """`k1=v1,k2=v2` -> dict; INVALID_ARGUMENT naming the flag when a pair lacks `=`."""
    labels: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise invalid_field(flag, f"'{pair}' is not KEY=VALUE; write e.g. {flag} team=ml.")
        labels[key.strip()] = value.strip()
    return labels


def parse_list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def load_config_file(path: str, flag: str = "--config") -> dict[str, Any]:
    """A YAML or JSON file holding one resource (an object)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise invalid_field(flag, f"cannot read {path}: {error.strerror}.") from error
    try:
        doc = yaml.safe_load(text) if not path.endswith(".json") else json.loads(text)
    except (yaml.YAMLError, ValueError) as error:
        raise invalid_field(flag, f"{path} is not valid YAML or JSON: {error}") from error
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise invalid_field(flag, f"{path} must hold a YAML/JSON object (a mapping).")
    return doc


def update_labels(
    current: dict[str, str] | None,
    update: str | None,
    remove: str | None,
    clear: bool,
) -> dict[str, str] | None:
    """Apply gcloud's --update-labels/--remove-labels/--clear-labels; None means no change."""
    if not (update or remove or clear):
        return None
    labels = {} if clear else dict(current or {})
    for key in parse_list(remove):
        labels.pop(key, None)
    labels.update(parse_labels(update, "--update-labels"))
    return labels


def label_update_options(command: F) -> F:
    """gcloud's three label-update flags."""
    command = click.option(
        "--clear-labels", is_flag=True, help="Remove all labels (applied before updates)."
    )(command)
    command = click.option("--remove-labels", help="Comma-separated label keys to remove.")(command)
    command = click.option(
        "--update-labels", help="Labels to add or change, as KEY=VALUE,KEY=VALUE."
    )(command)
    return command


def confirm(prompt: str, quiet: bool) -> None:
    """Ask before destroying something; refuse to guess when nobody can answer."""
    if quiet:
        return
    if not sys.stdin.isatty():
        raise ApiError(
            Code.FAILED_PRECONDITION,
            "This command needs confirmation and there is no terminal to ask on. "
            "Add --quiet (-q) to go ahead without a prompt.",
        )
    if not click.confirm(f"{prompt} Do you want to continue?", default=True):
        raise ApiError(Code.CANCELLED, "Aborted by user.")


quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)
