"""Tune, fit and calibrate the LightGBM claim model on a window's development rows (train + validation).

Recipe (each step sees only what it may):

1. :func:`~claims_platform.training.split.validation_split` cuts the most recent ~15% of the
   development rows (by day) as the validation slice. The holdout month was removed by the caller.
2. **Tuning** — Optuna's TPE sampler (fixed seed) over LightGBM's main capacity and regularisation
   knobs, for a fixed NUMBER of trials: ``n_trials`` from cold, ``warm_start_trials`` when
   warm-started from earlier (eligible) parameters. Each trial fits on a seeded, stratified SUBSAMPLE of
   the train rows (``tuning_rows``) and early-stops on the validation slice, never on train rows. The
   objective is validation **log loss**: a proper scoring rule that rewards sharp AND calibrated
   probabilities — what the reserve (Σp) and the decision policy consume — and, unlike AUC, it is the
   very quantity early stopping watches, so "best iteration" and "best trial" mean the same thing.
   Every trial runs to completion: no pruning (comparing log loss after N rounds would systematically
   kill small learning rates) and no deadline, so the model never depends on the machine's load.
   ``max_tuning_seconds`` is a guard checked between trials: a study slower than that fails the training
   (:class:`TuningGuardExceeded`); it never shortens one.
3. **Refit** on ALL train rows with the best parameters; early stopping on the validation slice again
   finds the number of trees for the larger sample (the best iteration of the subsample fit would be too
   few). The final booster keeps exactly ``best_iteration`` trees.
4. **Calibration**: smoothed isotonic, sigmoid, beta or none by cross-fitted log loss
   (:mod:`~claims_platform.training.calibration`), fitted on margins the booster's recipe gives rows it
   never saw. Up to ``cross_fit_max_rows`` development rows, those are CROSS-FITTED over all of them
   (:func:`cross_fitted_margins`: each fold's rows scored by the same parameters and number of trees
   fitted on the other folds): a young or small-volume model's validation slice holds too few claims to
   place the low tail — 2 months at 50 a day leave 250 validation rows, and every method fitted on them
   expected a third of the accepted applicants' holdout claims; cross-fitted over the 1,550
   development rows, the smoothed isotonic expected 25.1 for 25. Above it, the validation slice alone
   (then at least 22,000 rows) is enough, and five more boosters on that many rows would cost more
   than the training. Once the holdout has judged the model, :meth:`TrainedModel.deployed` refits that
   method on those rows and the holdout for the registered model.

There is no per-model decision threshold: accept / refer / decline is the ONE
:class:`~claims_platform.core.policy.DecisionPolicy`, and the validation metrics are reported at
its screen (``p >= refer_at``: not accepted automatically), as promotion compares models.

**Warm start.** A monthly retrain passes the incumbent's tuned parameters (its ``best_params``): they
are the first trial, and TPE samples around them from the second trial on (no random start-up
trials), so a smaller budget matches the incumbent. Keys outside the search space are dropped,
values outside it clipped, missing ones taken from the default trial — all recorded in ``tuning``.

**Reproducible.** LightGBM runs with ``deterministic=True``, ``force_col_wise=True`` and a fixed
``num_threads``; Optuna's sampler, the subsample and the calibration folds are seeded; trials run one
at a time. The same development rows and config give the same booster, byte for byte.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from claims_platform.core import schema
from claims_platform.core.policy import DecisionPolicy
from claims_platform.training import features, runtime
from claims_platform.training.calibration import choose_calibrator, deployed_calibration
from claims_platform.training.config import TrainingConfig
from claims_platform.training.metrics import evaluate
from claims_platform.training.split import validation_split

# A study that used this share of max_tuning_seconds is recorded as close to the guard.
GUARD_CLOSE_SHARE = 0.5


class TuningGuardExceeded(RuntimeError):
    """The tuning study ran longer than ``TrainingConfig.max_tuning_seconds``: the training fails."""


@dataclass
class TrainedModel:
    """A fitted, calibrated booster with everything needed to log, explain and use it."""

    booster: lgb.Booster
    calibrator: dict[str, Any]  # JSON form, see runtime.apply_calibrator
    spec: dict[str, Any]  # JSON form, see features.feature_spec
    best_params: dict[str, Any]  # tuned LightGBM params: what a later retrain warm-starts from
    best_iteration: int
    tuning: dict[str, Any]  # summary of the Optuna study (budget, warm start, guard, every trial)
    calibration: dict[str, Any]  # chosen method and the out-of-fold scores of every candidate
    validation_metrics: dict[
        str, float
    ]  # chosen calibrator, out-of-fold on its rows, at the decision policy's screen
    rows: dict[str, int]
    fit_seconds: float
    stage_seconds: dict[str, float]  # prepare / tuning / refit / calibration wall times
    # The calibration rows' margins and labels (cross-fitted development, or the validation slice), for
    # the calibrator deployed with the holdout (not logged).
    calibration_margin: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    calibration_y: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64), repr=False)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated claim probabilities for warehouse-format rows (the pyfunc's exact code path)."""
        return runtime.predict_claim_probability(self.booster, self.calibrator, self.spec, frame)

    def deployed(self, holdout: pd.DataFrame, holdout_month: str, screen: float) -> TrainedModel:
        """The model as it is registered, once its holdout has judged it: the same booster, its calibration
        method refitted on validation AND holdout (:func:`~claims_platform.training.calibration.deployed_calibration`)."""
        margin = self.booster.predict(runtime.prepare_features(holdout, self.spec), raw_score=True)
        calibrator = deployed_calibration(
            self.calibration["method"], self.calibrator, (self.calibration_margin, self.calibration_y),
            (margin, holdout[schema.CLAIM_STATUS].to_numpy(np.int64)), holdout_month, screen,
        )  # fmt: skip
        return replace(self, calibrator=calibrator)

    def params_for_logging(self) -> dict[str, Any]:
        """Flat parameters for MLflow: tuned LightGBM params, trial budget, calibration, rows.

        Whether the search was warm-started is the caller's to log, beside the incumbent it came from.
        """
        return {
            **{f"lgbm_{k}": v for k, v in self.best_params.items()},
            "best_iteration": self.best_iteration,
            "calibration_method": self.calibration["method"],
            "dropped_columns": ",".join(self.spec["dropped"]),
            **{f"{k}_rows": v for k, v in self.rows.items()},
            "n_trials": self.tuning["n_trials"],
            "best_trial": self.tuning["best_trial"],
        }


