"""`cairn jobs trials JOB`: a tuning job's trials as a table, and a plot of the search.

Also the short summary behind `cairn jobs describe JOB --summarize`. Everything is read
from the job document (`trainingOutput.trials`, best first as the server sends them);
matplotlib is imported only when a plot is asked for, so the CLI stays quick to start.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from cairn.cli.options import CairnCommand, GcloudChoice, Session, common_options
from cairn.cli.output import Column, Printer, render_table
from cairn.domain.errors import failed_precondition

Json = dict[str, Any]

DEFAULT_METRIC_TAG = "training/hptuning/metric"
PLOT_SUFFIXES = (".png", ".html", ".svg")
SORT_ORDERS = ("objective", "trial", "start")


# -- reading the job document --------------------------------------------------------------


def hyperparameter_spec(job: Json) -> Json:
    spec = (job.get("trainingInput") or {}).get("hyperparameters")
    return spec if isinstance(spec, dict) else {}


def is_tuning_job(job: Json) -> bool:
    # A queued tuning job has no trainingOutput yet; its input already says what it is.
    output = job.get("trainingOutput") or {}
    return bool(output.get("isHyperparameterTuningJob")) or bool(hyperparameter_spec(job))


def goal_of(job: Json) -> str:
    """MAXIMIZE unless the job says MINIMIZE (AI Platform's default, GOAL_TYPE_UNSPECIFIED too)."""
    return "MINIMIZE" if hyperparameter_spec(job).get("goal") == "MINIMIZE" else "MAXIMIZE"


def metric_tag_of(job: Json) -> str:
    output = job.get("trainingOutput") or {}
    return str(
        output.get("hyperparameterMetricTag")
        or hyperparameter_spec(job).get("hyperparameterMetricTag")
        or DEFAULT_METRIC_TAG
    )


def trials_of(job: Json) -> list[Json]:
    trials = (job.get("trainingOutput") or {}).get("trials") or []
    return [trial for trial in trials if isinstance(trial, dict)]


def objective(trial: Json) -> float | None:
    """The trial's final objective; None when it reported none (failed, still running)."""
    value = (trial.get("finalMetric") or {}).get("objectiveValue")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parameter_names(job: Json, trials: Sequence[Json]) -> list[str]:
    """The job's parameters in the order it declares them, then any others trials carry."""
    declared = [
        str(param["parameterName"])
        for param in hyperparameter_spec(job).get("params") or []
        if isinstance(param, dict) and param.get("parameterName")
    ]
    extra = sorted(
        {name for trial in trials for name in trial.get("hyperparameters") or {}} - set(declared)
    )
    return declared + extra


# -- ordering --------------------------------------------------------------------------------


def sort_trials(trials: Sequence[Json], order: str, goal: str) -> list[Json]:
    """Trials in the asked order; ties and trials lacking the sort field keep server order,
    the latter after all others."""
    if order == "trial":
        return sorted(trials, key=_trial_number)
    if order == "start":
        return sorted(trials, key=lambda t: _time_key(t.get("startTime")))
    sign = -1.0 if goal == "MAXIMIZE" else 1.0

    def best_first(trial: Json) -> tuple[int, float]:
        value = objective(trial)
        return (1, 0.0) if value is None else (0, sign * value)

    return sorted(trials, key=best_first)


def _trial_number(trial: Json) -> tuple[int, int, str]:
    trial_id = str(trial.get("trialId") or "")
    return (0, int(trial_id), "") if trial_id.isdigit() else (1, 0, trial_id)


def _time_key(text: Any) -> tuple[int, float]:
    moment = parse_time(text)
    return (1, 0.0) if moment is None else (0, moment.timestamp())


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)  # RFC 3339 with Z, any fraction digits
    except ValueError:
        return None


# -- the table -------------------------------------------------------------------------------


