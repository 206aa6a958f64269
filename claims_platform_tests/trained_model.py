"""Small labelled windows from the real simulator, and one model trained on them for the whole session.

Shared by the training and models tests through their conftest files (a session fixture each).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from claims_platform.core import schema
from claims_platform.source.generator import World, simulate_days
from claims_platform.training.split import OutOfTimeSplit, out_of_time_split
from claims_platform.training.train import TrainedModel, TrainingConfig, train_model

# A budget that trains in seconds; the real one is TrainingConfig(). Counts only: the model it gives
# does not depend on how busy the machine is. One thread: on a machine busier than its cores, the
# spinning barriers of OpenMP (libgomp's default wait policy) make a 2-thread LightGBM fit of a few
# thousand rows up to 100x slower, and tests run beside other work.
FAST_CONFIG = TrainingConfig(
    n_trials=3,
    warm_start_trials=2,
    tuning_rows=3000,
    max_boost_rounds=300,
    early_stopping_rounds=20,
    num_threads=1,
)


def labelled_window(start: date, end: date, share: float = 0.05, seed: int = 7) -> pd.DataFrame:
    """Applications from ``start`` to ``end`` joined to their outcomes, a ``share`` of each day's rows."""
    applications, outcomes = simulate_days(World.from_seed(seed), start, end)
    frame = applications.merge(
        outcomes[[schema.APPLICATION_ID, schema.CLAIM_STATUS]], on=schema.APPLICATION_ID
    )
    return frame.sample(frac=share, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="session")
def window() -> pd.DataFrame:
    """Four months (Jan–Apr 2025), about 60 rows a day: ~7,000 labelled rows."""
    return labelled_window(date(2025, 1, 1), date(2025, 4, 30))


@pytest.fixture(scope="session")
def parts(window: pd.DataFrame) -> OutOfTimeSplit:
    return out_of_time_split(window)


@pytest.fixture(scope="session")
def trained(parts: OutOfTimeSplit) -> TrainedModel:
    return train_model(parts.development, FAST_CONFIG)