def _base_params(config: TrainingConfig) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "verbosity": -1,
        "num_threads": config.num_threads,
        "seed": config.seed,
        "deterministic": True,
        "force_col_wise": True,  # deterministic AND skips LightGBM's row/col-wise timing probe
        "bagging_freq": 1,
    }


# The tuned knobs: name -> (low, high, log scale, integer). Warm-start values are clipped to these.
# The learning rate's floor keeps the refit affordable: trees grow as 1/learning rate and the refit
# on all train rows (~340k for 12 months) costs 30-50 ms a tree on 2 cores. With a 0.03 floor the
# 12-month search chose 0.031 and its refit took 40 s (865 trees) for no better holdout than 0.05's.
SEARCH_SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.05, 0.3, True, False),
    "num_leaves": (8, 128, True, True),
    "min_child_samples": (10, 500, True, True),
    "feature_fraction": (0.4, 1.0, False, False),
    "bagging_fraction": (0.5, 1.0, False, False),
    "lambda_l1": (1e-8, 10.0, True, False),
    "lambda_l2": (1e-8, 10.0, True, False),
    "cat_smooth": (1.0, 50.0, True, False),
}

# LightGBM's defaults (bagging off): a cold start's first trial, so TPE starts from a known-sane point.
DEFAULT_TRIAL = {
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 20,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "lambda_l1": 1e-8,
    "lambda_l2": 1e-8,
    "cat_smooth": 10.0,
}

# Random start-up trials of a cold TPE search before it models the results (Optuna's default).
COLD_STARTUP_TRIALS = 10