def trial_columns(names: Sequence[str]) -> list[Column]:
    def final(key: str) -> Callable[[Json], Any]:
        return lambda trial: (trial.get("finalMetric") or {}).get(key)

    def parameter(name: str) -> Callable[[Json], Any]:
        return lambda trial: (trial.get("hyperparameters") or {}).get(name)

    def shown_objective(trial: Json) -> str | None:
        value = objective(trial)
        return None if value is None else f"{value:.6g}"

    return [
        Column("TRIAL", lambda trial: trial.get("trialId")),
        Column("STATE", lambda trial: trial.get("state")),
        Column("OBJECTIVE", shown_objective),
        Column("STEP", final("trainingStep")),
        *(Column(name, parameter(name)) for name in names),
        Column("STOPPED_EARLY", lambda trial: "yes" if trial.get("isTrialStoppedEarly") else ""),
    ]


def trial_table(job: Json, trials: Sequence[Json]) -> str:
    columns = trial_columns(parameter_names(job, trials))
    rows = [[_text(column.read(trial)) for column in columns] for trial in trials]
    return render_table([column.header for column in columns], rows)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# -- describe --summarize --------------------------------------------------------------------


def summary_document(job: Json) -> Json:
    """What `describe --summarize --format json|yaml` prints."""
    keys = ("jobId", "state", "createTime", "startTime", "endTime", "errorMessage")
    summary: Json = {key: job[key] for key in keys if job.get(key) not in (None, "")}
    if is_tuning_job(job):
        output = job.get("trainingOutput") or {}
        summary["goal"] = goal_of(job)
        summary["hyperparameterMetricTag"] = metric_tag_of(job)
        summary["completedTrialCount"] = str(output.get("completedTrialCount") or "0")
        summary["maxTrials"] = _max_trials(job)
        summary["trials"] = trials_of(job)
    return summary


def print_summary(job: Json, printer: Printer) -> None:
    """A few lines about the job and, for a tuning job, its trials best first."""
    if printer.format in ("json", "yaml"):
        printer.resource(summary_document(job))
        return
    lines = [("Job", job.get("jobId")), ("State", job.get("state"))]
    lines += [("Created", job.get("createTime")), ("Started", job.get("startTime"))]
    ended = job.get("endTime")
    took = duration(job.get("startTime"), ended)
    lines.append(("Ended", f"{ended} (after {took})" if ended and took else ended))
    if is_tuning_job(job):
        output = job.get("trainingOutput") or {}
        completed = output.get("completedTrialCount") or "0"
        lines.append(("Goal", f"{goal_of(job)} {metric_tag_of(job)}"))
        lines.append(("Trials", f"{completed} completed of {_max_trials(job)}"))
    if (predicted := job.get("predictionOutput")) is not None:
        lines.append(("Output", predicted.get("outputPath")))
        count, bad = predicted.get("predictionCount", 0), predicted.get("errorCount", 0)
        lines.append(("Predicted", f"{count} instances, {bad} bad lines"))
    lines.append(("Error", job.get("errorMessage")))
    for label, value in lines:
        if value not in (None, ""):
            printer.line(f"{label + ':':<9} {value}")
    if not is_tuning_job(job):
        return
    trials = trials_of(job)
    printer.line("")
    printer.line(trial_table(job, trials) if trials else "No trials yet.")


def _max_trials(job: Json) -> int:
    value = hyperparameter_spec(job).get("maxTrials")
    try:
        return int(value) if value is not None else 1  # AI Platform's default
    except (TypeError, ValueError):
        return 1


