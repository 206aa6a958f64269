"""The fairness check on scored months: quiet on i.i.d. months, firing when one group's outcomes shift.

One model (the bench world's labelled 2025, December its holdout, the default declaration: ``gender``
excluded) and its deployed calibrator score each month of 2026 from the same world, at 1,200 a day
(the world's own volume) and at 50 a day (a random 50 of each day's applications). Per month, the
group table of every protected column (age bands, gender, 26 locations) and the check at the default
tolerances:

- **i.i.d.**: the month as the world draws it. Target: at most 1 of 12 months flagged.
- **shifted**: the same month with one group's outcomes moved and nothing else: a share of the group's
  non-claimants become claimants (features untouched, so the model under-predicts the group). In turn:
  ``gender`` 1 (half the book) with 5% (its claim rate +4 points), and ``location`` A (1/26 of it) with 5%
  and 10%. Target at 1,200 a day: the shifted group flagged in every month, but for location A at 5%,
  which measures the check's power on a small group.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date

import numpy as np
import pandas as pd

SEED = 20250101
# (column, level, its label, share of the group's non-claimants who claim instead, target at 1,200 a day)
SHIFTED_GROUPS = (
    ("gender", 1, "1", 0.05, "12"),
    ("location", "A", "A", 0.05, "information (power: a group of 1/26 of the book)"),
    ("location", "A", "A", 0.10, "12"),
)
SMALL_DAILY = 50


def _progress(message: str) -> None:
    print(f"[bench_fairness] {message}", file=sys.stderr, flush=True)


def _m(name: str, value, unit: str, target: str | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target}


def _scored_year(model) -> pd.DataFrame:
    """2026 of the bench world, with outcomes and the model's probabilities."""
    from claims_platform.core import schema, settings
    from claims_platform.source.generator import World, simulate_days

    applications, outcomes = simulate_days(
        World.from_seed(settings.DEFAULT_WORLD_SEED), date(2026, 1, 1), date(2026, 12, 31)
    )
    frame = applications.merge(
        outcomes[[schema.APPLICATION_ID, schema.CLAIM_STATUS]], on=schema.APPLICATION_ID
    )
    frame["p"] = model.predict_proba(frame)
    frame["month"] = pd.to_datetime(frame[schema.APPLICATION_DATE]).dt.month
    return frame


def _shifted(month: pd.DataFrame, column: str, level, share: float, seed: int) -> np.ndarray:
    """The month's outcomes with ``share`` of the group's non-claimants turned claimants."""
    from claims_platform.core import schema

    y = month[schema.CLAIM_STATUS].to_numpy().copy()
    candidates = np.flatnonzero((month[column].to_numpy() == level) & (y == 0))
    rng = np.random.default_rng(seed)
    y[rng.choice(candidates, size=round(share * len(candidates)), replace=False)] = 1
    return y


def _flags(month: pd.DataFrame, y: np.ndarray) -> list[str]:
    from claims_platform.core.policy import DecisionPolicy
    from claims_platform.core.protected import DEFAULT_PROTECTED
    from claims_platform.training.fairness import fairness_flags, group_table, protected_in

    policy = DecisionPolicy()
    p = month["p"].to_numpy()
    table = group_table(
        month, y, p, policy.decide(p), protected_in(DEFAULT_PROTECTED), refer_at=policy.refer_at
    )
    return fairness_flags(table)


def _volume(year: pd.DataFrame, daily: int | None) -> dict[str, list]:
    """Per month: the i.i.d. flags, and for each shifted group whether that group was flagged."""
    from claims_platform.core import schema

    found: dict[str, list] = {
        "iid": [],
        **{_key(c, label, share): [] for c, _, label, share, _ in SHIFTED_GROUPS},
    }
    for number, month in year.groupby("month"):
        if daily is not None:
            month = month.groupby(schema.APPLICATION_DATE, group_keys=False).sample(
                n=daily, random_state=number
            )
        month = month.reset_index(drop=True)
        found["iid"].append(_flags(month, month[schema.CLAIM_STATUS].to_numpy()))
        for column, level, label, share, _ in SHIFTED_GROUPS:
            flags = _flags(month, _shifted(month, column, level, share, seed=number))
            found[_key(column, label, share)].append(any(f.startswith(f"{column} {label}:") for f in flags))
    return found


def _key(column: str, label: str, share: float) -> str:
    return f"{column} {label}, {share:.0%} of its non-claimants claim"


def run() -> list[dict]:
    from bench.bench_training import labelled_year
    from claims_platform.core.policy import DecisionPolicy
    from claims_platform.core.protected import DEFAULT_PROTECTED
    from claims_platform.training.config import TrainingConfig
    from claims_platform.training.split import out_of_time_split
    from claims_platform.training.train import train_model
    from claims_platform_tests.platform_world import SMALL_BUDGET

    load = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    parts = out_of_time_split(labelled_year(seed=SEED))
    trained = train_model(
        parts.development, TrainingConfig(**SMALL_BUDGET, protected=tuple(sorted(DEFAULT_PROTECTED.items())))
    )
    model = trained.deployed(parts.holdout, parts.holdout_month, DecisionPolicy().refer_at)
    year = _scored_year(model)
    _progress(f"model trained and 2026 scored ({len(year):,} rows) in {time.perf_counter() - started:.0f} s")
    results = [_m("load average before", load, "-", "1-minute, 2 cores")]
    for daily, name in ((None, "1,200 a day"), (SMALL_DAILY, f"{SMALL_DAILY} a day")):
        found = _volume(year, daily)
        iid = [flags for flags in found["iid"] if flags]
        results.append(
            _m(
                f"i.i.d. months with a fairness flag, {name}",
                len(iid),
                "of 12",
                "<= 1" + (f"; flagged: {' | '.join('; '.join(f) for f in iid)}" if iid else ""),
            )
        )
        for column, _, label, share, target in SHIFTED_GROUPS:
            key = _key(column, label, share)
            results.append(
                _m(
                    f"months whose shifted group ({key}) is flagged, {name}",
                    sum(found[key]),
                    "of 12",
                    target if daily is None else "information (power at this volume)",
                )
            )
        _progress(
            f"{name}: i.i.d. flagged {len(iid)}/12; shifted {[sum(v) for k, v in found.items() if k != 'iid']}"
        )
    results.append(_m("seconds", round(time.perf_counter() - started, 1), "s", None))
    return results
