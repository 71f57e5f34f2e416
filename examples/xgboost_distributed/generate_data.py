"""Write the example's training data: a small, seeded binary classification table as CSV.

Six integer features (0-49: few distinct values, so XGBoost's histogram bins are exact and
the distributed booster matches the one-process booster on the same rows) and a label
`approved` drawn from a logistic model of them.

    python examples/xgboost_distributed/generate_data.py --output train.csv [--rows 3000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

COLUMNS = ["age_band", "income_band", "debt_band", "tenure", "accounts", "late_payments"]
LABEL = "approved"


def generate(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    features = rng.integers(0, 50, size=(rows, len(COLUMNS))).astype(float)
    logit = (
        0.08 * features[:, 1]
        - 0.10 * features[:, 2]
        + 0.03 * features[:, 3]
        - 0.15 * np.maximum(features[:, 5] - 25, 0)
        + 0.5
    )
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(float)
    return np.column_stack([features, labels])


def write_csv(path: Path, table: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join([*COLUMNS, LABEL])
    np.savetxt(path, table, delimiter=",", fmt="%d", header=header, comments="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write.")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_csv(args.output, generate(args.rows, args.seed))
    print(f"wrote {args.rows} rows to {args.output}")


if __name__ == "__main__":
    main()
