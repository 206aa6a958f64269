"""The point-in-time training set: a trailing window of applications, labelled as of a cutoff.

Pure functions, no Dagster. The rule that protects every model from leakage lives here: an outcome
is usable only if it was known strictly before the cutoff, and no application after the training
month is ever included, whatever the source hands over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pandas as pd

from claims_platform.core.months import add_months
from claims_platform.core.schema import APPLICATION_DATE, APPLICATION_ID, CLAIM_STATUS, KNOWN_DATE


@dataclass(frozen=True)
class TrainingWindow:
    """Applications dated ``first_day``..``last_day``, labelled with outcomes known before ``cutoff``."""

    month: date  # first day of the training month M
    first_day: date
    last_day: date
    cutoff: datetime  # naive UTC; the first instant of M+1 unless an off-cycle retrain says later

    def as_metadata(self) -> dict[str, str]:
        """The window as text, for metadata and MLflow tags."""
        return {
            "training_month": self.month.strftime("%Y-%m"),
            "window_first_day": self.first_day.isoformat(),
            "window_last_day": self.last_day.isoformat(),
            "label_cutoff": self.cutoff.isoformat(),
        }


def training_window(
    month: date, window_months: int, label_cutoff: datetime | None = None, earliest: date | None = None
) -> TrainingWindow:
    """The window for training month ``month``: ``window_months`` months ending with it.

    ``label_cutoff`` defaults to the first instant of the next month; an explicit one may only be
    later (an off-cycle retrain that waited for more outcomes), never earlier than the month's end.
    """
    if window_months < 1:
        raise ValueError(f"window_months must be at least 1, got {window_months}")
    first_of_month = month.replace(day=1)
    next_month = add_months(first_of_month, 1)
    default_cutoff = datetime.combine(next_month, time())
    if label_cutoff is not None and label_cutoff.replace(tzinfo=None) < default_cutoff:
        raise ValueError(
            f"label_cutoff {label_cutoff.isoformat()} is before the end of training month "
            f"{first_of_month:%Y-%m}; it may only be later than {default_cutoff.isoformat()}"
        )
    first_day = add_months(first_of_month, 1 - window_months)
    if earliest is not None:
        first_day = max(first_day, earliest)
    return TrainingWindow(
        month=first_of_month,
        first_day=first_day,
        last_day=next_month - timedelta(days=1),
        cutoff=(label_cutoff.replace(tzinfo=None) if label_cutoff else default_cutoff),
    )


MIN_MONTH_COVERAGE = 0.9  # a month whose outcomes are this complete counts as labelled


@dataclass(frozen=True)
class LabelledSet:
    """The training rows and how completely each month of the window is labelled."""

    rows: pd.DataFrame
    coverage: dict[str, float]  # "YYYY-MM" -> share of the month's applications with a known outcome
    applications: int  # applications in the window
    excluded_rows: int  # labelled rows of months below the coverage floor
    duplicate_rows: int = 0  # rows dropped because their id occurs again (see unique_applications)


def label_applications(
    applications: pd.DataFrame,
    outcomes: pd.DataFrame,
    window: TrainingWindow,
    min_month_coverage: float = MIN_MONTH_COVERAGE,
) -> LabelledSet:
    """Applications inside the window joined to the outcomes known before the cutoff.

    An outcome is known from the first instant of its ``known_date``; applications without a known
    outcome are not training rows. With a 30-day label lag the last month of the window is barely
    labelled at its cutoff: its few labelled rows are the earliest days only, so months labelled
    below ``min_month_coverage`` are left out, and the most recent month in the set — the holdout —
    is a whole, fully labelled month.
    """
    dates = pd.to_datetime(applications[APPLICATION_DATE])
    in_window = (dates >= pd.Timestamp(window.first_day)) & (dates <= pd.Timestamp(window.last_day))
    known = pd.to_datetime(outcomes[KNOWN_DATE]) < pd.Timestamp(window.cutoff)
    labels = outcomes.loc[known, [APPLICATION_ID, CLAIM_STATUS]].drop_duplicates(APPLICATION_ID)
    inside, duplicates = unique_applications(applications.loc[in_window])
    labelled = inside.merge(labels, on=APPLICATION_ID, how="inner", validate="one_to_one")
    labelled[CLAIM_STATUS] = labelled[CLAIM_STATUS].astype("int64")

    month_of_all = _month_keys(inside[APPLICATION_DATE])
    month_of_labelled = _month_keys(labelled[APPLICATION_DATE])
    coverage = (month_of_labelled.value_counts() / month_of_all.value_counts()).fillna(0.0).sort_index()
    keep = month_of_labelled.isin(coverage[coverage >= min_month_coverage].index)
    rows = labelled.loc[keep].sort_values(
        [APPLICATION_DATE, APPLICATION_ID], kind="stable", ignore_index=True
    )
    return LabelledSet(
        rows=rows,
        coverage={m: round(float(c), 4) for m, c in coverage.items()},
        applications=len(inside),
        excluded_rows=int((~keep).sum()),
        duplicate_rows=duplicates,
    )


def _month_keys(values: pd.Series) -> pd.Series:
    """``YYYY-MM`` of each date, as ``dt.strftime("%Y-%m")`` gives it, formatted once per month rather
    than once per row (strftime costs seconds on a year of applications)."""
    dates = pd.to_datetime(values)
    codes = dates.dt.year * 100 + dates.dt.month
    return codes.map(
        {code: f"{int(code) // 100:04d}-{int(code) % 100:02d}" for code in codes.dropna().unique()}
    )


def unique_applications(applications: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The applications with each id once, and how many rows were dropped.

    Ingestion rejects a reused id (the data contract's identity rule), but days stored before that
    rule, or re-imported into other days since, can still hold one id twice. The same rule applies
    here so a training set always builds: the first day keeps the id; two rows of one id on that
    day are both dropped (which one is real cannot be told).
    """
    if not applications[APPLICATION_ID].duplicated().any():
        return applications, 0
    days = pd.to_datetime(applications[APPLICATION_DATE])
    first = days.groupby(applications[APPLICATION_ID]).transform("min")
    on_first_day = days == first
    twice_that_day = applications.loc[on_first_day].duplicated(APPLICATION_ID, keep=False)
    keep = on_first_day & ~twice_that_day.reindex(applications.index, fill_value=False)
    return applications.loc[keep], int((~keep).sum())


