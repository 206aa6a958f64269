"""The monthly `model_performance` asset: what happened once a month's outcomes are known, next to what
was estimated before them, and the reserve backtest.
"""

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform.core import settings
from claims_platform.core.alerts import AlertsResource
from claims_platform.core.figures import one_decimal, percent
from claims_platform.core.partitions import monthly_partitions
from claims_platform.core.pictures import figure_markdown, sparkline_markdown
from claims_platform.core.policy import DecisionPolicy
from claims_platform.core.protected import protected_columns
from claims_platform.core.schema import APPLICATION_ID, CLAIM_STATUS
from claims_platform.core.services import names_outages
from claims_platform.models.loading import calibration_level_sd
from claims_platform.models.registry import ModelRegistry
from claims_platform.monitoring.backtest import (
    PerformanceBounds,
    accepted_outcomes,
    daily_backtest,
    month_backtest,
    outcomes_known_from,
)
from claims_platform.monitoring.drift import PREDICTION_COLUMN
from claims_platform.monitoring.estimation import estimate_performance
from claims_platform.source.resources import ApplicationSource
from claims_platform.training.fairness import group_table, protected_in
from claims_platform.training.fairness_report import (
    FAIRNESS_CHECK,
    FAIRNESS_CHECK_DESCRIPTION,
    FairnessConfig,
    FairnessReport,
)

GROUP = "monitoring"
OWNERS = ["team:data-science", "team:actuarial"]
PERFORMANCE_CHECK = "performance_within_bounds"
_DEFAULT_BOUNDS = PerformanceBounds()


def now() -> datetime:
    """The current instant (UTC); a function so tests can move the clock."""
    return datetime.now(UTC)


class ModelPerformanceConfig(FairnessConfig):
    """When the month's measured performance fails its check; the fairness check's tolerances."""

    kappa_margin: float = Field(
        default=_DEFAULT_BOUNDS.kappa_margin,
        ge=0,
        le=1,
        description="Realised kappa may fall at most this far below the model's holdout kappa.",
    )
    ratio_low: float = Field(
        default=_DEFAULT_BOUNDS.ratio_low,
        gt=0,
        lt=1,
        description="Lowest actual/expected claims among accepted applicants.",
    )
    ratio_high: float = Field(
        default=_DEFAULT_BOUNDS.ratio_high,
        gt=1,
        description="Highest actual/expected claims among accepted applicants.",
    )
    label_lag_days: int = Field(
        default=settings.LABEL_LAG_DAYS,
        ge=0,
        le=366,
        description="Days after which an application's outcome is known.",
    )


def _backtest_sparkline(daily: pd.DataFrame) -> dg.MarkdownMetadataValue:
    """The month's days at a glance, small enough for the UI to show inline: each night's 95% interval
    (band) and expected claims (line) among accepted applicants, and the actual claims (dots, red outside)."""
    return sparkline_markdown(
        daily["expected_claims"].to_numpy(dtype="float64"),
        "daily claims among accepted: forecast interval, expected, actual",
        low=daily["claims_low"].to_numpy(dtype="float64"),
        high=daily["claims_high"].to_numpy(dtype="float64"),
        marks=daily["actual_claims"].to_numpy(dtype="float64"),
    )


