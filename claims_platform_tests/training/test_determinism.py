"""Training is reproducible whatever the machine's load; warm start and the time guard do what they say."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from claims_platform.training.config import TrainingConfig
from claims_platform.training.train import (
    DEFAULT_TRIAL,
    SEARCH_SPACE,
    TuningGuardExceeded,
    train_model,
    warm_start_params,
)
from claims_platform_tests.trained_model import FAST_CONFIG

REPO = Path(__file__).resolve().parents[2]

# Trains FAST_CONFIG with 2 threads (production fits on one; two is what a hand-raised num_threads gives)
# in a fresh process (a Dagster run is one) and prints digests of what it learned.
TRAIN_IN_A_PROCESS = """
import dataclasses, hashlib, json, sys
import pandas as pd
from claims_platform.training.train import train_model
from claims_platform_tests.trained_model import FAST_CONFIG
development, holdout = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
model = train_model(development, dataclasses.replace(FAST_CONFIG, num_threads=2))
print(json.dumps({
    "best_params": model.best_params,
    "trial_values": [t["value"] for t in model.tuning["trials"]],
    "booster": hashlib.sha256(model.booster.model_to_string().encode()).hexdigest(),
    "predictions": hashlib.sha256(model.predict_proba(holdout).tobytes()).hexdigest(),
}))
"""


class _BusyCore:
    """Another process burning a core for as long as the block runs."""

    def __enter__(self):
        self.burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc):
        self.burner.kill()
        self.burner.wait()


def _train_in_a_process(development: Path, holdout: Path) -> dict:
    # Passive OpenMP waits: with spinning ones a 2-thread fit on an oversubscribed machine crawls.
    # The wait policy changes how threads idle, never what they compute.
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_IN_A_PROCESS, str(development), str(holdout)],
        cwd=development.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_same_rows_and_config_give_the_same_model_on_a_busy_machine(trained, parts):
    # `trained` is the session's model, FAST_CONFIG on the same rows, trained whenever the session
    # started; this one is trained again with one of the two cores taken.
    with _BusyCore():
        again = train_model(parts.development, FAST_CONFIG)

    assert again.tuning["n_complete"] == trained.tuning["n_complete"] == FAST_CONFIG.n_trials
    assert again.best_params == trained.best_params
    assert [t["value"] for t in again.tuning["trials"]] == [t["value"] for t in trained.tuning["trials"]]
    assert again.booster.model_to_string() == trained.booster.model_to_string()
    assert again.calibrator == trained.calibrator
    assert np.array_equal(again.predict_proba(parts.holdout), trained.predict_proba(parts.holdout))


def test_two_threads_give_the_same_model_in_another_process_with_a_busy_core(parts, tmp_path):
    development, holdout = tmp_path / "development.parquet", tmp_path / "holdout.parquet"
    parts.development.to_parquet(development)
    parts.holdout.to_parquet(holdout)

    first = _train_in_a_process(development, holdout)
    with _BusyCore():
        second = _train_in_a_process(development, holdout)

    assert len(first["trial_values"]) == FAST_CONFIG.n_trials
    assert second == first


def test_warm_start_runs_the_incumbent_first_and_its_smaller_budget(trained, parts):
    warm = train_model(parts.development, FAST_CONFIG, warm_start=trained.best_params)

    incumbent = {k: v for k, v in trained.best_params.items() if k in SEARCH_SPACE}
    assert warm.tuning["warm_start"] is True
    assert warm.tuning["warm_start_params"] == incumbent
    assert warm.tuning["warm_start_adjustments"] == {"dropped": {"bagging_freq": 1}}  # fixed, not tuned
    assert {k: warm.tuning["trials"][0][k] for k in SEARCH_SPACE} == incumbent
    assert warm.tuning["n_trials"] == warm.tuning["n_complete"] == FAST_CONFIG.warm_start_trials
    assert len(warm.tuning["trials"]) == FAST_CONFIG.warm_start_trials < FAST_CONFIG.n_trials
    # Same rows, same subsample: the first trial reproduces the incumbent's score exactly, so a warm
    # start is never worse than the model it starts from.
    assert warm.tuning["trials"][0]["value"] == trained.tuning["best_value"]
    assert warm.tuning["best_value"] <= trained.tuning["best_value"]


def test_warm_start_params_clip_drop_and_fill_what_does_not_fit_the_search_space():
    params, adjustments = warm_start_params(
        {
            "learning_rate": 5.0,  # above the space
            "num_leaves": "12.4",  # a string, as MLflow gives params back; rounded to an integer
            "min_child_samples": 1,  # below the space
            "lambda_l1": "not a number",
            "lambda_l2": float("nan"),
            "bagging_freq": 1,  # fixed by the recipe
            "max_depth": 7,  # not tuned at all
        }
    )
    assert params["learning_rate"] == SEARCH_SPACE["learning_rate"][1]
    assert params["num_leaves"] == 12 and isinstance(params["num_leaves"], int)
    assert params["min_child_samples"] == SEARCH_SPACE["min_child_samples"][0]
    assert (
        params["lambda_l1"] == DEFAULT_TRIAL["lambda_l1"]
        and params["lambda_l2"] == DEFAULT_TRIAL["lambda_l2"]
    )
    for missing in ("feature_fraction", "bagging_fraction", "cat_smooth"):
        assert params[missing] == DEFAULT_TRIAL[missing]
    assert set(params) == set(SEARCH_SPACE)
    assert adjustments["dropped"] == {"bagging_freq": 1, "max_depth": 7}
    assert adjustments["clipped"] == {
        "learning_rate": [5.0, 0.3],
        "num_leaves": ["12.4", 12],
        "min_child_samples": [1, 10],
    }
    assert adjustments["defaulted"]["feature_fraction"] == "missing"
    assert adjustments["defaulted"]["lambda_l2"] == "nan"  # recorded as text: the summary stays valid JSON
    json.dumps(adjustments, allow_nan=False)
    assert set(adjustments["defaulted"]) == {
        "lambda_l1",
        "lambda_l2",
        "feature_fraction",
        "bagging_fraction",
        "cat_smooth",
    }
    assert warm_start_params(DEFAULT_TRIAL) == (DEFAULT_TRIAL, {})


def test_the_time_guard_fails_the_run_between_trials_instead_of_shrinking_the_budget(parts):
    guarded = dataclasses.replace(FAST_CONFIG, max_tuning_seconds=1e-6)
    with pytest.raises(TuningGuardExceeded, match=r"1 of 3 trials took .* over max_tuning_seconds=1e-06"):
        train_model(parts.development, guarded)


@pytest.mark.parametrize("field", ["n_trials", "warm_start_trials", "tuning_rows"])
def test_budgets_must_be_positive_counts(field):
    with pytest.raises(ValueError, match=field):
        TrainingConfig(**{field: 0})
    with pytest.raises(ValueError, match="max_tuning_seconds"):
        TrainingConfig(max_tuning_seconds=0)
