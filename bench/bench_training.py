"""Monthly training on a 12-month window: cold start, warm start, and the seed's recipe on the same rows.

Data: one simulated year (2025, the default world seed, ~440,000 applications) labelled directly
from the simulator's outcomes. Split out of time: December is the holdout; January–November are the
development rows every recipe learns from (ours cuts its validation slice out of them, the seed's
cross-validates on them).

- cold: ``train_model`` with the default ``TrainingConfig`` (``n_trials`` Optuna trials, the first at
  the recipe's default parameters, + LightGBM refit + calibration);
- warm: the same, warm-started from the cold model's tuned parameters (``warm_start_trials`` trials,
  the first at those parameters) — what a monthly retrain does with the incumbent's parameters. Same
  rows here, so it is the best case for a warm start: its first trial reproduces the cold study's best;
- seed: XGBoost, ``RandomizedSearchCV(n_iter=5, cv=5, scoring="roc_auc")`` over the seed's ranges,
  categoricals one-hot encoded, all 40 columns.

Every model's kappa is measured at the ONE decision policy's screen (``p >= refer_at``: referred or
declined, against the claim outcome), as promotion compares models; the seed's kappa at its own 0.5
is shown for reference. Budgets are trial counts, so the figures other than times do not depend on
the machine's load; times do, so the 1-minute load average is recorded before and after, with
``OMP_WAIT_POLICY`` and LightGBM's thread count. With libgomp's default (spinning) waits, a 2-thread
LightGBM fit on a machine busier than its cores ran 2-100x slower here than with ``PASSIVE`` waits;
with passive waits two threads were in turn slower than one even on an idle machine (2026-11-26: the
cold start 270 s on two threads, 147 s on one, the same model), so the recipe fits on one.

Usage: ``python bench/bench_training.py [--rows N] [--skip-seed]``. ``--rows`` subsamples the window
(same rows for every recipe) when the seed's 25 fits on the full year are too slow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date

import numpy as np
import pandas as pd

from claims_platform.core import schema, settings
from claims_platform.core.policy import DecisionPolicy
from claims_platform.source.generator import World, simulate_days
from claims_platform.training.metrics import evaluate
from claims_platform.training.split import out_of_time_split
from claims_platform.training.train import TrainedModel, TrainingConfig, train_model

WINDOW = (date(2025, 1, 1), date(2025, 12, 31))
TRAINING_BUDGET_SECONDS = 120.0
WARM_BUDGET_SECONDS = 60.0
WARM_TIME_SHARE_TARGET = 0.5  # a warm start reaches the cold start's kappa in at most half its time
SEED_THRESHOLD = 0.5  # the seed's own decision threshold, shown for reference only
METRICS = (
    ("kappa", "higher"),
    ("roc_auc", "no lower"),
    ("brier", "lower"),
    ("ece", "lower"),
    ("log_loss", "lower"),
)


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


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _training_records(
    name: str, trained: TrainedModel, metrics: dict[str, float], budget: float
) -> list[dict]:
    tuning = trained.tuning
    return [
        {
            "name": f"{name}_trials",
            "value": tuning["n_complete"],
            "unit": "trials",
            "target": f"= {tuning['n_trials']}",
        },
        {"name": f"{name}_best_trial", "value": tuning["best_trial"], "unit": "trial", "target": "-"},
        {
            "name": f"{name}_wall_time",
            "value": round(trained.fit_seconds, 1),
            "unit": "s",
            "target": f"<= {budget:.0f}",
        },
        *(
            {"name": f"{name}_{stage}_time", "value": round(seconds, 1), "unit": "s", "target": "-"}
            for stage, seconds in trained.stage_seconds.items()
        ),
        {"name": f"{name}_best_iteration", "value": trained.best_iteration, "unit": "trees", "target": "-"},
        {"name": f"{name}_calibration", "value": trained.calibration["method"], "unit": "-", "target": "-"},
        *(
            {"name": f"{name}_{metric}", "value": round(metrics[metric], 4), "unit": "-", "target": "-"}
            for metric, _ in METRICS
        ),
    ]


def run(rows: int | None = None, skip_seed: bool = False) -> list[dict]:
    """Measure; one record per figure (name, value, unit, target)."""
    screen = DecisionPolicy().refer_at
    load_before = _load()
    window = labelled_year(rows)
    parts = out_of_time_split(window)
    y_holdout = parts.holdout[schema.CLAIM_STATUS].to_numpy()
    config = TrainingConfig()

    _progress(f"window: {len(window)} rows; cold start on {len(parts.development)} (load {load_before})")
    cold = train_model(parts.development, config)
    cold_metrics = evaluate(y_holdout, cold.predict_proba(parts.holdout), screen)
    _progress(
        f"cold: {cold.tuning['n_complete']} trials, {cold.fit_seconds:.1f} s, kappa {cold_metrics['kappa']:.4f}"
    )
    warm = train_model(parts.development, config, warm_start=cold.best_params)
    warm_metrics = evaluate(y_holdout, warm.predict_proba(parts.holdout), screen)
    _progress(
        f"warm: {warm.tuning['n_complete']} trials, {warm.fit_seconds:.1f} s, kappa {warm_metrics['kappa']:.4f}"
    )
    time_share = warm.fit_seconds / cold.fit_seconds
    reached = warm_metrics["kappa"] >= cold_metrics["kappa"]

    records = [
        {"name": "window_rows", "value": len(window), "unit": "rows", "target": "about 440,000 (12 months)"},
        {"name": "holdout_rows", "value": len(parts.holdout), "unit": "rows", "target": "December"},
        {
            "name": "policy_screen",
            "value": screen,
            "unit": "p",
            "target": "kappa of p >= refer_at (refer or decline)",
        },
        {"name": "load_average_before", "value": load_before, "unit": "-", "target": "1-minute, 2 cores"},
        {
            "name": "omp_wait_policy",
            "value": os.environ.get("OMP_WAIT_POLICY", "default"),
            "unit": "-",
            "target": "-",
        },
        {"name": "lightgbm_threads", "value": config.num_threads, "unit": "threads", "target": "-"},
        *_training_records("cold", cold, cold_metrics, TRAINING_BUDGET_SECONDS),
        *_training_records("warm", warm, warm_metrics, WARM_BUDGET_SECONDS),
        {
            "name": "warm_kappa_minus_cold",
            "value": round(warm_metrics["kappa"] - cold_metrics["kappa"], 4),
            "unit": "-",
            "target": ">= 0 (warm reaches cold's kappa)",
        },
        {
            "name": "warm_time_share_of_cold",
            "value": round(100 * time_share, 1),
            "unit": "%",
            "target": f"<= {100 * WARM_TIME_SHARE_TARGET:.0f} (kappa {'reached' if reached else 'NOT reached'})",
        },
    ]
    if not skip_seed:
        _progress("fitting the seed recipe (25 cross-validation fits and a refit)")
        p_seed, seed_seconds = seed_recipe(parts.development, parts.holdout)
        _progress(f"seed recipe fitted in {seed_seconds:.1f} s")
        seed = evaluate(y_holdout, p_seed, screen)
        records.append(
            {"name": "seed_wall_time", "value": round(seed_seconds, 1), "unit": "s", "target": "-"}
        )
        records.extend(
            {
                "name": f"seed_{metric}",
                "value": round(seed[metric], 4),
                "unit": "-",
                "target": f"cold {better}: {cold_metrics[metric]:.4f}",
            }
            for metric, better in METRICS
        )
        records.append(
            {
                "name": "seed_kappa_at_its_0.5",
                "value": round(evaluate(y_holdout, p_seed, SEED_THRESHOLD)["kappa"], 4),
                "unit": "-",
                "target": "reference (the seed's own threshold)",
            }
        )
    records.append(
        {"name": "load_average_after", "value": _load(), "unit": "-", "target": "1-minute, 2 cores"}
    )
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="subsample the window to this many rows")
    parser.add_argument("--skip-seed", action="store_true", help="time our training only")
    args = parser.parse_args(argv)
    records = run(args.rows, args.skip_seed)
    for record in records:
        print(f"{record['name']:<30} {record['value']!s:>12} {record['unit']:<6} {record['target']}")
    print(json.dumps(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
