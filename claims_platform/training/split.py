"""Out-of-time split of a labelled training window: train | validation | holdout, in date order.

The model is used on days after its window, so it is judged on rows after the ones it learned from:

- **holdout**: the most recent labelled calendar month of the window. Tuning, early stopping,
  calibration never see it; candidate and champion are compared on it.
- **validation**: the most recent ``validation_fraction`` (default 15%) of the remaining rows, cut on
  a day boundary so no day is split. Early stopping, the tuning objective and the calibration
  choice use it (the decision thresholds are the business's policy, not fitted).
- **train**: everything before; the only rows the booster's trees are fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from claims_platform.core import schema

MIN_MONTHS = 2  # the holdout month plus at least one month to learn from
MIN_ROWS_PER_PART = 50  # below this a part's metrics are noise; both classes must occur too


@dataclass(frozen=True)
class OutOfTimeSplit:
    """The three parts of a training window, each a slice of the input rows (index kept)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    holdout_month: str  # "YYYY-MM"
    validation_start: date  # first application date of the validation slice

    @property
    def development(self) -> pd.DataFrame:
        """Train and validation rows together: what :func:`~claims_platform.training.train.train_model` takes."""
        return pd.concat([self.train, self.validation])

    def summary(self) -> dict[str, Any]:
        """Rows, claim rate and date range of every part, for metadata and MLflow params."""
        out: dict[str, Any] = {
            "holdout_month": self.holdout_month,
            "validation_start": self.validation_start.isoformat(),
        }
        for name, part in (("train", self.train), ("validation", self.validation), ("holdout", self.holdout)):
            dates = _dates(part)
            out[f"{name}_rows"] = len(part)
            out[f"{name}_claim_rate"] = float(part[schema.CLAIM_STATUS].mean())
            out[f"{name}_first_date"] = dates.min().date().isoformat()
            out[f"{name}_last_date"] = dates.max().date().isoformat()
        return out


def _dates(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame[schema.APPLICATION_DATE])


def _check_part(name: str, part: pd.DataFrame, min_rows: int) -> None:
    if len(part) < min_rows:
        raise ValueError(
            f"the {name} part has {len(part)} labelled rows, fewer than the {min_rows} needed: "
            "import or ingest more applications for its days"
        )
    classes = set(pd.unique(part[schema.CLAIM_STATUS]))
    if classes != {0, 1}:
        raise ValueError(f"the {name} part needs both claim outcomes, it has only {sorted(classes)}")


def holdout_split(
    frame: pd.DataFrame, *, min_months: int = MIN_MONTHS, min_rows: int = MIN_ROWS_PER_PART
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``(development, holdout, holdout_month)``: the most recent labelled month is the holdout.

    Raises ``ValueError`` when the window spans fewer than ``min_months`` calendar months or a part
    has too few rows or only one class.
    """
    if len(frame) == 0:
        raise ValueError("the training window has no labelled rows")
    months = _dates(frame).dt.to_period("M")
    distinct = months.unique()
    if len(distinct) < min_months:
        raise ValueError(
            f"the training window spans {len(distinct)} labelled month(s) {sorted(map(str, distinct))}; "
            f"an out-of-time split needs at least {min_months} (the latest is the holdout). A month counts once its "
            "outcomes are known by the cutoff (30 days after each application by default): train a later month, "
            "or ingest earlier months first"
        )
    last = months.max()
    is_holdout = (months == last).to_numpy()
    development, holdout = frame.loc[~is_holdout], frame.loc[is_holdout]
    _check_part("holdout", holdout, min_rows)
    return development, holdout, str(last)


def validation_split(
    development: pd.DataFrame, *, fraction: float = 0.15, min_rows: int = MIN_ROWS_PER_PART
) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    """``(train, validation, validation_start)``: the most recent ``fraction`` of rows by date.

    The cut falls on a day boundary: validation starts at the latest day such that the days from it
    on hold at least ``fraction`` of the rows. Raises ``ValueError`` when fewer than two days or too
    few rows make a split impossible.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    days = _dates(development).dt.normalize()
    per_day = days.value_counts().sort_index(ascending=False)
    if len(per_day) < 2:
        raise ValueError(f"a validation slice needs at least two application days, got {len(per_day)}")
    share_from_day = per_day.cumsum() / len(development)
    # First (latest-to-earliest) day at which the tail reaches the fraction; never the earliest day,
    # which would leave nothing to train on.
    reached = share_from_day[share_from_day >= fraction]
    start = max(reached.index[0], per_day.index[-2])
    is_validation = (days >= start).to_numpy()
    train, validation = development.loc[~is_validation], development.loc[is_validation]
    _check_part("train", train, min_rows)
    _check_part("validation", validation, min_rows)
    return train, validation, start.date()


def out_of_time_split(
    frame: pd.DataFrame,
    *,
    validation_fraction: float = 0.15,
    min_months: int = MIN_MONTHS,
    min_rows: int = MIN_ROWS_PER_PART,
) -> OutOfTimeSplit:
    """Split a labelled window (``application_date``, ``claim_status``, features) into three parts in time."""
    development, holdout, month = holdout_split(frame, min_months=min_months, min_rows=min_rows)
    train, validation, start = validation_split(development, fraction=validation_fraction, min_rows=min_rows)
    return OutOfTimeSplit(
        train=train, validation=validation, holdout=holdout, holdout_month=month, validation_start=start
    )