def _suggest(trial: optuna.Trial) -> dict[str, Any]:
    return {
        name: trial.suggest_int(name, int(low), int(high), log=log)
        if integer
        else trial.suggest_float(name, low, high, log=log)
        for name, (low, high, log, integer) in SEARCH_SPACE.items()
    }


def warm_start_params(incumbent: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The incumbent's parameters made a valid first trial: ``(params, adjustments)``.

    Unknown keys (and fixed recipe keys such as ``bagging_freq``) are dropped, values outside the
    search space clipped to it, unreadable or missing ones taken from :data:`DEFAULT_TRIAL`. Values
    may be strings (parameters read back from MLflow). ``adjustments`` says what was changed.
    """
    params: dict[str, Any] = {}
    adjustments: dict[str, Any] = {"dropped": {}, "clipped": {}, "defaulted": {}}
    for key, value in incumbent.items():
        if key not in SEARCH_SPACE:
            adjustments["dropped"][str(key)] = _recordable(value)
    for name, (low, high, _log, integer) in SEARCH_SPACE.items():
        if name not in incumbent:
            params[name] = DEFAULT_TRIAL[name]
            adjustments["defaulted"][name] = "missing"
            continue
        try:
            number = float(incumbent[name])
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            params[name] = DEFAULT_TRIAL[name]
            adjustments["defaulted"][name] = _recordable(incumbent[name])
            continue
        used = min(max(number, low), high)
        if integer:
            used = int(min(max(round(used), low), high))
        if used != number:
            adjustments["clipped"][name] = [_recordable(incumbent[name]), used]
        params[name] = used
    return params, {kind: found for kind, found in adjustments.items() if found}


_SPINNING_THREADS_HINT = (
    " OMP_WAIT_POLICY is not PASSIVE: on a machine busier than its cores, OpenMP threads that spin at"
    " every barrier can make a multi-threaded LightGBM fit ten times slower or worse."
)


def _spinning_threads(config: TrainingConfig) -> bool:
    # libgomp reads the policy once, when LightGBM is loaded; the environment is the best evidence left.
    return config.num_threads > 1 and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"


def _recordable(value: Any) -> Any:
    """``value`` as it can be recorded in the JSON tuning summary (finite numbers, text otherwise)."""
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return str(value)


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
    params: dict[str, Any], train: lgb.Dataset, valid: lgb.Dataset, config: TrainingConfig
) -> lgb.Booster:
    return lgb.train(
        params,
        train,
        num_boost_round=config.max_boost_rounds,
        valid_sets=[valid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )


def cross_fitted_margins(
    params: dict[str, Any], iterations: int, x: pd.DataFrame, y: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """Each row's margin from a booster of ``params`` and ``iterations`` trees fitted on the other folds
    (stratified): what the final booster would say of rows it never saw, for every development row."""
    margins = np.empty(len(y), dtype=np.float64)
    for fit_rows, predict_rows in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(
        x, y
    ):
        fold = lgb.train(params, _dataset(x.iloc[fit_rows], y[fit_rows]), num_boost_round=iterations)
        margins[predict_rows] = fold.predict(x.iloc[predict_rows], raw_score=True)
    return margins


def _tune(
    train: lgb.Dataset, valid: lgb.Dataset, config: TrainingConfig, warm_start: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the Optuna study for its whole trial budget; ``(best_params, summary)``."""
    first_trial, adjustments, budget, sampler = _study_start(config, warm_start)

    def objective(trial: optuna.Trial) -> float:
        booster = _fit({**_base_params(config), **_suggest(trial)}, train, valid, config)
        trial.set_user_attr("best_iteration", booster.best_iteration)
        return float(booster.best_score["validation"]["binary_logloss"])

    started = time.perf_counter()
    optuna_logging = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)  # one INFO line per trial is noise in a Dagster log
    try:
        study = optuna.create_study(direction="minimize", sampler=sampler)
        study.enqueue_trial(first_trial)
        study.optimize(
            objective, n_trials=budget, callbacks=[_tuning_guard(config, budget, started)], n_jobs=1
        )
    finally:
        optuna.logging.set_verbosity(optuna_logging)
    wall_seconds = time.perf_counter() - started
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(completed) != budget:  # objective errors propagate, so this is a broken invariant
        raise RuntimeError(f"{len(completed)} of {budget} Optuna trials completed")
    summary = {
        "objective": "validation binary log loss (minimised)",
        "warm_start": bool(warm_start),
        "warm_start_params": first_trial if warm_start else None,
        "warm_start_adjustments": adjustments,
        "n_trials": budget,
        "n_complete": len(completed),
        **_study_summary(study, wall_seconds, config),
    }
    return dict(study.best_trial.params), summary


