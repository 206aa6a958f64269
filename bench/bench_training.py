"""Monthly training on a 12-month window, and our recipe against the seed's on the same rows.

Data: one simulated year (2025, the default world seed, ~440,000 applications) labelled directly
from the simulator's outcomes. Split out of time: December is the holdout; January–November are the
development rows both recipes learn from (ours cuts its validation slice out of them, the seed's
cross-validates on them).

- ours: ``train_model`` with the default ``TrainingConfig`` (Optuna + LightGBM + calibration),
  evaluated at its frozen, validation-chosen threshold;
- seed: XGBoost, ``RandomizedSearchCV(n_iter=5, cv=5, scoring="roc_auc")`` over the seed's ranges,
  categoricals one-hot encoded, all 40 columns, decision threshold 0.5 — as the seed did.

Usage: ``python bench/bench_training.py [--rows N] [--skip-seed]``. ``--rows`` subsamples the window
(same rows for both recipes) when the seed's 25 fits on the full year are too slow.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date

import numpy as np
import pandas as pd

from claims_platform import schema, settings
from claims_platform.source.generator import World, simulate_days
from claims_platform.training.metrics import evaluate
from claims_platform.training.split import out_of_time_split
from claims_platform.training.train import TrainingConfig, train_model

WINDOW = (date(2025, 1, 1), date(2025, 12, 31))
TRAINING_BUDGET_SECONDS = 300.0
SEED_THRESHOLD = 0.5


def labelled_year(rows: int | None = None, seed: int = settings.DEFAULT_WORLD_SEED) -> pd.DataFrame:
    """The simulated year joined to its outcomes; ``rows`` random rows of it when given."""
    applications, outcomes = simulate_days(World.from_seed(seed), *WINDOW)
    frame = applications.merge(
        outcomes[[schema.APPLICATION_ID, schema.CLAIM_STATUS]], on=schema.APPLICATION_ID
    )
    if rows is not None and rows < len(frame):
        frame = frame.sample(n=rows, random_state=0).sort_values(schema.APPLICATION_ID, ignore_index=True)
    return frame


def _one_hot(frame: pd.DataFrame, columns: pd.Index | None = None) -> pd.DataFrame:
    encoded = pd.get_dummies(
        frame[list(schema.FEATURES)], columns=list(schema.CATEGORICAL_FEATURES), dtype=np.uint8
    )
    return encoded if columns is None else encoded.reindex(columns=columns, fill_value=0)


def seed_recipe(development: pd.DataFrame, holdout: pd.DataFrame) -> tuple[np.ndarray, float]:
    """The seed's XGBoost random search on ``development``: ``(holdout probabilities, fit seconds)``."""
    from scipy.stats import randint, uniform
    from sklearn.model_selection import RandomizedSearchCV
    from xgboost import XGBClassifier

    x_dev = _one_hot(development)
    x_holdout = _one_hot(holdout, x_dev.columns)
    distributions = {
        "n_estimators": randint(50, 501),
        "learning_rate": uniform(0.01, 0.75),
        "subsample": uniform(0.25, 0.75),
        "max_depth": randint(1, 9),
        "colsample_bytree": uniform(0.1, 0.75),
        "min_child_weight": [1, 3, 5, 7, 9],
    }
    search = RandomizedSearchCV(
        XGBClassifier(n_jobs=2, random_state=0, tree_method="hist"),
        distributions,
        n_iter=5,
        cv=5,
        scoring="roc_auc",
        random_state=0,
        n_jobs=1,
    )
    started = time.perf_counter()
    search.fit(x_dev, development[schema.CLAIM_STATUS].to_numpy())
    seconds = time.perf_counter() - started
    return search.predict_proba(x_holdout)[:, 1], seconds


def _progress(message: str) -> None:
    print(f"[bench_training] {message}", file=sys.stderr, flush=True)


def run(rows: int | None = None, skip_seed: bool = False) -> list[dict]:
    """Measure; one record per figure (name, value, unit, target)."""
    window = labelled_year(rows)
    parts = out_of_time_split(window)
    y_holdout = parts.holdout[schema.CLAIM_STATUS].to_numpy()
    _progress(f"window: {len(window)} rows; training ours on {len(parts.development)}")
    trained = train_model(parts.development, TrainingConfig())
    _progress(f"ours trained in {trained.fit_seconds:.1f} s {trained.stage_seconds}")
    ours = evaluate(y_holdout, trained.predict_proba(parts.holdout), trained.threshold)
    records = [
        {"name": "window_rows", "value": len(window), "unit": "rows", "target": "about 440,000 (12 months)"},
        {"name": "holdout_rows", "value": len(parts.holdout), "unit": "rows", "target": "December"},
        {
            "name": "training_wall_time",
            "value": round(trained.fit_seconds, 1),
            "unit": "s",
            "target": f"<= {TRAINING_BUDGET_SECONDS:.0f}",
        },
        *(
            {"name": f"training_{stage}_time", "value": round(seconds, 1), "unit": "s", "target": "-"}
            for stage, seconds in trained.stage_seconds.items()
        ),
        {"name": "ours_trials", "value": trained.tuning["n_trials"], "unit": "trials", "target": "-"},
        {"name": "ours_threshold", "value": trained.threshold, "unit": "p", "target": "chosen on validation"},
        {"name": "ours_calibration", "value": trained.calibration["method"], "unit": "-", "target": "-"},
    ]
    seed = None
    if not skip_seed:
        _progress("fitting the seed recipe (25 cross-validation fits and a refit)")
        p_seed, seed_seconds = seed_recipe(parts.development, parts.holdout)
        _progress(f"seed recipe fitted in {seed_seconds:.1f} s")
        seed = {**evaluate(y_holdout, p_seed, SEED_THRESHOLD), "fit_seconds": seed_seconds}
    ours["fit_seconds"] = trained.fit_seconds
    for metric, unit, better in (
        ("kappa", "-", "higher"),
        ("roc_auc", "-", "no lower"),
        ("brier", "-", "lower"),
        ("ece", "-", "lower"),
        ("log_loss", "-", "lower"),
        ("fit_seconds", "s", "lower"),
    ):
        target = f"{better} than seed" + (f" ({seed[metric]:.4f})" if seed else "")
        records.append(
            {"name": f"ours_{metric}", "value": round(ours[metric], 4), "unit": unit, "target": target}
        )
        if seed:
            records.append(
                {"name": f"seed_{metric}", "value": round(seed[metric], 4), "unit": unit, "target": "-"}
            )
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="subsample the window to this many rows")
    parser.add_argument("--skip-seed", action="store_true", help="time our training only")
    args = parser.parse_args(argv)
    records = run(args.rows, args.skip_seed)
    for record in records:
        print(f"{record['name']:<28} {record['value']!s:>12} {record['unit']:<6} {record['target']}")
    print(json.dumps(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
