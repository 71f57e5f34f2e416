"""examples/xgboost_distributed on a real server: one booster trained by a master and two
workers over XGBoost's collective, then deployed and asked for predictions.

The job is submitted as the example's README says (`cairn jobs submit training --config
config.yaml --package-path ...`). All three replicas must have taken part: each logs its
rank and its share of the rows, the master's allreduce counts every row, and the booster
predicts exactly as one trained in one process on all the rows (the example's features have
fewer distinct values than XGBoost's bins, so the histograms are exact).
"""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
import xgboost as xgb
from tests.client.cli_runner import invoke
from tests.remote import unique, upload_file, wait_job, wait_operation

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "xgboost_distributed"
PROJECT = "xgb_dist"
_SHARE = re.compile(r"(\S+): rank (\d) of 3, training on (\d+) of 3000 rows")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_data", EXAMPLE / "generate_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_log_entries(server: Any, job: str) -> list[dict[str, Any]]:
    """Every line of the job's logs, read through the server's log API until it is done."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    deadline = time.monotonic() + 60
    while True:
        params = {"cursor": cursor} if cursor else {}
        batch = httpx.get(
            f"{server.url}/cairn/v1/projects/{PROJECT}/jobs/{job}/logs",
            params=params,
            headers=server.headers(),
            timeout=30,
        ).json()
        entries += batch["entries"]
        if not batch["entries"] and batch.get("cursor") == cursor:
            return entries
        cursor = batch.get("cursor")
        assert time.monotonic() < deadline, "the job's logs never ended"


@pytest.mark.slow
def test_master_and_two_workers_train_one_booster_that_deploys(
    cairn_server: Any, ml: Any, tmp_path: Path
) -> None:
    generator = _generator()
    table = generator.generate(3000)
    csv = tmp_path / "train.csv"
    generator.write_csv(csv, table)
    data_uri = upload_file(cairn_server.url, csv, "xgb-data", "train.csv", cairn_server.headers())

    job = unique("xgb_dist")
    submitted = invoke(
        cairn_server.url,
        "jobs", "submit", "training", job,
        "--config", str(EXAMPLE / "config.yaml"),
        "--package-path", str(EXAMPLE / "trainer" / "trainer"),
        "--module-name", "trainer.task",
        "--staging-bucket", "gs://xgb-staging",
        "--job-dir", f"gs://xgb-models/{job}",
        "--", "--train-file", data_uri,
        project=PROJECT,
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    described = wait_job(ml, f"projects/{PROJECT}/jobs/{job}", timeout=600)
    assert described["state"] == "SUCCEEDED", described
    assert described["trainingInput"]["workerCount"] in ("2", 2)

    shares = {}
    for entry in _all_log_entries(cairn_server, job):
        if found := _SHARE.search(entry["text"]):
            assert found.group(1) == entry["taskName"]
            shares[entry["taskName"]] = (int(found.group(2)), int(found.group(3)))
    assert shares == {
        "master-replica-0": (0, 1000),
        "worker-replica-0": (1, 1000),
        "worker-replica-1": (2, 1000),
    }
    job_dir = cairn_server.home / "storage" / "xgb-models" / job
    assert (job_dir / "training.json").read_text().strip() == (
        '{"members": 3, "rows_trained": 3000}'
    )

    # The booster one process trains on all the rows, with the trainer's parameters.
    features, labels = table[:, :-1], table[:, -1]
    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": 4,
        "eta": 0.3,
        "nthread": 1,
        "eval_metric": "logloss",
    }
    alone = xgb.train(params, xgb.DMatrix(features, label=labels), 20)
    distributed = xgb.Booster(model_file=str(job_dir / "model.bst"))
    assert distributed.num_boosted_rounds() == 20
    expected = alone.inplace_predict(features)
    np.testing.assert_allclose(distributed.inplace_predict(features), expected, atol=1e-6)

    model = unique("xgb_model")
    ml.projects().models().create(parent=f"projects/{PROJECT}", body={"name": model}).execute()
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"projects/{PROJECT}/models/{model}",
            body={
                "name": "v1",
                "deploymentUri": f"gs://xgb-models/{job}",
                "framework": "XGBOOST",
            },
        )
        .execute()
    )
    done = wait_operation(ml, operation["name"], timeout=300)
    assert "error" not in done, done
    rows = features[:5].tolist()
    answer = (
        ml.projects()
        .predict(name=f"projects/{PROJECT}/models/{model}/versions/v1", body={"instances": rows})
        .execute()
    )
    np.testing.assert_allclose(answer["predictions"], expected[:5], atol=1e-6)
