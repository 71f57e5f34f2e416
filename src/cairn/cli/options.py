"""What every `cairn` command shares: gcloud's global flags, enum flags, one error path.

gcloud's global flags (`--api`, `--project`, `--region`, `--format`, `--quiet`,
`--verbosity`) belong to every group and command, so they work before or after the command
(`cairn --project p jobs list` and `cairn jobs list --project p`); the last one given
wins. Server-facing commands receive them as one `Session` (`common_options`).

Every group and command is a `CairnGroup`/`CairnCommand`, so every mistake, a bad flag as
much as a server's refusal, prints `ERROR: (cairn.group.command) message` on stderr and
exits non-zero (1, or 2 for a command line that does not parse) — never a traceback.
Enum flags take gcloud's values in any case and with `_` or `-` (`GcloudChoice`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import yaml

from cairn.cli.output import FORMATS, PROJECTION, Printer
from cairn.config import api_url
from cairn.domain.errors import ApiError, Code, invalid_field

if TYPE_CHECKING:
    from cairn.client import CairnClient

DEFAULT_PROJECT = "cairn-local"
VERBOSITIES = ("debug", "info", "warning", "error", "critical", "none")

F = TypeVar("F", bound=Callable[..., Any])


def default_project() -> str:
    return os.environ.get("CAIRN_PROJECT") or DEFAULT_PROJECT


# -- enum flags ------------------------------------------------------------------------------


def _key(text: str) -> str:
    return text.strip().lower().replace("_", "-")


class GcloudChoice(click.ParamType):
    """An enum flag that takes gcloud's values in any case and with `_` or `-`.

    `choices` maps each value as gcloud spells it (`scikit-learn`, `standard-1`) to what
    the command receives (the API's enum spelling, `SCIKIT_LEARN`, `STANDARD_1`); a plain
    list of values passes them through as spelled here. `aliases` adds other accepted
    spellings (`sklearn`). --help and errors show gcloud's spellings.
    """

    name = "choice"

    def __init__(
        self, choices: Mapping[str, str] | Iterable[str], aliases: Mapping[str, str] | None = None
    ) -> None:
        self.choices: dict[str, str] = (
            dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
        )
        self._lookup = {_key(shown): value for shown, value in self.choices.items()}
        self._lookup.update({_key(value): value for value in self.choices.values()})
        for alias, shown in (aliases or {}).items():
            self._lookup[_key(alias)] = self.choices[shown]

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[" + "|".join(self.choices) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        found = self._lookup.get(_key(value))
        if found is None:
            self.fail(
                f"{value!r} is not one of {', '.join(self.choices)} "
                "(any case; '_' and '-' are alike).",
                param,
                ctx,
            )
        return found

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in self.choices if c.startswith(_key(incomplete))]


class OutputFormat(click.ParamType):
    """--format: json, yaml or table (any case), or a gcloud projection scripts use:
    value(state), csv[no-heading](jobId,state), table(name,state)."""

    name = "format"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[json|yaml|table|value(F,...)|csv(F,...)|table(F,...)]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        if text.lower() in FORMATS:
            return text.lower()
        if PROJECTION.fullmatch(text):
            return text
        self.fail(
            f"{value!r} is not json, yaml, table or a projection such as 'value(state)', "
            "'csv[no-heading](jobId,state)' or 'table(name,state)'.",
            param,
            ctx,
        )


# gcloud's spelling of each enum value -> the API's.
FRAMEWORK = GcloudChoice(
    {"scikit-learn": "SCIKIT_LEARN", "tensorflow": "TENSORFLOW", "xgboost": "XGBOOST"},
    aliases={"sklearn": "scikit-learn"},
)
SCALE_TIER = GcloudChoice(
    {
        "basic": "BASIC",
        "basic-gpu": "BASIC_GPU",
        "basic-tpu": "BASIC_TPU",
        "custom": "CUSTOM",
        "premium-1": "PREMIUM_1",
        "standard-1": "STANDARD_1",
    }
)
ACCELERATOR_TYPE = GcloudChoice(
    {
        name: name.upper().replace("-", "_")
        for name in (
            "nvidia-tesla-a100",
            "nvidia-tesla-k80",
            "nvidia-tesla-p100",
            "nvidia-tesla-p4",
            "nvidia-tesla-t4",
            "nvidia-tesla-v100",
            "tpu-v2",
            "tpu-v2-pod",
            "tpu-v3",
            "tpu-v3-pod",
            "tpu-v4-pod",
        )
    }
)


class AcceleratorSpec(click.ParamType):
    """gcloud's `--*-accelerator type=nvidia-tesla-t4,count=2` -> an AcceleratorConfig."""

    name = "type=TYPE,count=N"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "type=TYPE,count=N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        config: dict[str, str] = {}
        for pair in str(value).split(","):
            key, sep, item = pair.partition("=")
            key = key.strip().lower()
            if not sep or key not in ("type", "count"):
                self.fail(f"{pair!r} is not type=TYPE or count=N.", param, ctx)
            if key == "type":
                config["type"] = ACCELERATOR_TYPE.convert(item, param, ctx)
            elif not (item.strip().isascii() and item.strip().isdigit()) or int(item) < 1:
                self.fail(f"count must be a whole number of at least 1, not {item!r}.", param, ctx)
            else:
                config["count"] = item.strip()
        if "type" not in config:
            self.fail(
                f"say which accelerator: type=TYPE, one of {', '.join(ACCELERATOR_TYPE.choices)}.",
                param,
                ctx,
            )
        config.setdefault("count", "1")
        return config


# -- global flags ----------------------------------------------------------------------------


@dataclass
class GlobalFlags:
    """gcloud's global flags as given anywhere on the command line (None: not given)."""

    api: str | None = None
    project: str | None = None
    region: str | None = None
    format: str | None = None
    quiet: bool = False
    verbosity: str | None = None


_FLAGS_KEY = "cairn.global_flags"


def global_flags(ctx: click.Context | None = None) -> GlobalFlags:
    """The global flags of the running command (ctx.meta is shared by its whole chain)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return GlobalFlags()
    flags: GlobalFlags = ctx.meta.setdefault(_FLAGS_KEY, GlobalFlags())
    return flags


def current_api() -> str:
    return global_flags().api or api_url()


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is None or value is False or param.name is None:
        return
    setattr(global_flags(ctx), param.name, value)
    if param.name == "verbosity":
        _apply_verbosity(ctx, value)


def _apply_verbosity(ctx: click.Context, level: str) -> None:
    """Cairn's loggers log at `level` to stderr for this command (restored after it)."""
    logger = logging.getLogger("cairn")
    previous = (logger.level, logger.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.setLevel(logging.CRITICAL + 1 if level == "none" else level.upper())
    logger.addHandler(handler)
    logger.propagate = False

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]

    ctx.find_root().call_on_close(restore)


class GlobalOption(click.Option):
    """One of gcloud's global flags; listed under its own heading in --help."""


def global_params() -> list[click.Parameter]:
    """Fresh instances of the global flags (each command needs its own)."""

    def option(*decls: str, **attrs: Any) -> GlobalOption:
        return GlobalOption(list(decls), expose_value=False, callback=_remember, **attrs)

    return [
        option(
            "--api",
            "api",
            metavar="URL",
            help="URL of the Cairn server [default: $CAIRN_API, else http://127.0.0.1:8080]. "
            "Commands that work on local buckets ask it where its buckets are.",
        ),
        option(
            "--project",
            "project",
            metavar="ID",
            help="Project that owns the resources [default: $CAIRN_PROJECT, else "
            "cairn-local]. Commands that only touch local files accept it and ignore it.",
        ),
        option(
            "--region",
            "region",
            metavar="REGION",
            help="Region, accepted as gcloud does (Cairn runs on one machine; jobs record "
            "it, us-central1 when not given).",
        ),
        option(
            "--format",
            "format",
            type=OutputFormat(),
            help="Output format [default: yaml for one resource, table for lists], or a "
            "projection: 'value(state)', 'csv[no-heading](jobId,state)', 'table(name,state)'. "
            "`storage ls` takes it too; commands whose output is files or log lines ignore it.",
        ),
        option(
            "--quiet",
            "-q",
            "quiet",
            is_flag=True,
            default=False,
            help="Answer every prompt with its default (a deletion goes ahead); a prompt "
            "with no default (a sign-in code) becomes an error.",
        ),
        option(
            "--verbosity",
            "verbosity",
            type=GcloudChoice(VERBOSITIES),
            help="Log level of Cairn's own log messages on stderr [default: warning].",
        ),
    ]


def _add_global_params(command: click.Command) -> None:
    taken = {name for param in command.params for name in param.opts + param.secondary_opts}
    for param in global_params():
        if not taken.intersection(param.opts):
            command.params.append(param)


def _format_options(
    command: click.Command, ctx: click.Context, formatter: click.HelpFormatter
) -> None:
    own: list[tuple[str, str]] = []
    shared: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            (shared if isinstance(param, GlobalOption) else own).append(record)
    if own:
        with formatter.section("Options"):
            formatter.write_dl(own)
    if shared:
        with formatter.section("Global flags (before or after the command)"):
            formatter.write_dl(shared)


class CairnUsageError(click.UsageError):
    """A command line that does not parse, shown gcloud's way: `ERROR: (cairn.x) ...`."""

    def show(self, file: Any = None) -> None:
        where = command_id(self.ctx) if self.ctx is not None else "cairn"
        click.echo(f"ERROR: ({where}) {self.format_message()}", err=True)
        if self.ctx is not None:
            click.echo(self.ctx.get_usage(), err=True)
            click.echo(f"  Try '{self.ctx.command_path} --help' for help.", err=True)


def _usage_error(error: click.UsageError) -> click.UsageError:
    if isinstance(error, CairnUsageError):
        return error
    return CairnUsageError(error.format_message(), error.ctx)


class _GcloudStyle(click.Command):
    """What commands and groups share: the global flags, `-h`, and command lines that do not
    parse reported gcloud's way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_global_params(self)
        self.context_settings.setdefault("help_option_names", ["-h", "--help"])

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            raise _usage_error(error) from None


class CairnCommand(_GcloudStyle):
    """A command with the global flags whose every error prints `ERROR: (cairn.x.y) ...`."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_options(self, ctx, formatter)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as error:
            _report(ctx, _describe(error))
        except OSError as error:
            _report(ctx, f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
        except UnicodeDecodeError as error:
            _report(ctx, f"The input is not UTF-8 text ({error.reason} at byte {error.start}).")
        except click.UsageError as error:
            raise _usage_error(error) from None
        except click.ClickException as error:
            _report(ctx, error.format_message(), error.exit_code)
        return None


class CairnGroup(_GcloudStyle, click.Group):
    """A group with the global flags; its commands are `CairnCommand`s by default."""

    command_class = CairnCommand

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            raise _usage_error(error) from None

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_options(self, ctx, formatter)
        self.format_commands(ctx, formatter)


CairnGroup.group_class = CairnGroup


@dataclass
class Session:
    """What a command needs to reach the server and print: built from the global flags."""

    api: str
    project: str
    region: str | None
    printer: Printer
    _client: CairnClient | None = field(default=None, repr=False)

    @property
    def client(self) -> CairnClient:
        if self._client is None:
            from cairn.client import CairnClient  # httpx: only for commands that call out

            self._client = CairnClient(self.api, self.project)
        return self._client


def order_option(command: F) -> F:
    """`--order desc|asc` for the commands that read logs: newest first unless asked."""
    return click.option(
        "--order",
        type=GcloudChoice(["desc", "asc"]),
        default="desc",
        show_default=True,
        help="desc: newest first; asc: oldest first.",
    )(command)


def current_printer() -> Printer:
    return Printer(global_flags().format)


def common_options(command: F) -> F:
    """Hand the command a `session` built from the global flags (given before or after it)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kw: Any) -> Any:
        flags = global_flags()
        session = Session(
            api=flags.api or api_url(),
            project=flags.project or default_project(),
            region=flags.region,
            printer=Printer(flags.format),
        )
        try:
            return command(*args, session=session, **kw)
        finally:
            if session._client is not None:
                session._client.close()

    return wrapper  # type: ignore[return-value]


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


def _report(ctx: click.Context, message: str, exit_code: int = 1) -> None:
    Printer().error(command_id(ctx), message)
    ctx.exit(exit_code)


def command_id(ctx: click.Context) -> str:
    """`cairn.jobs.submit.training` for `cairn jobs submit training` (whatever prog name)."""
    names: list[str] = []
    current: click.Context | None = ctx
    while current is not None:
        names.append(current.info_name or "")
        current = current.parent
    if ctx.find_root().command.name == "cli":
        names[-1] = "cairn"  # the prog name a user typed (cairn, or a path to it)
    else:
        names[-1] = ctx.find_root().command.name or names[-1]
        names.append("cairn")  # a group run on its own (tests): still cairn.group.command
    return ".".join(reversed(names))


def _describe(error: ApiError) -> str:
    """The message to print; flag problems read like argparse's (`argument --x: ...`)."""
    if len(error.field_violations) == 1:
        violation = error.field_violations[0]
        flag_or_argument = violation.field.startswith("-") or violation.field.isupper()
        if flag_or_argument and error.message == (
            f"Field: {violation.field} Error: {violation.description}"
        ):
            return f"argument {violation.field}: {violation.description}"
    extra = [
        f"  {v.field}: {v.description}"
        for v in error.field_violations
        if v.description and v.description not in error.message
    ]
    if error.code is Code.NOT_FOUND and (hint := _NOT_FOUND_HINTS.get(error.message.split()[0])):
        extra.append(hint)
    return "\n".join([error.message, *extra])


# What to do next when the server says a resource does not exist (keyed by its first word).
_NOT_FOUND_HINTS = {
    "Job": "List the project's jobs with `cairn jobs list` (add --project to look elsewhere).",
    "Model": "List the project's models with `cairn models list` (add --project to look "
    "elsewhere).",
    "Version": "List a model's versions with `cairn versions list --model MODEL`.",
    "Operation": "List the project's operations with `cairn operations list`.",
}


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


def confirm(prompt: str) -> None:
    """Ask before destroying something. --quiet answers yes (the prompt's default). With no
    terminal the answer is read from stdin as gcloud reads it: no input at all (a script's
    /dev/null) takes the default, so scripts written for gcloud delete without -q; "n" says
    no."""
    if global_flags().quiet:
        return
    if not sys.stdin.isatty():
        click.echo(f"{prompt} Do you want to continue (Y/n)?", err=True)
        if sys.stdin.readline().strip().lower() in ("n", "no"):
            raise ApiError(Code.CANCELLED, "Aborted by user.")
        return
    if not click.confirm(f"{prompt} Do you want to continue?", default=True):
        raise ApiError(Code.CANCELLED, "Aborted by user.")


def prompt_secret(prompt: str, flag: str) -> str:
    """Ask for a value that has no default; with --quiet that is an error naming `flag`."""
    if global_flags().quiet:
        raise invalid_field(flag, f"{flag} is required with --quiet (there is nothing to prompt).")
    value: str = click.prompt(prompt, hide_input=True)
    return value