def duration(start: Any, end: Any) -> str | None:
    """`1h02m03s` between two timestamps; None when either is missing."""
    began, ended = parse_time(start), parse_time(end)
    if began is None or ended is None or ended < began:
        return None
    seconds = round((ended - began).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


# -- the plot --------------------------------------------------------------------------------


def write_plot(job: Json, path: Path) -> int:
    """Each trial's objective (in trial order) and the best so far; returns points drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    goal, tag = goal_of(job), metric_tag_of(job)
    scored: list[tuple[Json, float]] = []
    for trial in sort_trials(trials_of(job), "trial", goal):
        value = objective(trial)
        if value is not None:
            scored.append((trial, value))
    numeric = all(str(t.get("trialId") or "").isdigit() for t, _ in scored)
    xs = [int(t["trialId"]) if numeric else i + 1 for i, (t, _) in enumerate(scored)]
    values = [v for _, v in scored]
    pick = max if goal == "MAXIMIZE" else min
    best = [pick(values[: i + 1]) for i in range(len(values))]

    figure = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(figure)  # no pyplot: no global state, no GUI backend
    axes = figure.add_subplot()
    early = [t.get("isTrialStoppedEarly") is True for t, _ in scored]
    axes.scatter(
        [x for x, e in zip(xs, early, strict=True) if not e],
        [v for v, e in zip(values, early, strict=True) if not e],
        label="trial's final objective",
        zorder=3,
    )
    if any(early):
        axes.scatter(
            [x for x, e in zip(xs, early, strict=True) if e],
            [v for v, e in zip(values, early, strict=True) if e],
            marker="x",
            label="stopped early",
            zorder=3,
        )
    axes.step(xs, best, where="post", color="tab:green", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(tag)
    axes.set_title(f"{job.get('jobId', '')}: {tag} ({goal.lower()})")
    if not numeric:
        axes.set_xticks(xs, [str(t.get("trialId") or "") for t, _ in scored], rotation=45)
    elif xs:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "trial 2.5"
    axes.grid(alpha=0.3)
    axes.legend(loc="best")

    suffix = path.suffix.lower()
    if suffix == ".png":
        figure.savefig(path, format="png", dpi=120)
    else:
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
        svg = buffer.getvalue()
        if suffix == ".svg":
            path.write_text(svg, encoding="utf-8")
        else:
            path.write_text(_html_page(job, svg[svg.index("<svg") :]), encoding="utf-8")
    return len(scored)


def _html_page(job: Json, svg: str) -> str:
    title = html.escape(f"Trials of {job.get('jobId', '')}")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}"
        "svg{max-width:100%;height:auto}</style>\n"
        f"</head>\n<body>\n<h1>{title}</h1>\n{svg}\n</body>\n</html>\n"
    )


def _plot_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    if value is None:
        return None
    if not value.lower().endswith(PLOT_SUFFIXES):
        raise click.BadParameter(
            f"'{value}' must end with .png (an image) or .html (a page to open in a browser)"
            " or .svg."
        )
    return Path(value)


# -- the command -----------------------------------------------------------------------------


@click.command(cls=CairnCommand)
@click.argument("job")
@click.option(
    "--sort-by",
    type=GcloudChoice(SORT_ORDERS),
    default="objective",
    show_default=True,
    help="objective: best first, by the job's goal (MAXIMIZE unless it says MINIMIZE); "
    "trial: by trial id; start: by start time. Trials without the value come last.",
)
@click.option(
    "--plot",
    "plot",
    metavar="FILE",
    callback=_plot_path,
    help="Also draw each trial's final objective and the best so far into FILE: "
    "a PNG image when FILE ends with .png, a web page when it ends with .html (.svg: the "
    "bare drawing). Trials without an objective (failed, running) are left out.",
)
@common_options
def trials(job: str, sort_by: str, plot: Path | None, session: Session) -> None:
    """List the trials of hyperparameter tuning job JOB, best first.

    One row per trial: its id, state, final objective (the last value of the job's
    metric that the trial reported), the training step of that value, the
    hyperparameters it ran with, and whether it was stopped early.

    \b
    Examples:
      cairn jobs trials my_tuning_job
      cairn jobs trials my_tuning_job --sort-by trial --plot search.png
      cairn jobs trials my_tuning_job --format json   # the trials' full records
    """
    document = session.client.get_job(job)
    if not is_tuning_job(document):
        raise failed_precondition(
            f"Job [{job}] is not a hyperparameter tuning job (its trainingInput has no "
            f"hyperparameters), so it has no trials. See it with: cairn jobs describe {job}"
        )
    found = sort_trials(trials_of(document), sort_by, goal_of(document))
    columns = trial_columns(parameter_names(document, found))
    session.printer.resources(found, columns)
    if plot is None:
        return
    if not any(objective(trial) is not None for trial in found):
        raise failed_precondition(
            f"No trial of job [{job}] has reported its objective yet: nothing to plot."
        )
    drawn = write_plot(document, plot)
    session.printer.status(f"Wrote the plot of {drawn} trials to [{plot}].")
