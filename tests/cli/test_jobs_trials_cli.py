"""`cairn jobs trials` and `cairn jobs describe --summarize`: tables, orders, plots."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.client.cli_runner import invoke
from tests.client.fake_ml import FakeMl, fake_ml_fixture  # noqa: F401  (fixture)

P = "/v1/projects/proj"


def trial(
    trial_id: str,
    objective: float | None,
    step: str = "100",
    state: str = "SUCCEEDED",
    start: str = "2026-01-01T00:00:00Z",
    early: bool = False,
    **hyperparameters: str,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "trialId": trial_id,
        "hyperparameters": hyperparameters,
        "state": state,
        "startTime": start,
    }
    if objective is not None:
        doc["finalMetric"] = {"trainingStep": step, "objectiveValue": objective}
    if early:
        doc["isTrialStoppedEarly"] = True
    return doc


def tuning_job(goal: str | None = "MAXIMIZE", trials: list[dict[str, Any]] | None = None) -> Any:
    spec: dict[str, Any] = {
        "hyperparameterMetricTag": "accuracy",
        "maxTrials": 4,
        "params": [
            {"parameterName": "lr", "type": "DOUBLE", "minValue": 0.001, "maxValue": 0.1},
            {"parameterName": "layers", "type": "INTEGER", "minValue": 1, "maxValue": 4},
        ],
    }
    if goal is not None:
        spec["goal"] = goal
    return {
        "jobId": "hp1",
        "state": "SUCCEEDED",
        "createTime": "2026-01-01T00:00:00Z",
        "startTime": "2026-01-01T00:00:05Z",
        "endTime": "2026-01-01T01:02:08Z",
        "trainingInput": {"scaleTier": "BASIC", "hyperparameters": spec},
        "trainingOutput": {
            "isHyperparameterTuningJob": True,
            "hyperparameterMetricTag": "accuracy",
            "completedTrialCount": "3",
            "trials": trials if trials is not None else TRIALS,
        },
    }


# Best first for MAXIMIZE, as the server sends them; trial 4 failed without an objective.
TRIALS = [
    trial("2", 0.93, start="2026-01-01T00:00:06Z", early=True, lr="0.01", layers="3"),
    trial("3", 0.9, step="80", start="2026-01-01T00:30:00.5Z", lr="0.05", layers="2"),
    trial("1", 0.5, start="2026-01-01T00:00:05Z", lr="0.001", layers="1"),
    trial("4", None, state="FAILED", start="2026-01-01T00:30:00Z", lr="0.1", layers="4"),
]


def column(stdout: str, header: str) -> list[str]:
    """The cells of one column of a printed table (split on runs of spaces)."""
    lines = stdout.splitlines()
    headers = lines[0].split()
    return [line.split()[headers.index(header)] for line in lines[1:]]


def first_cells(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()[1:]]


def test_trials_prints_the_table_best_first(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job())
    result = invoke(fake_ml.url, "jobs", "trials", "hp1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "TRIAL", "STATE", "OBJECTIVE", "STEP", "lr", "layers", "STOPPED_EARLY",
    ]  # fmt: skip
    assert lines[1].split() == ["2", "SUCCEEDED", "0.93", "100", "0.01", "3", "yes"]
    assert lines[2].split() == ["3", "SUCCEEDED", "0.9", "80", "0.05", "2"]
    assert lines[4].split() == ["4", "FAILED", "0.1", "4"]  # no objective, no step
    assert first_cells(result.stdout) == ["2", "3", "1", "4"]
    assert [request.path for request in fake_ml.requests] == [f"{P}/jobs/hp1"]


def test_minimize_puts_the_lowest_objective_first(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job(goal="MINIMIZE"))
    result = invoke(fake_ml.url, "jobs", "trials", "hp1")
    assert result.exit_code == 0, result.output
    assert first_cells(result.stdout) == ["1", "3", "2", "4"]  # no objective stays last


@pytest.mark.parametrize("goal", [None, "GOAL_TYPE_UNSPECIFIED"])
def test_the_goal_defaults_to_maximize(fake_ml: FakeMl, goal: str | None) -> None:
    reversed_trials = list(reversed(TRIALS))
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job(goal=goal, trials=reversed_trials))
    result = invoke(fake_ml.url, "jobs", "trials", "hp1")
    assert first_cells(result.stdout) == ["2", "3", "1", "4"]


def test_sort_by_trial_and_by_start(fake_ml: FakeMl) -> None:
    many = [*TRIALS, trial("10", 0.7, start="2026-01-01T00:00:07Z"), trial("9", 0.6, start="")]
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job(trials=many))
    by_trial = invoke(fake_ml.url, "jobs", "trials", "hp1", "--sort-by", "trial")
    assert first_cells(by_trial.stdout) == ["1", "2", "3", "4", "9", "10"]  # numerically
    by_start = invoke(fake_ml.url, "jobs", "trials", "hp1", "--sort-by", "start")
    # 00:30:00.5Z is after 00:30:00Z (a text sort would say otherwise); no start time: last.
    assert first_cells(by_start.stdout) == ["1", "2", "10", "4", "3", "9"]


def test_json_gives_the_sorted_trial_records(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job(goal="MINIMIZE"))
    result = invoke(fake_ml.url, "jobs", "trials", "hp1", "--format", "json")
    assert [t["trialId"] for t in json.loads(result.stdout)] == ["1", "3", "2", "4"]
    assert json.loads(result.stdout)[0] == TRIALS[2]


def test_a_job_that_is_not_tuning_has_no_trials(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/plain", {"jobId": "plain", "state": "RUNNING"})
    result = invoke(fake_ml.url, "jobs", "trials", "plain")
    assert result.exit_code == 1
    assert result.stderr.startswith("ERROR: (cairn.jobs.trials) Job [plain] is not a hyper")
    assert "cairn jobs describe plain" in result.stderr


def test_a_queued_tuning_job_lists_no_trials_yet(fake_ml: FakeMl) -> None:
    job = tuning_job()
    del job["trainingOutput"]
    job["state"] = "QUEUED"
    fake_ml.answer("GET", f"{P}/jobs/hp1", job)
    result = invoke(fake_ml.url, "jobs", "trials", "hp1")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Listed 0 items." in result.stderr
    summary = invoke(fake_ml.url, "jobs", "describe", "hp1", "--summarize")
    assert "Trials:   0 completed of 4" in summary.stdout
    assert summary.stdout.rstrip().endswith("No trials yet.")


# -- plots -----------------------------------------------------------------------------------


def test_plot_writes_a_png(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job())
    target = tmp_path / "search.png"
    result = invoke(fake_ml.url, "jobs", "trials", "hp1", "--plot", str(target))
    assert result.exit_code == 0, result.output
    assert f"Wrote the plot of 3 trials to [{target}]." in result.stderr
    assert first_cells(result.stdout) == ["2", "3", "1", "4"]  # the table still comes
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 400 and height > 200
    assert b"IEND" in data[-12:]


def test_plot_writes_an_html_page_with_an_inline_svg(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job(goal="MINIMIZE"))
    target = tmp_path / "search.html"
    result = invoke(fake_ml.url, "jobs", "trials", "hp1", "--plot", str(target))
    assert result.exit_code == 0, result.output
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Trials of hp1</title>" in page
    svg = page[page.index("<svg") : page.index("</svg>") + len("</svg>")]
    root = ElementTree.fromstring(svg)  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "best so far" in svg and "stopped early" in svg and "accuracy" in svg
    assert "<script" not in page


def test_plot_needs_a_known_file_type_and_an_objective(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job(trials=[TRIALS[3]]))
    wrong = invoke(fake_ml.url, "jobs", "trials", "hp1", "--plot", str(tmp_path / "x.jpg"))
    assert wrong.exit_code == 2
    assert "must end with .png" in wrong.stderr
    assert fake_ml.requests == []
    nothing = invoke(fake_ml.url, "jobs", "trials", "hp1", "--plot", str(tmp_path / "x.png"))
    assert nothing.exit_code == 1
    assert "No trial of job [hp1] has reported its objective yet" in nothing.stderr
    assert not (tmp_path / "x.png").exists()


def test_matplotlib_is_imported_only_for_a_plot() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from cairn.cli.main import cli; "
        "CliRunner().invoke(cli, ['jobs', 'trials', '--help']); "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- describe --summarize --------------------------------------------------------------------


def test_summarize_a_tuning_job(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job())
    result = invoke(fake_ml.url, "jobs", "describe", "hp1", "--summarize")
    assert result.exit_code == 0, result.output
    header, table = result.stdout.split("\n\n")
    assert header.splitlines() == [
        "Job:      hp1",
        "State:    SUCCEEDED",
        "Created:  2026-01-01T00:00:00Z",
        "Started:  2026-01-01T00:00:05Z",
        "Ended:    2026-01-01T01:02:08Z (after 1h02m03s)",
        "Goal:     MAXIMIZE accuracy",
        "Trials:   3 completed of 4",
    ]
    assert table.splitlines()[0].split()[:4] == ["TRIAL", "STATE", "OBJECTIVE", "STEP"]
    assert first_cells(table) == ["2", "3", "1", "4"]  # the server's order, kept
    assert column(table, "OBJECTIVE")[:3] == ["0.93", "0.9", "0.5"]


def test_summarize_keeps_the_servers_order_even_for_minimize(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job(goal="MINIMIZE", trials=TRIALS[::-1]))
    result = invoke(fake_ml.url, "jobs", "describe", "hp1", "--summarize")
    assert "Goal:     MINIMIZE accuracy" in result.stdout
    assert first_cells(result.stdout.split("\n\n")[1]) == ["4", "1", "3", "2"]


def test_summarize_a_job_that_is_not_tuning(fake_ml: FakeMl) -> None:
    job = {
        "jobId": "plain",
        "state": "FAILED",
        "createTime": "2026-01-01T00:00:00Z",
        "startTime": "2026-01-01T00:00:01Z",
        "endTime": "2026-01-01T00:00:43.500Z",
        "errorMessage": "The replica master 0 exited with a non-zero status of 1.",
        "trainingInput": {"scaleTier": "BASIC", "pythonModule": "trainer.task"},
    }
    fake_ml.answer("GET", f"{P}/jobs/plain", job)
    result = invoke(fake_ml.url, "jobs", "describe", "plain", "--summarize")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Job:      plain",
        "State:    FAILED",
        "Created:  2026-01-01T00:00:00Z",
        "Started:  2026-01-01T00:00:01Z",
        "Ended:    2026-01-01T00:00:43.500Z (after 42s)",
        "Error:    The replica master 0 exited with a non-zero status of 1.",
    ]
    running = {"jobId": "r", "state": "RUNNING", "startTime": "2026-01-01T00:00:01Z"}
    fake_ml.answer("GET", f"{P}/jobs/r", running)
    result = invoke(fake_ml.url, "jobs", "describe", "r", "--summarize")
    assert result.stdout.splitlines() == [
        "Job:      r",
        "State:    RUNNING",
        "Started:  2026-01-01T00:00:01Z",
    ]


def test_summarize_as_yaml_and_plain_describe_unchanged(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/hp1", tuning_job())
    summary = yaml.safe_load(
        invoke(fake_ml.url, "jobs", "describe", "hp1", "--summarize", "--format", "yaml").stdout
    )
    assert summary["goal"] == "MAXIMIZE"
    assert summary["hyperparameterMetricTag"] == "accuracy"
    assert summary["completedTrialCount"] == "3"
    assert summary["maxTrials"] == 4
    assert [t["trialId"] for t in summary["trials"]] == ["2", "3", "1", "4"]
    assert "trainingInput" not in summary
    full = invoke(fake_ml.url, "jobs", "describe", "hp1")
    assert yaml.safe_load(full.stdout) == tuning_job()