def _performance_plot(daily: pd.DataFrame) -> dg.MarkdownMetadataValue:
    """The same with axes and a legend (a full chart: the UI opens it from a "[Show Markdown]" link)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    x = pd.to_datetime(daily["day"])
    ax.fill_between(x, daily["claims_low"], daily["claims_high"], alpha=0.25, label="forecast 95% interval")
    ax.plot(x, daily["expected_claims"], label="expected (Σp)")
    ax.plot(x, daily["actual_claims"], "o", markersize=3, label="actual")
    ax.set_ylabel("claims among accepted")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return figure_markdown(fig, "reserve backtest")


@dg.asset(
    partitions_def=monthly_partitions,
    io_manager_key="report_io_manager",
    ins={
        # A month may be partly scored (the platform's first scored month): its scored days are measured.
        "application_scores": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(), metadata={"allow_missing_partitions": True}
        ),
        "reserve_forecast": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(), metadata={"allow_missing_partitions": True}
        ),
        "model_in_force": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping()),
    },
    group_name=GROUP,
    owners=OWNERS,
    kinds={"evidently", "html"},
    check_specs=[
        dg.AssetCheckSpec(
            PERFORMANCE_CHECK,
            asset="model_performance",
            description="Realised kappa within the margin of the model's holdout kappa; actual/expected claims within the band.",
        ),
        dg.AssetCheckSpec(
            FAIRNESS_CHECK,
            asset="model_performance",
            description=FAIRNESS_CHECK_DESCRIPTION + " On the month's outcomes.",
        ),
    ],
    description=(
        "Once the month's outcomes are known: realised kappa at the decision policy, AUC, Brier and calibration of the "
        "month's scores, the estimate made before the labels next to what happened, an Evidently classification report, "
        "the reserve backtest (actual claims among accepted applicants against the nightly forecasts' intervals), and "
        "outcomes by group of every protected column."
    ),
)
@names_outages
def model_performance(
    context: dg.AssetExecutionContext,
    config: ModelPerformanceConfig,
    application_scores: dict[str, pd.DataFrame],
    reserve_forecast: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
    source: ApplicationSource,
    registry: ModelRegistry,
    alerts: AlertsResource,
    report_io_manager: dg.ResourceParam[Any],
):
    """Join the month's scores with their outcomes; measure, compare with the estimate, backtest the reserve."""
    from claims_platform.monitoring.reports import classification_report

    month = context.partition_key
    instant = now()
    _require_outcomes_known(month, config.label_lag_days, instant, application_scores)
    record = model_in_force[month]
    policy = DecisionPolicy.from_dict(record["policy"])
    scores = pd.concat([application_scores[d] for d in sorted(application_scores)], ignore_index=True)
    forecast = pd.concat([reserve_forecast[d] for d in sorted(reserve_forecast)], ignore_index=True)
    outcomes, labelled = _with_outcomes(scores, source, application_scores, instant, month)
    measured = _measure(config, record, policy, labelled, scores, forecast, outcomes, registry)
    fairness = FairnessReport(
        _month_groups(config, labelled, source, application_scores, policy), config.fairness_tolerance(),
        "model_performance", month[:7], f"{month[:7]}'s outcomes (model v{record['version']})",
        {"month": month[:7], "run": context.run_id},
    )  # fmt: skip
    summary = {
        "month": month[:7],
        "model_version": record["version"],
        "days_scored": len(application_scores),
        "scored": len(scores),
        "with_outcome": len(labelled),
        **measured.summary(policy),
        "fairness": fairness.record(),
    }
    rendered = classification_report(labelled, month, policy.refer_at)
    report = replace(rendered, summary=summary)
    location = report_io_manager.location(context.asset_key.path, month)
    context.add_asset_metadata(
        {**_month_metadata(record, registry, summary, measured, location), **fairness.metadata()},
        partition_key=month,
    )
    fairness.send_alert(alerts, context.log)
    yield dg.Output(report)
    yield _performance_check(measured)
    yield fairness.check()


def _month_groups(
    config: "ModelPerformanceConfig",
    labelled: pd.DataFrame,
    source: ApplicationSource,
    days: dict,
    policy: DecisionPolicy,
) -> pd.DataFrame:
    """Outcomes by group of every protected column, among the month's scored applications with an outcome
    (their protected columns read back from the warehouse: the scores do not carry them)."""
    columns = protected_in(protected_columns())
    applications = source.read_applications(date.fromisoformat(min(days)), date.fromisoformat(max(days)))
    rows = labelled.merge(
        applications[[APPLICATION_ID, *columns]], on=APPLICATION_ID, how="left", validate="one_to_one"
    )
    p = rows[PREDICTION_COLUMN].to_numpy(dtype="float64")
    return group_table(
        rows, rows[CLAIM_STATUS].astype("int64").to_numpy(), p, rows["decision"].to_numpy(), columns,
        config.fairness_tolerance(), refer_at=policy.refer_at,
    )  # fmt: skip


