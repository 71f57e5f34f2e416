"""gcloud's spellings and habits: enum values in any case with `_` or `-`, global flags
before or after the command, --quiet, --format projections, one error format, and the
checks that run before anything is uploaded. Requests go to a loopback server with canned
answers, so each test sees exactly what the CLI sends."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from tests.cli.test_jobs_cli import make_trainer
from tests.client.cli_runner import invoke
from tests.client.fake_ml import FakeMl, fake_ml_fixture  # noqa: F401  (fixture)

from cairn.cli.main import cli
from cairn.cli.options import FRAMEWORK, SCALE_TIER, AcceleratorSpec, GcloudChoice

P = "/v1/projects/proj"
V = f"{P}/models/m/versions"
OP = {"name": "projects/proj/operations/create_m_v1-1", "done": True}
MODEL = {"name": "projects/proj/models/m"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("SCIKIT_LEARN", "SCIKIT_LEARN"),
        ("scikit-learn", "SCIKIT_LEARN"),
        ("Scikit_Learn", "SCIKIT_LEARN"),
        ("sklearn", "SCIKIT_LEARN"),
        ("XGBOOST", "XGBOOST"),
        ("tensorflow", "TENSORFLOW"),
    ],
)
def test_framework_takes_every_gcloud_spelling(given: str, expected: str) -> None:
    assert FRAMEWORK.convert(given, None, None) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("STANDARD_1", "STANDARD_1"),
        ("standard-1", "STANDARD_1"),
        ("basic_gpu", "BASIC_GPU"),
        ("BASIC-GPU", "BASIC_GPU"),
        ("basic", "BASIC"),
        ("Premium_1", "PREMIUM_1"),
        ("CUSTOM", "CUSTOM"),
    ],
)
def test_scale_tier_takes_every_gcloud_spelling(given: str, expected: str) -> None:
    assert SCALE_TIER.convert(given, None, None) == expected


def test_a_wrong_value_names_gcloud_spellings() -> None:
    with pytest.raises(click.BadParameter) as raised:
        FRAMEWORK.convert("pytorch", None, None)
    assert "scikit-learn, tensorflow, xgboost" in raised.value.format_message()
    assert GcloudChoice(["asc", "desc"]).convert("DESC", None, None) == "desc"


def test_accelerators_read_as_gcloud_writes_them() -> None:
    spec = AcceleratorSpec()
    assert spec.convert("type=nvidia-tesla-t4,count=2", None, None) == {
        "type": "NVIDIA_TESLA_T4",
        "count": "2",
    }
    assert spec.convert("count=1,type=NVIDIA_TESLA_V100", None, None) == {
        "type": "NVIDIA_TESLA_V100",
        "count": "1",
    }
    with pytest.raises(click.BadParameter):
        spec.convert("count=2", None, None)


def test_every_enum_flag_uses_the_one_choice_type() -> None:
    """No command keeps a case-sensitive click.Choice of its own."""
    from cairn.cli.reference import walk

    for path, command, _ in walk(cli, "cairn"):
        for param in command.params:
            assert not isinstance(param.type, click.Choice), f"{path} {param.name}"


def test_submit_training_sends_the_api_spellings_and_gcloud_flags(
    fake_ml: FakeMl, tmp_path: Path
) -> None:
    fake_ml.answer("POST", f"{P}/jobs", {"jobId": "j1", "state": "QUEUED"})
    result = invoke(
        fake_ml.url, "jobs", "submit", "training", "j1", "--packages", "gs://b/p.tar.gz",
        "--module-name", "trainer.task", "--scale-tier", "Custom",
        "--master-machine-type", "n1-standard-8",
        "--master-accelerator", "type=nvidia-tesla-t4,count=2",
        "--worker-accelerator", "count=1,type=NVIDIA_TESLA_T4",
        "--use-chief-in-tf-config", "true", "--service-account", "sa@proj.iam.gserviceaccount.com",
        "--kms-key", "k", "--kms-keyring", "r", "--kms-location", "us",
        "--region", "europe-west4", "--project", "proj",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = fake_ml.requests[-1].json()["trainingInput"]
    assert sent["scaleTier"] == "CUSTOM"
    assert sent["region"] == "europe-west4"
    assert sent["masterConfig"] == {"acceleratorConfig": {"type": "NVIDIA_TESLA_T4", "count": "2"}}
    assert sent["workerConfig"] == {"acceleratorConfig": {"type": "NVIDIA_TESLA_T4", "count": "1"}}
    assert sent["useChiefInTfConfig"] is True
    assert sent["serviceAccount"] == "sa@proj.iam.gserviceaccount.com"
    assert sent["encryptionConfig"] == {
        "kmsKeyName": "projects/proj/locations/us/keyRings/r/cryptoKeys/k"
    }


def test_versions_create_sends_the_api_spellings(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/models/m", MODEL)
    fake_ml.answer("POST", V, OP)
    result = invoke(
        fake_ml.url, "versions", "create", "v1", "--model", "m", "--origin", "gs://b/model",
        "--framework", "SCIKIT_LEARN", "--runtime-version", "2.11", "--python-version", "3.7",
        "--accelerator", "count=1,type=nvidia-tesla-t4", "--metric-targets", "CPU_USAGE=60",
        "--explanation-method", "sampled_shapley", "--num-paths", "10", "--async",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_ml.requests[-1].json() == {
        "name": "v1",
        "deploymentUri": "gs://b/model",
        "framework": "SCIKIT_LEARN",
        "runtimeVersion": "2.11",
        "pythonVersion": "3.7",
        "acceleratorConfig": {"type": "NVIDIA_TESLA_T4", "count": "1"},
        "autoScaling": {"metrics": [{"name": "CPU_USAGE", "target": 60}]},
        "explanationConfig": {"sampledShapleyAttribution": {"numPaths": 10}},
    }


def test_prediction_data_formats_take_gcloud_spellings(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", f"{P}/jobs", {"jobId": "b1", "state": "QUEUED"})
    result = invoke(
        fake_ml.url, "jobs", "submit", "prediction", "b1", "--model", "m",
        "--input-paths", "gs://in/*", "--data-format", "TF_RECORD_GZIP",
        "--output-path", "gs://out/b1", "--output-data-format", "Json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = fake_ml.requests[-1].json()["predictionInput"]
    assert (sent["dataFormat"], sent["outputDataFormat"]) == ("TF_RECORD_GZIP", "JSON")


@pytest.mark.parametrize(
    "args",
    [
        ["--project", "other", "--format", "json", "models", "list"],
        ["models", "list", "--project", "other", "--format", "json"],
        ["models", "--project", "other", "list", "--format", "JSON"],
        ["--project", "proj", "models", "list", "--project", "other", "--format", "json"],
    ],
    ids=["before", "after", "between", "last-wins"],
)
def test_global_flags_work_before_or_after_the_command(fake_ml: FakeMl, args: list[str]) -> None:
    fake_ml.answer("GET", "/v1/projects/other/models", {"models": [{"name": "m1"}]})
    result = invoke(fake_ml.url, *args)
    assert result.exit_code == 0, result.output
    assert [r.path for r in fake_ml.requests] == ["/v1/projects/other/models"]
    assert json.loads(result.stdout) == [{"name": "m1"}]


def test_api_is_global_too(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/models", {"models": []})
    result = invoke("http://127.0.0.1:9", "models", "list", "--api", fake_ml.url)
    assert result.exit_code == 0, result.output
    result = invoke("http://127.0.0.1:9", "--api", fake_ml.url, "models", "list")
    assert result.exit_code == 0, result.output


def test_format_projections_print_what_scripts_read(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/j1", {"jobId": "j1", "state": "SUCCEEDED"})
    result = invoke(fake_ml.url, "jobs", "describe", "j1", "--format", "value(state)")
    assert result.exit_code == 0, result.output
    assert result.stdout == "SUCCEEDED\n"
    result = invoke(fake_ml.url, "jobs", "describe", "j1", "--format", "csv(jobId,state)")
    assert result.stdout == "jobId,state\nj1,SUCCEEDED\n"
    bad = invoke(fake_ml.url, "jobs", "describe", "j1", "--format", "xml")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("ERROR: (cairn.jobs.describe) Invalid value for '--format'")


@pytest.mark.parametrize("where", ["after", "before", "short"])
def test_quiet_answers_the_prompt_with_its_default(fake_ml: FakeMl, where: str) -> None:
    fake_ml.answer("DELETE", f"{P}/models/m", {"name": "projects/proj/operations/d", "done": True})
    args = {
        "after": ["models", "delete", "m", "--quiet"],
        "before": ["--quiet", "models", "delete", "m"],
        "short": ["-q", "models", "delete", "m"],
    }[where]
    result = invoke(fake_ml.url, *args)
    assert result.exit_code == 0, result.output
    assert [r.method for r in fake_ml.requests] == ["DELETE"]


def test_without_a_terminal_the_answer_is_read_from_stdin_as_gcloud_reads_it(
    fake_ml: FakeMl,
) -> None:
    """gcloud's prompts take their default at the end of input, so scripts written for it
    delete without -q; an explicit "n" still says no."""
    declined = invoke(fake_ml.url, "models", "delete", "m", input="n\n")
    assert declined.exit_code == 1
    assert "Aborted by user." in declined.stderr
    assert fake_ml.requests == []
    fake_ml.answer("DELETE", f"{P}/models/m", {"name": "projects/proj/operations/d", "done": True})
    unattended = invoke(fake_ml.url, "models", "delete", "m", input="")
    assert unattended.exit_code == 0, unattended.output
    assert "Do you want to continue (Y/n)?" in unattended.stderr
    assert [r.method for r in fake_ml.requests] == ["DELETE"]


def test_quiet_turns_a_prompt_without_default_into_an_error(fake_ml: FakeMl) -> None:
    result = invoke(fake_ml.url, "auth", "login", "--quiet")
    assert result.exit_code == 1
    assert result.stderr.startswith("ERROR: (cairn.auth.login) argument --code: ")
    assert fake_ml.requests == []


def test_verbosity_is_accepted_anywhere(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/models", {"models": []})
    for args in (
        ["--verbosity", "debug", "models", "list"],
        ["models", "list", "--verbosity", "NONE"],
    ):
        result = invoke(fake_ml.url, *args)
        assert result.exit_code == 0, result.output


# -- one error format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "command", "exit_code"),
    [
        (["storage", "ls", "--bogus"], "cairn.storage.ls", 2),
        (["data", "profile", "/no/such/file.csv"], "cairn.data.profile", 2),
        (["data", "split", "/no/such.csv", "-o", "x", "--method", "RANDOM"], "cairn.data.split", 2),
        (["server", "--host", "192.0.2.1"], "cairn.server", 2),
        (
            ["local", "predict", "--model-dir", "/nowhere", "--framework", "pytorch"],
            "cairn.local.predict",
            2,
        ),
        (
            ["jobs", "submit", "training", "j", "--scale-tier", "huge"],
            "cairn.jobs.submit.training",
            2,
        ),
        (["nosuchgroup"], "cairn", 2),
        (["jobs", "nosuch"], "cairn.jobs", 2),
    ],
)
def test_every_group_prints_errors_in_one_format(
    args: list[str], command: str, exit_code: int, tmp_path: Path
) -> None:
    result = CliRunner(env={"CAIRN_HOME": str(tmp_path)}).invoke(cli, args, prog_name="cairn")
    assert result.exit_code == exit_code, result.output
    assert result.stderr.startswith(f"ERROR: ({command}) "), result.stderr
    assert "Traceback" not in result.stderr and "Error: " not in result.stderr


def test_data_errors_from_the_work_itself_use_the_format_too(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner(env={"CAIRN_HOME": str(tmp_path)}).invoke(
        cli, ["data", "split", str(bad), "-o", str(tmp_path / "out"), "--label", "nope"]
    )
    assert result.exit_code == 1, result.output
    last = result.stderr.splitlines()[-1]  # after the progress line
    assert last.startswith("ERROR: (cairn.data.split) ") and "nope" in last, result.stderr


# -- checked before anything is uploaded --------------------------------------------------------


def test_an_invalid_job_id_uploads_nothing(fake_ml: FakeMl, tmp_path: Path) -> None:
    package = make_trainer(tmp_path / "src")
    result = invoke(
        fake_ml.url, "jobs", "submit", "training", "bad-id", "--package-path", str(package),
        "--module-name", "trainer.task", "--staging-bucket", "gs://stage",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("ERROR: (cairn.jobs.submit.training) argument JOB: ")
    assert fake_ml.requests == []


def test_a_taken_job_id_uploads_nothing(fake_ml: FakeMl, tmp_path: Path) -> None:
    fake_ml.answer("GET", f"{P}/jobs/taken", {"jobId": "taken", "state": "SUCCEEDED"})
    package = make_trainer(tmp_path / "src")
    result = invoke(
        fake_ml.url, "jobs", "submit", "training", "taken", "--package-path", str(package),
        "--module-name", "trainer.task", "--staging-bucket", "gs://stage",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Job [taken] already exists" in result.stderr
    assert [r.method for r in fake_ml.requests] == ["GET"]


def test_a_bad_field_in_the_config_uploads_nothing(fake_ml: FakeMl, tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text("trainingInput:\n  scaleTier: ENORMOUS\n")
    package = make_trainer(tmp_path / "src")
    result = invoke(
        fake_ml.url, "jobs", "submit", "training", "j9", "--package-path", str(package),
        "--module-name", "trainer.task", "--staging-bucket", "gs://stage", "--config", str(config),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "scale_tier" in result.stderr or "scaleTier" in result.stderr
    assert fake_ml.requests == []


@pytest.mark.parametrize(
    ("version", "answers", "fragment"),
    [
        ("v-1", {}, "argument VERSION: "),
        ("v1", {}, "models/m"),  # no such model: the server's NOT_FOUND
        ("v1", {"model": MODEL, "version": {"name": "v1"}}, "already exists"),
    ],
)
def test_versions_create_checks_before_uploading(
    fake_ml: FakeMl, tmp_path: Path, version: str, answers: dict[str, object], fragment: str
) -> None:
    if "model" in answers:
        fake_ml.answer("GET", f"{P}/models/m", answers["model"])
    if "version" in answers:
        fake_ml.answer("GET", f"{V}/{version}", answers["version"])
    (tmp_path / "model.joblib").write_bytes(b"model")
    result = invoke(
        fake_ml.url, "versions", "create", version, "--model", "m", "--origin", str(tmp_path),
        "--framework", "scikit-learn",
    )  # fmt: skip
    assert result.exit_code == 1
    assert fragment in result.stderr
    assert result.stderr.startswith("ERROR: (cairn.versions.create) ")
    assert all(r.method == "GET" for r in fake_ml.requests)  # nothing uploaded


def test_a_missing_resource_says_how_to_find_the_right_name(fake_ml: FakeMl) -> None:
    fake_ml.answer(
        "GET",
        f"{P}/jobs/nosuch",
        {
            "error": {
                "code": 404,
                "status": "NOT_FOUND",
                "message": f"Job {P}/jobs/nosuch does not exist.",
            }
        },
        status=404,
    )
    result = invoke(fake_ml.url, "jobs", "describe", "nosuch")
    assert result.exit_code == 1
    assert "does not exist." in result.stderr
    assert "cairn jobs list" in result.stderr