def _study_start(
    config: TrainingConfig, warm_start: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any], int, optuna.samplers.BaseSampler]:
    """``(first trial's parameters, adjustments made to the incumbent's, trial budget, sampler)``."""
    if not warm_start:  # None, or an incumbent without parameters: a cold start
        sampler = optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=COLD_STARTUP_TRIALS)
        return dict(DEFAULT_TRIAL), {}, config.n_trials, sampler
    first_trial, adjustments = warm_start_params(warm_start)
    # The incumbent is the only start-up trial: TPE samples around it from the second trial on.
    sampler = optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=1)
    return first_trial, adjustments, config.warm_start_trials, sampler


def _tuning_guard(config: TrainingConfig, budget: int, started: float):
    """The study's callback that fails the run once tuning has run longer than its guard."""

    def guard(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        # Checked between trials only: a fit is never cut, so no trial's value depends on the load.
        seconds = time.perf_counter() - started
        if seconds > config.max_tuning_seconds:
            raise TuningGuardExceeded(
                f"tuning exceeded its guard: {len(study.trials)} of {budget} trials took {seconds:.1f} s, "
                f"over max_tuning_seconds={config.max_tuning_seconds:g}. The run fails rather than train "
                "on a smaller budget; raise max_tuning_seconds or lower the trials / tuning_rows."
                + (_SPINNING_THREADS_HINT if _spinning_threads(config) else "")
            )

    return guard


def _study_summary(study: optuna.Study, wall_seconds: float, config: TrainingConfig) -> dict[str, Any]:
    """The finished study's best trial, its time against the guard, and every trial."""
    best = study.best_trial
    return {
        "best_trial": best.number,
        "best_value": float(best.value),
        "first_trial_value": float(study.trials[0].value),
        "wall_seconds": wall_seconds,
        "max_tuning_seconds": config.max_tuning_seconds,
        "guard_share": wall_seconds / config.max_tuning_seconds,
        "guard_close": wall_seconds >= GUARD_CLOSE_SHARE * config.max_tuning_seconds,
        "trials": [
            {
                "number": t.number,
                "value": t.value,
                "best_iteration": t.user_attrs.get("best_iteration"),
                "seconds": t.duration.total_seconds() if t.duration else None,
                **t.params,
            }
            for t in study.trials
        ],
    }


def _refit(
    params: dict[str, Any],
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
    config: TrainingConfig,
) -> tuple[lgb.Booster, int]:
    """The tuned parameters fitted on every training row, early-stopped on validation: ``(booster, trees)``."""
    full_set = _dataset(x_train, y_train)
    booster = _fit(params, full_set, _dataset(x_valid, y_valid, reference=full_set), config)
    best_iteration = int(booster.best_iteration) or booster.current_iteration()
    # Keep exactly the early-stopped trees, so the saved text model predicts what was validated.
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best_iteration)), best_iteration


def _calibration_set(
    booster: lgb.Booster,
    params: dict[str, Any],
    best_iteration: int,
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    development_rows: int,
    config: TrainingConfig,
) -> tuple[str, np.ndarray, np.ndarray]:
    """What the calibrator is fitted on: ``(which rows, outcomes, margins)``. Cross-fitted margins of every
    development row while there are at most ``cross_fit_max_rows``; else the booster's on validation."""
    (x_train, y_train), (x_valid, y_valid) = train, valid
    if development_rows > config.cross_fit_max_rows:
        return "validation", y_valid, booster.predict(x_valid, raw_score=True)
    y = np.concatenate([y_train, y_valid])
    margins = cross_fitted_margins(
        params, best_iteration, pd.concat([x_train, x_valid]), y, config.calibration_folds, config.seed
    )
    return "cross-fitted development", y, margins


