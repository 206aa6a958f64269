"""The training budget and recipe settings: a light module, so run config can default to them.

Budgets are COUNTS (trials, rows, boosting rounds), never seconds: the same training set and config
give the same model whatever the machine's load. The one time limit, ``max_tuning_seconds``, is a
guard: a study slower than that fails the training (the month's candidate is recorded as
ineligible and the champion kept); it never decides how much tuning a model gets.
"""

from dataclasses import dataclass

from claims_platform.core.protected import DEFAULT_PROTECTED


@dataclass(frozen=True)
class TrainingConfig:
    """The training budget and the fixed parts of the recipe.

    Defaults are sized for a 12-month window (~440k rows), against targets of 120 s cold and 60 s
    warm-started on an idle 2-core machine (``bench/bench_training.py`` measures it). On 2026-11-26 both
    were over: cold 149 s on one thread (tuning 87 s, refit 58 s; 270 s on two threads), warm 76 s
    (the refit on all ~340k train rows is 58 s of it).
    """

    n_trials: int = 16  # Optuna trials of a cold start (the first is the recipe's default parameters)
    warm_start_trials: int = 2  # trials when warm-started (the first is the incumbent's parameters)
    max_tuning_seconds: float = 600.0  # guard: a slower study fails the training (not a budget)
    tuning_rows: int = 50_000  # stratified subsample of train rows each trial fits on
    validation_fraction: float = 0.15
    max_boost_rounds: int = 2000
    early_stopping_rounds: int = 50
    calibration_folds: int = 5
    # Calibrate on margins cross-fitted over the whole development set (train + validation) when it holds
    # at most this many rows, else on the validation slice alone: a young or small-volume model's
    # validation slice is too few claims to place the low tail (2 months at 50 a day: 250 rows, accepted
    # applicants' claims 3.3 times those expected on the holdout; cross-fitted over 1,550 rows: 1.00).
    cross_fit_max_rows: int = 150_000
    seed: int = 0
    # One LightGBM thread (docs/models.md, "Threads"): two threads meet at an OpenMP barrier after
    # every histogram, and on the 2-core virtual machines an idle core is slow to wake, so two threads
    # with passive waits made the 12-month cold start 270 s against 147 s on one; spinning waits,
    # faster when the machine is idle, crawl as soon as another process takes a core. Fixed, because
    # deterministic mode is reproducible per thread count.
    num_threads: int = 1
    # The protected characteristics declared (column, purpose), sorted: the excluded ones are not features,
    # and a changed declaration changes the training key (core/protected.py).
    protected: tuple[tuple[str, str], ...] = tuple(sorted(DEFAULT_PROTECTED.items()))

    def __post_init__(self) -> None:
        for name in ("n_trials", "warm_start_trials", "tuning_rows", "max_boost_rounds", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for column, purpose in self.protected:
            if purpose not in ("excluded", "monitored"):
                raise ValueError(
                    f"protected column {column!r}: purpose must be excluded or monitored, got {purpose!r}"
                )
        if not self.max_tuning_seconds > 0:
            raise ValueError(f"max_tuning_seconds must be positive, got {self.max_tuning_seconds}")
