"""Tune, fit and calibrate the LightGBM claim model on a window's development rows (train + validation).

Recipe (each step sees only what it may):

1. :func:`~claims_platform.training.split.validation_split` cuts the most recent ~15% of the
   development rows (by day) as the validation slice. The holdout month was removed by the caller.
2. **Tuning** — Optuna's TPE sampler (fixed seed) over LightGBM's main capacity and regularisation
   knobs, within ``n_trials`` and ``timeout_seconds``. Each trial fits on a stratified SUBSAMPLE of
   the train rows (``tuning_rows``; the budget is 5 minutes for ~440k rows on 2 cores) and early-stops
   on the validation slice, never on train rows. The objective is validation **log loss**: a proper
   scoring rule that rewards sharp AND calibrated probabilities — what the reserve (Σp) and the
   decision thresholds consume — and, unlike AUC, it is the very quantity early stopping watches, so
   "best iteration" and "best trial" mean the same thing. No intermediate-value pruning: comparing
   log loss after N rounds would systematically kill small learning rates; a wall-clock deadline
   bounds the study instead.
3. **Refit** on ALL train rows with the best parameters; early stopping on the validation slice again
   finds the number of trees for the larger sample (the best iteration of the subsample fit would be too
   few). The final booster keeps exactly ``best_iteration`` trees.
4. **Calibration** on the validation margins: isotonic vs sigmoid by cross-fitted Brier
   (:mod:`~claims_platform.training.calibration`).
5. **Decision threshold**: the kappa-maximising one on the chosen calibrator's out-of-fold validation
   probabilities (:func:`~claims_platform.training.metrics.choose_threshold`), frozen with the model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd

from claims_platform import schema
from claims_platform.models import runtime
from claims_platform.training import features
from claims_platform.training.calibration import choose_calibrator
from claims_platform.training.config import TrainingConfig
from claims_platform.training.metrics import choose_threshold, evaluate
from claims_platform.training.split import validation_split

EXAMPLE_ROWS = 5  # warehouse-format rows kept as the registered model's input example


@dataclass
class TrainedModel:
    """A fitted, calibrated booster with everything needed to log, explain and use it."""

    booster: lgb.Booster
    calibrator: dict[str, Any]  # JSON form, see runtime.apply_calibrator
    spec: dict[str, Any]  # JSON form, see features.feature_spec
    threshold: float  # the frozen production decision threshold (metrics.py says why)
    best_params: dict[str, Any]
    best_iteration: int
    tuning: dict[str, Any]  # summary of the Optuna study
    calibration: dict[str, Any]  # chosen method and the out-of-fold scores of every candidate
    validation_metrics: dict[str, float]  # chosen calibrator, out-of-fold, at the threshold
    rows: dict[str, int]
    fit_seconds: float
    stage_seconds: dict[str, float]  # prepare / tuning / refit / calibration wall times
    input_example: pd.DataFrame = field(repr=False)  # a few rows in the warehouse's column format

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated claim probabilities for warehouse-format rows (the pyfunc's exact code path)."""
        return runtime.predict_claim_probability(self.booster, self.calibrator, self.spec, frame)

    def params_for_logging(self) -> dict[str, Any]:
        """Flat parameters for MLflow: tuned LightGBM params, budget, threshold, calibration, rows."""
        return {
            **{f"lgbm_{k}": v for k, v in self.best_params.items()},
            "best_iteration": self.best_iteration,
            "decision_threshold": self.threshold,
            "calibration_method": self.calibration["method"],
            "dropped_columns": ",".join(self.spec["dropped"]),
            **{f"{k}_rows": v for k, v in self.rows.items()},
            "n_trials_run": self.tuning["n_trials"],
        }


def _base_params(config: TrainingConfig) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "verbosity": -1,
        "num_threads": config.num_threads,
        "seed": config.seed,
        "deterministic": True,
        "force_col_wise": True,  # skip LightGBM's row/col-wise timing probe on every fit
        "bagging_freq": 1,
    }


def _suggest(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 500, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l1": trial.suggest_float("lambda_l1", 1e-8, 10.0, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-8, 10.0, log=True),
        "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
    }


# Close to LightGBM's defaults (learning rate halved, bagging off) as the first trial, so TPE starts
# from a known-sane point.
_DEFAULT_TRIAL = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "lambda_l1": 1e-8,
    "lambda_l2": 1e-8,
    "cat_smooth": 10.0,
}


def _deadline_callback(deadline: float):
    """End a fit at its best round so far once ``deadline`` (``time.perf_counter``) has passed.

    Optuna's timeout is only checked between trials; one slow trial (many leaves, a small learning
    rate, a busy machine) could otherwise overrun the whole training budget. The cut fit is a real
    model validated at its best round, so its score is a fair — if pessimistic — trial value.
    """
    best: dict[str, Any] = {}

    def callback(env: lgb.callback.CallbackEnv) -> None:
        score = next(r for r in env.evaluation_result_list if r[0] == "validation")
        if "score" not in best or score[2] < best["score"][2]:
            best.update(score=score, iteration=env.iteration)
        if time.perf_counter() > deadline:
            raise lgb.callback.EarlyStopException(best["iteration"], [best["score"]])

    callback.order = 40  # after LightGBM's own early stopping (order 30) has had its say this round
    return callback


