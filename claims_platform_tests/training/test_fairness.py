"""Outcomes by protected group: the rates and their intervals, and the check that flags a group whose
outcomes depart from the rest (and stays quiet when none does)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from claims_platform.core.policy import DecisionPolicy
from claims_platform.training.fairness import (
    FairnessTolerance,
    fairness_flags,
    group_labels,
    group_table,
    wilson,
)

POLICY = DecisionPolicy()
COLUMNS = ("age", "gender", "location")


def _month(rows: int = 36_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A month whose outcomes follow its probabilities exactly (a calibrated model, no group treated apart)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 96, rows),
            "gender": rng.integers(0, 2, rows),
            "location": rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), rows),
        }
    )
    p = rng.beta(0.6, 3.4, rows)  # mean 0.15, most mass low, some declines
    y = (rng.random(rows) < p).astype(np.int64)
    return frame, y, p


DEFAULT_TOLERANCE = FairnessTolerance()


def _table(frame, y, p, tolerance: FairnessTolerance = DEFAULT_TOLERANCE):
    return group_table(frame, y, p, POLICY.decide(p), COLUMNS, tolerance, refer_at=POLICY.refer_at)


def test_every_group_of_every_protected_column_is_reported_with_its_intervals():
    frame, y, p = _month()
    table = _table(frame, y, p)
    assert list(table[table["column"] == "age"]["group"]) == ["18–34", "35–49", "50–64", "65–95"]
    assert list(table[table["column"] == "gender"]["group"]) == ["0", "1"]
    assert len(table[table["column"] == "location"]) == 26
    for column in COLUMNS:
        assert table[table["column"] == column]["applications"].sum() == len(frame)
    women = table[(table["column"] == "gender") & (table["group"] == "1")].iloc[0]
    rows = frame["gender"].to_numpy() == 1
    assert women["claim_rate"] == pytest.approx(y[rows].mean())
    assert women["mean_probability"] == pytest.approx(p[rows].mean())
    assert women["decline_rate"] == pytest.approx(np.mean(POLICY.decide(p[rows]) == "decline"))
    for name in ("decline", "refer", "claim"):
        assert (table[f"{name}_low"] <= table[f"{name}_rate"]).all()
        assert (table[f"{name}_rate"] <= table[f"{name}_high"]).all()
    assert (table["kappa_low"] <= table["kappa"]).all() and (table["auc"] <= table["auc_high"]).all()


def test_a_calibrated_month_raises_no_flag():
    flagged = [fairness_flags(_table(*_month(seed=seed))) for seed in range(12)]
    assert sum(bool(flags) for flags in flagged) <= 1, flagged


def test_a_group_whose_claims_are_shifted_is_flagged_and_named():
    frame, y, p = _month()
    # Applicants in locations A–C claim half as often again as their probabilities say.
    rows = frame["location"].isin(list("ABC")).to_numpy()
    extra = np.random.default_rng(1).random(len(y)) < 0.5 * p
    y = np.where(rows & extra, 1, y)
    flags = fairness_flags(_table(frame, y, p))
    assert {flag.split(":")[0] for flag in flags} == {"location A", "location B", "location C"}
    assert all("claims +" in flag for flag in flags)


def test_a_group_declined_more_than_the_tolerance_is_flagged_and_the_tolerance_is_a_setting():
    frame, y, p = _month()
    older = frame["age"].to_numpy() >= 65
    p = np.where(older, np.clip(p * 1.6, 0, 0.999), p)  # the model is harsher on the over-65s ...
    y = (np.random.default_rng(2).random(len(y)) < p).astype(np.int64)  # ... and they really claim so
    flags = fairness_flags(_table(frame, y, p))
    # The over-65s are declined more than the rest (and so the younger bands less): calibrated for all of
    # them, only the decline rate is flagged.
    assert [flag for flag in flags if flag.startswith("age 65–95")] == [
        "age 65–95: declined +13.0% compared with the rest"
    ]
    assert all(flag.startswith("age ") and "declined" in flag and "claims" not in flag for flag in flags)
    assert fairness_flags(_table(frame, y, p, FairnessTolerance(decline_rate=0.5))) == []


def test_kappa_and_auc_only_where_a_group_is_large_enough():
    frame, y, p = _month(rows=3_000)
    table = _table(frame, y, p)
    small = table[table["applications"] < FairnessTolerance().min_rows]
    assert len(small) > 0 and small["kappa"].isna().all() and small["auc"].isna().all()
    assert table[table["column"] == "gender"]["kappa"].notna().all()


def test_more_groups_ask_more_of_each_difference():
    tolerance = FairnessTolerance()
    assert tolerance.z(1) == pytest.approx(1.96, abs=0.01)
    assert tolerance.z(64) > 3.1


def test_missing_values_and_bands_are_groups_of_their_own():
    ages = pd.Series([18, 34, 35, 64.5, 65, 95, None])
    assert list(group_labels(ages, "age")) == [
        "18–34",
        "18–34",
        "35–49",
        "50–64",
        "65–95",
        "65–95",
        "missing",
    ]
    assert list(group_labels(pd.Series([1.0, 0.0, None]), "gender")) == ["1", "0", "missing"]


def test_wilson_interval_holds_at_the_edges():
    assert wilson(0, 50)[0] == pytest.approx(0.0, abs=1e-12) and 0 < wilson(0, 50)[1] < 0.1
    assert wilson(50, 50)[1] == 1.0
