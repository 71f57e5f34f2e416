"""A scikit-learn trainer in AI Platform's shape: flags in, a model under --job-dir out.

Run by Cairn as `python -m trainer.task --train-file ... --job-dir ...`; `gs://` URIs
of local buckets arrive as local paths. In a hyperparameter tuning job each trial gets
`--C=VALUE`, reports its held-out accuracy with cloudml-hypertune, and writes its model
under `<job dir>/<trial id>/`, as AI Platform's trainers do.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import hypertune
import joblib
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def read_csv(path: str) -> tuple[list[list[float]], list[int]]:
    features, labels = [], []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            label = int(row.pop("species"))
            features.append([float(value) for value in row.values()])
            labels.append(label)
    return features, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-file", required=True, help="CSV with a 'species' label column")
    parser.add_argument("--job-dir", required=True, help="where the model is written")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    args = parser.parse_args()

    features, labels = read_csv(args.train_file)
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.25, random_state=0, stratify=labels
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=500))
    model.fit(train_x, train_y)
    accuracy = model.score(test_x, test_y)
    print(f"trained on {len(train_x)} rows; held-out accuracy {accuracy:.3f}", flush=True)

    trial = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("trial")
    hypertune.HyperTune().report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag="accuracy", metric_value=accuracy, global_step=1
    )
    export = Path(args.job_dir, trial or "", "model")
    export.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, export / "model.joblib")
    (export / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    print(
        f"model written to {export} (job {os.environ.get('CLOUD_ML_JOB_ID', 'local')})", flush=True
    )


if __name__ == "__main__":
    main()