def _dataset(x: pd.DataFrame, y: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
    # feature_pre_filter off: it would bake the first trial's min_child_samples into the binned data.
    return lgb.Dataset(
        x,
        label=y,
        reference=reference,
        params={"feature_pre_filter": False, "verbosity": -1},
        free_raw_data=False,
    ).construct()


def _stratified_subsample(y: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """Row positions of a class-stratified random subsample of ``rows`` rows (all rows if fewer)."""
    if rows >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(members, size=round(rows * len(members) / len(y)), replace=False)
        for members in (np.flatnonzero(y == 0), np.flatnonzero(y == 1))
    ]
    return np.sort(np.concatenate(picked))


def _fit(
    params: dict[str, Any], train: lgb.Dataset, valid: lgb.Dataset, config: TrainingConfig, callbacks: list
) -> lgb.Booster:
    return lgb.train(
        params,
        train,
        num_boost_round=config.max_boost_rounds,
        valid_sets=[valid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False), *callbacks],
    )


def _tune(
    train: lgb.Dataset, valid: lgb.Dataset, config: TrainingConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the Optuna study; ``(best_params, summary)``."""

    deadline = time.perf_counter() + config.timeout_seconds

    def objective(trial: optuna.Trial) -> float:
        params = {**_base_params(config), **_suggest(trial)}
        booster = _fit(params, train, valid, config, [_deadline_callback(deadline)])
        trial.set_user_attr("best_iteration", booster.best_iteration)
        return float(booster.best_score["validation"]["binary_logloss"])

    optuna_logging = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)  # one INFO line per trial is noise in a Dagster log
    try:
        study = optuna.create_study(
            direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=config.seed),
        )
        study.enqueue_trial(_DEFAULT_TRIAL)
        study.optimize(objective, n_trials=config.n_trials, timeout=config.timeout_seconds)
    finally:
        optuna.logging.set_verbosity(optuna_logging)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise RuntimeError(f"no Optuna trial completed within the budget ({len(study.trials)} started)")
    best = study.best_trial
    summary = {
        "objective": "validation binary log loss (minimised)",
        "n_trials": len(study.trials),
        "n_complete": len(completed),
        "best_trial": best.number,
        "best_value": float(best.value),
        "default_trial_value": float(study.trials[0].value) if study.trials[0].value is not None else None,
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "best_iteration": t.user_attrs.get("best_iteration"),
                "seconds": t.duration.total_seconds() if t.duration else None,
                **t.params,
            }
            for t in study.trials
        ],
    }
    return dict(best.params), summary


def train_model(development: pd.DataFrame, config: TrainingConfig | None = None) -> TrainedModel:
    """Tune, refit and calibrate on ``development`` rows (the window minus its holdout month).

    ``development`` needs ``application_date``, ``claim_status`` and the schema's features; it must
    NOT contain holdout rows (use :func:`~claims_platform.training.split.out_of_time_split`).
    """
    config = config or TrainingConfig()
    started = time.perf_counter()
    spec = features.feature_spec()
    train, validation, validation_start = validation_split(development, fraction=config.validation_fraction)
    y_train = train[schema.CLAIM_STATUS].to_numpy(np.int64)
    y_valid = validation[schema.CLAIM_STATUS].to_numpy(np.int64)
    x_train = runtime.prepare_features(train, spec)
    x_valid = runtime.prepare_features(validation, spec)

    stage_seconds = {"prepare": time.perf_counter() - started}
    tuning_rows = _stratified_subsample(y_train, config.tuning_rows, config.seed)
    tuning_set = _dataset(x_train.iloc[tuning_rows], y_train[tuning_rows])
    best_params, tuning = _tune(tuning_set, _dataset(x_valid, y_valid, reference=tuning_set), config)

    stage_seconds["tuning"] = time.perf_counter() - started - sum(stage_seconds.values())
    full_set = _dataset(x_train, y_train)
    params = {**_base_params(config), **best_params}
    booster = _fit(params, full_set, _dataset(x_valid, y_valid, reference=full_set), config, [])
    best_iteration = int(booster.best_iteration) or booster.current_iteration()
    # Keep exactly the early-stopped trees, so the saved text model predicts what was validated.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best_iteration))

    stage_seconds["refit"] = time.perf_counter() - started - sum(stage_seconds.values())
    margin_valid = booster.predict(x_valid, raw_score=True)
    choice = choose_calibrator(margin_valid, y_valid, folds=config.calibration_folds, seed=config.seed)
    threshold = choose_threshold(y_valid, choice.out_of_fold)
    validation_metrics = evaluate(y_valid, choice.out_of_fold, threshold)
    stage_seconds["calibration"] = time.perf_counter() - started - sum(stage_seconds.values())

    return TrainedModel(
        booster=booster,
        calibrator=choice.calibrator,
        spec=spec,
        threshold=threshold,
        best_params={**best_params, "bagging_freq": 1},
        best_iteration=best_iteration,
        tuning=tuning,
        calibration={
            "method": choice.method,
            "validation_start": validation_start.isoformat(),
            **choice.report,
        },
        validation_metrics=validation_metrics,
        rows={"train": len(train), "validation": len(validation), "tuning": len(tuning_rows)},
        fit_seconds=time.perf_counter() - started,
        stage_seconds=stage_seconds,
        input_example=validation[[c for c in schema.APPLICATION_COLUMNS if c in validation.columns]]
        .head(EXAMPLE_ROWS)
        .reset_index(drop=True),
    )
