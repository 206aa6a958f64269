"""The training budget and recipe settings: a light module, so run config can default to them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingConfig:
    """The training budget and the fixed parts of the recipe."""

    n_trials: int = 30
    timeout_seconds: float = 90.0  # tuning stops at n_trials or this wall time, whichever comes first
    tuning_rows: int = 80_000  # stratified subsample of train rows each trial fits on
    validation_fraction: float = 0.15
    max_boost_rounds: int = 2000
    early_stopping_rounds: int = 50
    calibration_folds: int = 5
    seed: int = 0
    num_threads: int = 2
