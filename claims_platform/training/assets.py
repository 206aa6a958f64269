"""The monthly training set: point in time, labelled by a cutoff (the candidate model is in ``models.candidate``)."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from pydantic import Field, field_validator

from claims_platform.core.partitions import monthly_partitions
from claims_platform.core.schema import APPLICATION_ID, CLAIM_STATUS
from claims_platform.core.services import names_outages
from claims_platform.core.settings import FIRST_DAY, TRAINING_WINDOW_MONTHS
from claims_platform.source.resources import ApplicationSource
from claims_platform.training.dataset import (
    MIN_MONTH_COVERAGE,
    fingerprint,
    label_applications,
    rejected_outcomes,
    training_window,
)

GROUP = "training"
OWNERS = ["team:data-science"]
REJECTED_UNBIASED = "rejected_rows_unbiased"


def _month_of(context: dg.AssetExecutionContext):
    return context.partition_time_window.start.date()


class TrainingSetConfig(dg.Config):
    """How the month's training set is cut."""

    window_months: int = Field(
        default=TRAINING_WINDOW_MONTHS,
        ge=2,
        le=TRAINING_WINDOW_MONTHS,
        description="Months of applications ending with the partition's month.",
    )
    label_cutoff: str | None = Field(
        default=None,
        description=(
            "Off-cycle retrain: use outcomes known before this ISO instant (UTC) instead of the first "
            "instant of the next month. May only be later. Recorded in metadata."
        ),
    )
    min_month_coverage: float = Field(
        default=MIN_MONTH_COVERAGE,
        gt=0,
        le=1,
        description="A month counts as labelled when this share of it has outcomes.",
    )

    @field_validator("label_cutoff")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"not an ISO instant such as 2025-07-01T00:00:00+00:00: {value!r}") from None
        return value


def _window_input() -> dg.AssetIn:
    """The daily partitions of the trailing window ending with the month (the first year reaches back
    before the first ingested day, so missing partitions are allowed)."""
    return dg.AssetIn(
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-(TRAINING_WINDOW_MONTHS - 1),
            end_offset=0,
            allow_nonexistent_upstream_partitions=True,
        ),
        metadata={"allow_missing_partitions": True},
    )


@dg.asset(
    partitions_def=monthly_partitions,
    ins={"applications": _window_input(), "rejected_applications": _window_input()},
    check_specs=[
        dg.AssetCheckSpec(
            REJECTED_UNBIASED,
            asset="training_set",
            description=(
                "The rows the data contract rejected in the window have the training rows' claim rate "
                "(a contract that drops mostly claimants biases every model)."
            ),
        )
    ],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas", "parquet"},
    description=(
        "Applications of the trailing window ending with the month, labelled with the outcomes known "
        "before the cutoff (first instant of the next month, or a later run-config `label_cutoff`)."
    ),
)
@names_outages
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    applications: dict[str, pd.DataFrame],
    rejected_applications: dict[str, pd.DataFrame],
    source: ApplicationSource,
):
    """Point-in-time labelled rows for the month's model; never an outcome known after the cutoff."""
    cutoff = _cutoff(config.label_cutoff)
    window = training_window(_month_of(context), config.window_months, cutoff, earliest=FIRST_DAY)
    days = [frame for key, frame in sorted(applications.items()) if window.first_day.isoformat() <= key]
    if not days:
        raise dg.Failure(
            f"No ingested applications for the window {window.first_day}..{window.last_day}: "
            "materialize the daily `applications` partitions of those days first."
        )
    apps = pd.concat(days, ignore_index=True)
    outcomes = source.read_outcomes(window.first_day, window.last_day, known_before=window.cutoff)
    labelled = label_applications(apps, outcomes, window, config.min_month_coverage)
    rows = labelled.rows
    if rows.empty:
        # The platform's first month(s): nothing is labelled yet. Not an error of this asset: the
        # candidate records why no model can be trained, and the champion chain still decides.
        context.log.warning(
            f"No month of {window.first_day:%Y-%m}..{window.last_day:%Y-%m} is labelled to "
            f"{config.min_month_coverage:.0%} by {window.cutoff.isoformat()} (coverage {labelled.coverage})."
        )
    rejected = [
        f for key, f in rejected_applications.items() if window.first_day.isoformat() <= key and len(f)
    ]
    rejected_ids = pd.concat([f[APPLICATION_ID] for f in rejected]) if rejected else pd.Series(dtype="object")
    bias = rejected_outcomes(rejected_ids, outcomes, rows, window.cutoff)
    yield dg.Output(
        rows,
        metadata={
            **window.as_metadata(),
            "label_cutoff_source": "run config (off-cycle)" if cutoff else "end of month",
            "days_loaded": len(days),
            "applications_in_window": labelled.applications,
            "training_rows": len(rows),
            "rows_of_partly_labelled_months": labelled.excluded_rows,
            "duplicate_id_rows_dropped": labelled.duplicate_rows,
            "rejected_rows_in_window": len(rejected_ids),
            "claim_rate": round(float(rows[CLAIM_STATUS].mean()), 4) if len(rows) else "n/a",
            "label_coverage": dg.MetadataValue.json(labelled.coverage),
            "fingerprint": fingerprint(rows),
        },
    )
    yield _rejected_unbiased(bias)


def _cutoff(label_cutoff: str | None) -> datetime | None:
    """The run config's label cutoff as naive UTC (None: the end of the month)."""
    cutoff = datetime.fromisoformat(label_cutoff) if label_cutoff else None
    if cutoff is not None and cutoff.tzinfo is not None:
        cutoff = cutoff.astimezone(UTC).replace(tzinfo=None)
    return cutoff


def _rejected_unbiased(bias) -> dg.AssetCheckResult:
    """Whether the rows the contract rejected claim like the training rows (a warning when not)."""
    return dg.AssetCheckResult(
        check_name=REJECTED_UNBIASED,
        passed=not bias.biased(),
        severity=dg.AssetCheckSeverity.WARN,
        description=bias.describe()
        if bias.rejected_with_outcome
        else "No rejected row of the window has a known outcome.",
        metadata={
            "rejected_with_outcome": bias.rejected_with_outcome,
            "rejected_claim_rate": round(bias.rejected_claim_rate, 4),
            "training_claim_rate": round(bias.training_claim_rate, 4),
            "p_value": float(f"{bias.p_value:.3g}"),
        },
    )
