"""`cairn local train`: run a trainer package from source on this machine, no server needed."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from cairn.cli.buckets import find_buckets
from cairn.cli.options import TrainerArgsCommand
from cairn.config import Settings
from cairn.domain.errors import ApiError
from cairn.training.environments import local_runtime_python
from cairn.training.local_train import plan_local_train, run_local_train

_console = Console(stderr=True)


def _localize(values: list[str]) -> list[str]:
    """gs:// URIs (alone or as `--flag=gs://...`) mapped to the local buckets of the running
    server (found as `cairn storage` finds them)."""
    if not any("gs://" in v for v in values):
        return values
    buckets = find_buckets()
    try:
        return [buckets.storage.localize_arg(v) for v in values]
    except ApiError as exc:
        raise buckets.explain(exc) from None


def _runtime_python(runtime_version: str) -> str:
    """The runtime environment's interpreter (training/environments.py), built on first use."""
    settings = Settings.from_env()
    log_path = settings.runtimes_root / "build.log"
    _console.print(
        f"Runtime {runtime_version}: its environment is built on first use ({log_path})."
    )
    envs, runtimes = settings.envs_root, settings.runtimes_root
    try:
        return str(local_runtime_python(runtime_version, envs, runtimes, log_path))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--runtime-version") from None


@click.command(
    "train",
    cls=TrainerArgsCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--module-name",
    required=True,
    help="The module to run, e.g. trainer.task (run as `python -m MODULE`).",
)
@click.option(
    "--package-path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default="the current directory",
    help="The trainer package's source directory. It runs from the directory above it, "
    "without being installed.",
)
@click.option(
    "--job-dir",
    help="Where the trainer writes its output; passed to it as `--job-dir DIR`. "
    "gs://BUCKET/PATH (here and in the trainer's arguments) is that path in the running "
    "server's buckets, found as `cairn storage` finds them.",
)
@click.option(
    "--distributed",
    is_flag=True,
    help="Run a cluster of processes on localhost: parameter servers, workers, "
    "evaluators and the chief, each with TF_CONFIG naming its role.",
)
@click.option(
    "--parameter-server-count",
    type=click.IntRange(min=0),
    default=None,
    help="Parameter servers to run with --distributed.  [default: 2]",
)
@click.option(
    "--worker-count",
    type=click.IntRange(min=0),
    default=None,
    help="Workers to run with --distributed.  [default: 2]",
)
@click.option(
    "--evaluator-count",
    type=click.IntRange(min=0),
    default=None,
    help="Evaluators to run with --distributed.  [default: 0]",
)
@click.option(
    "--start-port",
    type=click.IntRange(min=1, max=65535),
    default=27182,
    show_default=True,
    help="First localhost port of the --distributed cluster.",
)
@click.option(
    "--runtime-version",
    help="Run with AI Platform runtime version's frameworks (e.g. 2.11: Keras 2, TensorBoard, "
    "that era's scikit-learn and XGBoost; docs/runtimes.md), built on first use. Default: "
    "the frameworks Cairn itself has.",
)
def train(
    module_name: str,
    package_path: Path,
    job_dir: str | None,
    distributed: bool,
    parameter_server_count: int | None,
    worker_count: int | None,
    evaluator_count: int | None,
    start_port: int,
    runtime_version: str | None,
    user_args: tuple[str, ...],
) -> None:
    """Run a trainer package locally, as a job replica would run it.

    Like `gcloud ai-platform local train`: arguments after `--` go to the trainer, and
    the command exits with the trainer's (the chief's) exit code.

    \b
    Example:
      cairn local train --module-name trainer.task --package-path ./trainer \\
          --job-dir ./output -- --epochs 5
    """
    if not (package_path / "__init__.py").exists():
        _console.print(
            f"[yellow]WARNING:[/] {package_path} has no __init__.py; "
            f"`python -m {module_name}` may not find it."
        )
    if not distributed and any(
        c is not None for c in (parameter_server_count, worker_count, evaluator_count)
    ):
        _console.print(
            "[yellow]WARNING:[/] replica counts only apply with --distributed; running one process."
        )
    [localized_job_dir] = _localize([job_dir]) if job_dir else [None]
    plan = plan_local_train(
        module_name,
        package_path,
        _localize(list(user_args)),
        localized_job_dir,
        distributed=distributed,
        ps_count=2 if parameter_server_count is None else parameter_server_count,
        worker_count=2 if worker_count is None else worker_count,
        evaluator_count=0 if evaluator_count is None else evaluator_count,
        start_port=start_port,
        python=_runtime_python(runtime_version) if runtime_version else None,
    )
    shape = (
        f"{plan.primary_type} + {plan.worker_count} worker(s) + {plan.ps_count} parameter "
        f"server(s) + {plan.evaluator_count} evaluator(s)"
        if distributed
        else "one process"
    )
    _console.print(f"Running [bold]{module_name}[/] from {plan.workdir} ({shape}).")
    code = run_local_train(plan)
    if code != 0:
        _console.print(f"[red]The trainer exited with status {code}.[/]")
    raise SystemExit(code)