def _with_outcomes(
    scores: pd.DataFrame, source: ApplicationSource, days: dict, instant: datetime, month: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The outcomes known now of the month's days, and the scored applications that have one."""
    first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    outcomes = source.read_outcomes(first, last, known_before=instant.replace(tzinfo=None))
    joined = scores.merge(
        outcomes[[APPLICATION_ID, CLAIM_STATUS]], on=APPLICATION_ID, how="left", validate="one_to_one"
    )
    labelled = joined.dropna(subset=[CLAIM_STATUS])
    if labelled.empty:
        raise dg.Failure(
            f"None of the {len(scores):,} scored applications of {month[:7]} has a known outcome in the warehouse."
        )
    return outcomes, labelled


def _performance_check(measured) -> dg.AssetCheckResult:
    """The month's check: realised kappa and actual/expected claims within their bounds."""
    realised, backtest, holdout_kappa = measured.realised, measured.backtest, measured.holdout_kappa
    return dg.AssetCheckResult(
        check_name=PERFORMANCE_CHECK,
        passed=not measured.failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(measured.failures) or "realised kappa and actual/expected claims within bounds",
        metadata={
            "realised_kappa": float(realised["kappa"]),
            "holdout_kappa": holdout_kappa if np.isfinite(holdout_kappa) else None,
            "actual_to_expected": float(backtest.actual_to_expected),
            **asdict(measured.bounds),
        },
    )


def _require_outcomes_known(
    month: str, label_lag_days: int, instant: datetime, application_scores: dict
) -> None:
    """Refuse a month whose outcomes are not all known yet, or that has no scored day."""
    known_from = outcomes_known_from(month, label_lag_days)
    if instant.date() < known_from:
        raise dg.Failure(
            f"The outcomes of {month[:7]} are not all known yet: they are from {known_from} (the month's last day + "
            f"{label_lag_days} days' label lag), and it is {instant:%Y-%m-%d %H:%M} UTC. "
            "The `model_performance_sensor` materializes this partition automatically once they are."
        )
    if not application_scores:
        raise dg.Failure(
            f"No scored day in {month[:7]}: materialize `application_scores` for its days first."
        )


@dataclass(frozen=True)
class _Measured:
    """A month measured once its outcomes are known: realised, estimated, the reserve backtest, the check."""

    realised: dict[str, float]
    estimate: Any
    daily: pd.DataFrame
    backtest: Any
    holdout_kappa: float
    bounds: PerformanceBounds
    failures: list[str]

    def summary(self, policy: DecisionPolicy) -> dict[str, Any]:
        finite = np.isfinite(self.holdout_kappa)
        return {
            "policy": policy.as_dict(),
            "realised": {k: float(v) for k, v in self.realised.items()},
            "estimated": self.estimate.as_dict(),
            "holdout_kappa": self.holdout_kappa if finite else None,
            "backtest": {
                k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in self.backtest.as_dict().items()
            },
            "daily_backtest": json.loads(self.daily.to_json(orient="records")),
            "failures": self.failures,
            "passed": not self.failures,
        }


def _measure(
    config, record, policy: DecisionPolicy, labelled, scores, forecast, outcomes, registry
) -> _Measured:
    from claims_platform.training.metrics import evaluate

    y = labelled[CLAIM_STATUS].astype("int64").to_numpy()
    p = labelled[PREDICTION_COLUMN].to_numpy(dtype="float64")
    realised = evaluate(y, p, policy.refer_at)
    daily = daily_backtest(forecast, scores, outcomes)
    accepted = accepted_outcomes(scores, outcomes).dropna(subset=[CLAIM_STATUS])
    backtest = month_backtest(
        daily, accepted[PREDICTION_COLUMN].to_numpy(), calibration_level_sd(record.get("model_uri"))
    )
    holdout = registry.run_metrics(record["version"]) if record.get("version") is not None else {}
    holdout_kappa = float(holdout.get("holdout_kappa", np.nan))
    bounds = PerformanceBounds(
        kappa_margin=config.kappa_margin, ratio_low=config.ratio_low, ratio_high=config.ratio_high
    )
    failures = bounds.failures(realised["kappa"], holdout_kappa, backtest.actual_to_expected)
    return _Measured(
        realised, estimate_performance(p, policy.refer_at), daily, backtest, holdout_kappa, bounds, failures
    )


def _month_metadata(
    record: dict, registry, summary: dict, measured: _Measured, location: str
) -> dict[str, Any]:
    """The month's own figures on its own partition (scores rounded; rates as percentages)."""
    realised, estimate, backtest, holdout_kappa = (
        measured.realised,
        measured.estimate,
        measured.backtest,
        measured.holdout_kappa,
    )
    return {
        "model_version": record["version"],
        "model": registry.version_reference(record["version"]),
        "days_scored": summary["days_scored"],
        "scored": summary["scored"],
        "with_outcome": summary["with_outcome"],
        "realised_kappa": round(realised["kappa"], 3),
        "estimated_kappa": round(estimate.kappa, 3),
        "estimated_kappa_95": f"{estimate.kappa_low:.3f}–{estimate.kappa_high:.3f}",
        "holdout_kappa": round(holdout_kappa, 3) if np.isfinite(holdout_kappa) else "n/a",
        "realised_roc_auc": round(realised["roc_auc"], 3),
        "realised_brier": round(realised["brier"], 4),
        "realised_calibration_error": percent(realised["ece"], 2),
        "realised_claim_rate": percent(realised["claim_rate"], 2),
        "estimated_claim_rate": percent(estimate.expected_claim_rate, 2),
        "backtest_actual_claims": backtest.actual_claims,
        "backtest_expected_claims": one_decimal(backtest.expected_claims),
        "backtest_interval": f"{backtest.claims_low}–{backtest.claims_high} claims",
        "backtest_actual_to_expected": round(backtest.actual_to_expected, 3),
        "backtest_daily_coverage": f"{backtest.days_inside}/{backtest.days} days ({backtest.coverage:.0%})",
        "backtest_days": _backtest_sparkline(measured.daily),
        "backtest_plot": _performance_plot(measured.daily),
        "report": dg.MetadataValue.path(location),
        "passed": not measured.failures,
    }
