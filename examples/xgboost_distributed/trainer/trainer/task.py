"""Train one XGBoost booster across every replica of the job, each on its share of the rows.

AI Platform's trainer contract: `python -m trainer.task --train-file FILE --job-dir DIR`.
Each member of the job's collective (the master and the workers; see collective.py) reads
the CSV, keeps the rows of its rank (row i goes to rank i % world size) and trains; the
histograms are summed across members at every step, so all of them end with the same
booster, the one training on all rows would give. The master writes it to
DIR/model.bst, which `cairn versions create --origin DIR --framework xgboost` deploys.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np
import xgboost as xgb
from xgboost import collective

from trainer.collective import xgboost_collective


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--train-file", required=True, help="CSV with a header; the label is the last column."
    )
    parser.add_argument("--job-dir", required=True, help="Where the master writes the model.")
    parser.add_argument("--num-boost-round", type=int, default=20)
    parser.add_argument("--max-depth", type=int, default=4)
    parser.add_argument("--eta", type=float, default=0.3)
    parser.add_argument(
        "--nthread", type=int, default=1, help="Threads per replica (a replica is a machine)."
    )
    parser.add_argument(
        "--model-file", default="model.bst", help="model.bst, model.json or model.ubj."
    )
    return parser.parse_args(argv)


def task_name() -> str:
    """The replica's name as AI Platform's logs give it, from TF_CONFIG."""
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
    role = {"chief": "master"}.get(task.get("type", "master"), task.get("type", "master"))
    return f"{role}-replica-{task.get('index', 0)}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    table = np.loadtxt(args.train_file, delimiter=",", skiprows=1, ndmin=2)
    with xgboost_collective() as member:
        shard = table[member.rank :: member.world_size]
        print(
            f"{task_name()}: rank {member.rank} of {member.world_size}, "
            f"training on {len(shard)} of {len(table)} rows",
            flush=True,
        )
        features, labels = shard[:, :-1], shard[:, -1]
        params = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": args.max_depth,
            "eta": args.eta,
            "nthread": args.nthread,
            "eval_metric": "logloss",
        }
        booster = xgb.train(params, xgb.DMatrix(features, label=labels), args.num_boost_round)
        rows_trained = int(collective.allreduce(np.array([len(shard)]), collective.Op.SUM)[0])
        if member.is_master:
            job_dir = Path(args.job_dir)
            job_dir.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                # model.bst is AI Platform's name; XGBoost writes it as UBJSON and says so.
                warnings.filterwarnings("ignore", message=".*UBJSON format as default")
                booster.save_model(str(job_dir / args.model_file))
            summary = {"members": member.world_size, "rows_trained": rows_trained}
            (job_dir / "training.json").write_text(json.dumps(summary) + "\n")
            print(f"saved {job_dir / args.model_file}: {rows_trained} rows in all", flush=True)


if __name__ == "__main__":
    main()