@dataclass(frozen=True)
class RejectedOutcomes:
    """Outcomes of the rows the data contract rejected, against the training rows' (a bias check)."""

    rejected_with_outcome: int
    rejected_claims: int
    training_rows: int
    training_claims: int
    p_value: float  # Fisher's exact test: same claim rate among rejected and training rows

    @property
    def rejected_claim_rate(self) -> float:
        return self.rejected_claims / self.rejected_with_outcome if self.rejected_with_outcome else 0.0

    @property
    def training_claim_rate(self) -> float:
        return self.training_claims / self.training_rows if self.training_rows else 0.0

    def biased(self, min_rows: int = 10, p_value: float = 1e-3) -> bool:
        """True when the contract drops claimants (or non-claimants) far more than chance would."""
        return self.rejected_with_outcome >= min_rows and self.p_value < p_value

    def describe(self) -> str:
        with_them = (self.training_claims + self.rejected_claims) / max(
            self.training_rows + self.rejected_with_outcome, 1
        )
        return (
            f"{self.rejected_claims} of {self.rejected_with_outcome} rejected rows with a known outcome are claims "
            f"({self.rejected_claim_rate:.1%}) against {self.training_claim_rate:.1%} of the training rows "
            f"(Fisher p = {self.p_value:.1e}); with them the training claim rate would be {with_them:.2%}. "
            "Read their reasons in rejected_applications: a contract rule may be dropping real applicants."
        )


def rejected_outcomes(
    rejected_ids: pd.Series, outcomes: pd.DataFrame, rows: pd.DataFrame, cutoff: datetime
) -> RejectedOutcomes:
    """Compare the claim rate of rejected rows (outcomes known before ``cutoff``) with the training rows'."""
    from scipy.stats import fisher_exact

    known = outcomes.loc[pd.to_datetime(outcomes[KNOWN_DATE]) < pd.Timestamp(cutoff)]
    labels = known.drop_duplicates(APPLICATION_ID).set_index(APPLICATION_ID)[CLAIM_STATUS]
    rejected = labels.reindex(pd.Index(rejected_ids.dropna().astype(str).unique())).dropna()
    n_r, c_r = len(rejected), int(rejected.sum())
    n_t, c_t = len(rows), int(rows[CLAIM_STATUS].sum()) if len(rows) else 0
    p = fisher_exact([[c_r, n_r - c_r], [c_t, n_t - c_t]]).pvalue if n_r and n_t else 1.0
    return RejectedOutcomes(n_r, c_r, n_t, c_t, float(p))


def fingerprint(frame: pd.DataFrame) -> str:
    """A stable digest of a frame's content (rows, columns and values), for lineage."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