def _split_inputs(development: pd.DataFrame, spec: dict, config: TrainingConfig):
    """The development rows split by time (the validation rows last): ``(x, y)`` of the training rows and of
    the validation rows, and the validation's first day."""
    train, validation, validation_start = validation_split(development, fraction=config.validation_fraction)
    return (
        (runtime.prepare_features(train, spec), train[schema.CLAIM_STATUS].to_numpy(np.int64)),
        (runtime.prepare_features(validation, spec), validation[schema.CLAIM_STATUS].to_numpy(np.int64)),
        validation_start,
    )


def _calibration_record(choice, validation_start, fitted_on: str, fitted_rows: int) -> dict[str, Any]:
    """What a model records of its calibration: the method chosen, on which rows, and the choice's report."""
    return {
        "method": choice.method,
        "validation_start": validation_start.isoformat(),
        "fitted_on": fitted_on,
        "fitted_rows": int(fitted_rows),
        **choice.report,
    }


def train_model(
    development: pd.DataFrame, config: TrainingConfig | None = None, warm_start: dict[str, Any] | None = None
) -> TrainedModel:
    """Tune, refit and calibrate on ``development`` rows (the window minus its holdout month).

    ``development`` needs ``application_date``, ``claim_status`` and the schema's features; it must
    NOT contain holdout rows (use :func:`~claims_platform.training.split.out_of_time_split`).
    ``warm_start`` is the incumbent's ``best_params``: the first trial of a ``warm_start_trials``
    study instead of the default first trial of an ``n_trials`` one. Deterministic: the same rows,
    config and warm start give the same model. Raises :class:`TuningGuardExceeded` when the study
    runs longer than ``config.max_tuning_seconds`` (checked after each trial, the last one included).
    """
    config = config or TrainingConfig()
    started = time.perf_counter()
    spec = features.feature_spec(dict(config.protected))
    (x_train, y_train), (x_valid, y_valid), validation_start = _split_inputs(development, spec, config)

    stage_seconds = {"prepare": time.perf_counter() - started}
    tuning_rows = _stratified_subsample(y_train, config.tuning_rows, config.seed)
    tuning_set = _dataset(x_train.iloc[tuning_rows], y_train[tuning_rows])
    best_params, tuning = _tune(
        tuning_set, _dataset(x_valid, y_valid, reference=tuning_set), config, warm_start
    )

    stage_seconds["tuning"] = time.perf_counter() - started - sum(stage_seconds.values())
    params = {**_base_params(config), **best_params}
    booster, best_iteration = _refit(params, x_train, y_train, x_valid, y_valid, config)

    stage_seconds["refit"] = time.perf_counter() - started - sum(stage_seconds.values())
    calibration_rows, calibration_y, calibration_margin = _calibration_set(
        booster, params, best_iteration, (x_train, y_train), (x_valid, y_valid), len(development), config
    )
    choice = choose_calibrator(
        calibration_margin, calibration_y, folds=config.calibration_folds, seed=config.seed
    )
    validation_metrics = evaluate(calibration_y, choice.out_of_fold, threshold=DecisionPolicy().refer_at)
    stage_seconds["calibration"] = time.perf_counter() - started - sum(stage_seconds.values())

    return TrainedModel(
        booster=booster,
        calibrator=choice.calibrator,
        spec=spec,
        best_params={**best_params, "bagging_freq": 1},
        best_iteration=best_iteration,
        tuning=tuning,
        calibration=_calibration_record(choice, validation_start, calibration_rows, len(calibration_y)),
        validation_metrics=validation_metrics,
        rows={"train": len(y_train), "validation": len(y_valid), "tuning": len(tuning_rows)},
        fit_seconds=time.perf_counter() - started,
        stage_seconds=stage_seconds,
        calibration_margin=calibration_margin,
        calibration_y=calibration_y,
    )
