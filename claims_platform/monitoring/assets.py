"""Monitoring assets: the daily drift report (with performance estimated before labels) and the monthly
performance measured once the outcomes are known, with the reserve backtest.
"""


import json
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform import settings
from claims_platform.models.loading import MissingReferenceError, load_reference_cached
from claims_platform.models.policy import DecisionPolicy
from claims_platform.models.registry import ModelRegistry
from claims_platform.monitoring.backtest import (
    PerformanceBounds,
    accepted_outcomes,
    daily_backtest,
    month_backtest,
    outcomes_known_from,
)
from claims_platform.monitoring.drift import PREDICTION_COLUMN, DriftSettings, Reference
from claims_platform.monitoring.estimation import estimate_performance
from claims_platform.monitoring.workspace import EvidentlyWorkspace
from claims_platform.months import month_key
from claims_platform.partitions import daily_partitions, monthly_partitions
from claims_platform.resources import ApplicationSource
from claims_platform.schema import APPLICATION_ID, CLAIM_STATUS

GROUP = "monitoring"
OWNERS = ["team:data-science", "team:actuarial"]
DRIFT_CHECK = "applications_drift_within_threshold"
PERFORMANCE_CHECK = "performance_within_bounds"
_DEFAULT_DRIFT = DriftSettings()
_DEFAULT_BOUNDS = PerformanceBounds()


class DriftReportConfig(dg.Config):
    """The pinned drift tests' thresholds (see docs/monitoring.md for how the defaults were measured)."""

    numerical_threshold: float = Field(
        default=_DEFAULT_DRIFT.numerical_threshold, gt=0, le=5, description="Normed Wasserstein distance at which a numerical column drifts."
    )
    categorical_threshold: float = Field(
        default=_DEFAULT_DRIFT.categorical_threshold, gt=0, le=1, description="Jensen-Shannon distance at which a categorical column drifts."
    )
    prediction_threshold: float = Field(
        default=_DEFAULT_DRIFT.prediction_threshold, gt=0, le=5, description="Normed Wasserstein distance at which the predicted probabilities drift."
    )
    min_drifted_columns: int = Field(
        default=_DEFAULT_DRIFT.min_drifted_columns, ge=1, le=40, description="Feature columns that must drift for the day to count as drifted."
    )

    def drift_settings(self) -> DriftSettings:
        return DriftSettings(
            numerical_threshold=self.numerical_threshold,
            categorical_threshold=self.categorical_threshold,
            prediction_threshold=self.prediction_threshold,
            min_drifted_columns=self.min_drifted_columns,
        )


def day_frame(applications: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The day's valid applications with their predicted probability (one row per application)."""
    probability = scores[[APPLICATION_ID, PREDICTION_COLUMN]]
    return applications.merge(probability, on=APPLICATION_ID, how="left", validate="one_to_one")


_EMPTY_HTML = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Applications drift {day}</title></head>"
    "<body><h1>Applications drift {day}</h1><p>No valid application on this day: nothing to compare.</p></body></html>"
)


def _empty_day(day: str, record: dict) -> dict[str, Any]:
    """The summary of a day without valid applications: nothing drifted, nothing estimated."""
    return {
        "day": day,
        "drifted": False,
        "drift_share": 0.0,
        "drifted_columns": {},
        "prediction_drift_score": None,
        "prediction_drifted": False,
        "rows": 0,
        "worst_columns": {},
        "model_version": record["version"],
        "model_uri": record["model_uri"],
        "estimated": None,
    }


def _drift_metadata(day: str, summary: dict[str, Any], location: str, registry: ModelRegistry) -> dict[str, Any]:
    estimated = summary["estimated"]
    if estimated is None:
        return {"drifted": False, "rows": 0, "model_version": summary["model_version"], "report": dg.MetadataValue.path(location)}
    return {
        "drifted": summary["drifted"],
        "drift_share": summary["drift_share"],
        "drifted_columns": dg.MetadataValue.json(summary["drifted_columns"]),
        "prediction_drift_score": summary["prediction_drift_score"],
        "worst_columns": dg.MetadataValue.json(summary["worst_columns"]),
        "rows": summary["rows"],
        "model_version": summary["model_version"],
        "model": registry.version_reference(summary["model_version"]),
        "estimated_kappa": estimated["estimated_kappa"],
        "estimated_kappa_95": f"{estimated['estimated_kappa_low']:.3f}–{estimated['estimated_kappa_high']:.3f}",
        "estimated_claim_rate": estimated["estimated_expected_claim_rate"],
        "report": dg.MetadataValue.path(location),
    }


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="report_io_manager",
    ins={"model_in_force": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping())},
    group_name=GROUP,
    owners=OWNERS,
    kinds={"evidently", "html"},
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="applications_drift_report",
            description="No drift of the applications or of the predicted probabilities by the pinned tests (warning).",
        )
    ],
    description=(
        "Evidently drift report of the day's valid applications and predicted probabilities against the reference "
        "sample of the model in force (pinned tests per column type), stored as HTML and a JSON snapshot; metadata: "
        "drift share, drifted columns, prediction drift, and the day's performance estimated from the calibrated "
        "probabilities before any outcome is known."
    ),
)
def applications_drift_report(
    context: dg.AssetExecutionContext,
    config: DriftReportConfig,
    applications: dict[str, pd.DataFrame],
    application_scores: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
    registry: ModelRegistry,
    evidently: EvidentlyWorkspace,
    report_io_manager: dg.ResourceParam[Any],
):
    """Drift decision and estimated performance per day, then each day's Evidently report."""
    from claims_platform.monitoring.reports import DriftReportInput, RenderedReport, build_drift_reports

    drift_settings = config.drift_settings()
    references: dict[str, Reference] = {}
    specs, summaries = [], {}
    empty: dict[str, RenderedReport] = {}
    for day in sorted(applications):
        record = model_in_force[month_key(day)]
        uri = record["model_uri"]
        if uri not in references:
            try:
                references[uri] = Reference(load_reference_cached(uri))
            except MissingReferenceError as error:
                raise dg.Failure(str(error)) from error
        current = day_frame(applications[day], application_scores[day])
        if current.empty:
            summaries[day] = summary = _empty_day(day, record)
            empty[day] = RenderedReport(html=_EMPTY_HTML.format(day=day), snapshot="{}", summary=summary)
            continue
        result = _measure(current, references[uri], drift_settings)
        policy = DecisionPolicy.from_dict(record["policy"])
        estimate = estimate_performance(current[PREDICTION_COLUMN].to_numpy(), policy.refer_at, seed=date.fromisoformat(day).toordinal())
        summary = {
            **result.summary(),
            "day": day,
            "worst_columns": result.worst(),
            "model_version": record["version"],
            "model_uri": uri,
            "estimated": estimate.as_dict(),
        }
        summaries[day] = summary
        specs.append(
            DriftReportInput(
                day, current, load_reference_cached(uri), references[uri].kinds, drift_settings, list(result.drifted_columns), summary
            )
        )
    built = build_drift_reports(specs)
    reports = {day: built.get(day) or empty[day] for day in sorted(applications)}
    if built and evidently.add({day: report.snapshot for day, report in built.items()}):
        context.log.info(f"Added {len(reports)} snapshot(s) to the Evidently workspace {evidently.path}")
    asset_path = context.asset_key.path
    for day, summary in summaries.items():
        context.add_asset_metadata(
            _drift_metadata(day, summary, report_io_manager.location(asset_path, day), registry), partition_key=day
        )
    drifted = {
        day: s["drifted_columns"] or {PREDICTION_COLUMN: s["prediction_drift_score"]} for day, s in summaries.items() if s["drifted"]
    }
    yield dg.Output(reports)
    yield dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"drift on {len(drifted)} of {len(summaries)} day(s): " + "; ".join(f"{d} {c}" for d, c in sorted(drifted.items()))
            if drifted
            else f"no drift on {len(summaries)} day(s)"
        )[:2000],
        metadata={"days": len(summaries), "drifted_days": len(drifted), **drift_settings.as_dict()},
    )


def _measure(current: pd.DataFrame, reference: Reference, drift_settings: DriftSettings):
    from claims_platform.monitoring.drift import measure_drift

    return measure_drift(current, reference, drift_settings)


# ------------------------------------------------------------------------------------- performance


def now() -> datetime:
    """The current instant (UTC); a function so tests can move the clock."""
    return datetime.now(UTC)


class ModelPerformanceConfig(dg.Config):
    """When the month's measured performance fails its check."""

    kappa_margin: float = Field(
        default=_DEFAULT_BOUNDS.kappa_margin, ge=0, le=1, description="Realised kappa may fall at most this far below the model's holdout kappa."
    )
    ratio_low: float = Field(default=_DEFAULT_BOUNDS.ratio_low, gt=0, lt=1, description="Lowest actual/expected claims among accepted applicants.")
    ratio_high: float = Field(default=_DEFAULT_BOUNDS.ratio_high, gt=1, description="Highest actual/expected claims among accepted applicants.")
    label_lag_days: int = Field(default=settings.LABEL_LAG_DAYS, ge=0, le=366, description="Days after which an application's outcome is known.")


def _performance_plot(daily: pd.DataFrame) -> dg.MarkdownMetadataValue:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from claims_platform.metadata import png_markdown

    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    x = pd.to_datetime(daily["day"])
    ax.fill_between(x, daily["claims_low"], daily["claims_high"], alpha=0.25, label="forecast 95% interval")
    ax.plot(x, daily["expected_claims"], label="expected (Σp)")
    ax.plot(x, daily["actual_claims"], "o", markersize=3, label="actual")
    ax.set_ylabel("claims among accepted")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return png_markdown(buffer.getvalue(), "reserve backtest")


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
        )
    ],
    description=(
        "Once the month's outcomes are known: realised kappa at the decision policy, AUC, Brier and calibration of the "
        "month's scores, the estimate made before the labels next to what happened, an Evidently classification report, "
        "and the reserve backtest (actual claims among accepted applicants against the nightly forecasts' intervals)."
    ),
)
def model_performance(
    context: dg.AssetExecutionContext,
    config: ModelPerformanceConfig,
    application_scores: dict[str, pd.DataFrame],
    reserve_forecast: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
    source: ApplicationSource,
    registry: ModelRegistry,
    report_io_manager: dg.ResourceParam[Any],
):
    """Join the month's scores with their outcomes; measure, compare with the estimate, backtest the reserve."""
    from claims_platform.monitoring.reports import RenderedReport, classification_report
    from claims_platform.training.metrics import evaluate

    month = context.partition_key
    known_from = outcomes_known_from(month, config.label_lag_days)
    instant = now()
    if instant.date() < known_from:
        raise dg.Failure(
            f"The outcomes of {month[:7]} are not all known yet: they are from {known_from} (the month's last day + "
            f"{config.label_lag_days} days' label lag), and it is {instant:%Y-%m-%d %H:%M} UTC. "
            "The `model_performance_sensor` materializes this partition automatically once they are."
        )
    if not application_scores:
        raise dg.Failure(f"No scored day in {month[:7]}: materialize `application_scores` for its days first.")
    record = model_in_force[month]
    policy = DecisionPolicy.from_dict(record["policy"])
    scores = pd.concat([application_scores[d] for d in sorted(application_scores)], ignore_index=True)
    forecast = pd.concat([reserve_forecast[d] for d in sorted(reserve_forecast)], ignore_index=True)
    first, last = date.fromisoformat(min(application_scores)), date.fromisoformat(max(application_scores))
    outcomes = source.read_outcomes(first, last, known_before=instant.replace(tzinfo=None))
    joined = scores.merge(outcomes[[APPLICATION_ID, CLAIM_STATUS]], on=APPLICATION_ID, how="left", validate="one_to_one")
    labelled = joined.dropna(subset=[CLAIM_STATUS])
    if labelled.empty:
        raise dg.Failure(f"None of the {len(scores):,} scored applications of {month[:7]} has a known outcome in the warehouse.")
    y = labelled[CLAIM_STATUS].astype("int64").to_numpy()
    p = labelled[PREDICTION_COLUMN].to_numpy(dtype="float64")
    realised = evaluate(y, p, policy.refer_at)
    estimate = estimate_performance(p, policy.refer_at)
    daily = daily_backtest(forecast, scores, outcomes)
    accepted = accepted_outcomes(scores, outcomes).dropna(subset=[CLAIM_STATUS])
    backtest = month_backtest(daily, accepted[PREDICTION_COLUMN].to_numpy())
    holdout = registry.run_metrics(record["version"]) if record.get("version") is not None else {}
    holdout_kappa = float(holdout.get("holdout_kappa", np.nan))
    bounds = PerformanceBounds(kappa_margin=config.kappa_margin, ratio_low=config.ratio_low, ratio_high=config.ratio_high)
    failures = bounds.failures(realised["kappa"], holdout_kappa, backtest.actual_to_expected)
    summary = {
        "month": month[:7],
        "model_version": record["version"],
        "days_scored": len(application_scores),
        "scored": len(scores),
        "with_outcome": len(labelled),
        "policy": policy.as_dict(),
        "realised": {k: float(v) for k, v in realised.items()},
        "estimated": estimate.as_dict(),
        "holdout_kappa": holdout_kappa if np.isfinite(holdout_kappa) else None,
        "backtest": {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in backtest.as_dict().items()},
        "daily_backtest": json.loads(daily.to_json(orient="records")),
        "failures": failures,
        "passed": not failures,
    }
    rendered = classification_report(labelled, month, policy.refer_at)
    report = RenderedReport(html=rendered.html, snapshot=rendered.snapshot, summary=summary)
    yield dg.Output(
        report,
        metadata={
            "model_version": record["version"],
            "model": registry.version_reference(record["version"]),
            "days_scored": len(application_scores),
            "scored": len(scores),
            "with_outcome": len(labelled),
            "realised_kappa": round(realised["kappa"], 4),
            "estimated_kappa": round(estimate.kappa, 4),
            "estimated_kappa_95": f"{estimate.kappa_low:.3f}–{estimate.kappa_high:.3f}",
            "holdout_kappa": round(holdout_kappa, 4) if np.isfinite(holdout_kappa) else "n/a",
            "realised_roc_auc": round(realised["roc_auc"], 4),
            "realised_brier": round(realised["brier"], 5),
            "realised_ece": round(realised["ece"], 5),
            "realised_claim_rate": round(realised["claim_rate"], 4),
            "estimated_claim_rate": round(estimate.expected_claim_rate, 4),
            "backtest_actual_claims": backtest.actual_claims,
            "backtest_expected_claims": round(backtest.expected_claims, 1),
            "backtest_interval": f"{backtest.claims_low}–{backtest.claims_high}",
            "backtest_actual_to_expected": round(backtest.actual_to_expected, 4),
            "backtest_daily_coverage": f"{backtest.days_inside}/{backtest.days} days ({backtest.coverage:.0%})",
            "backtest_plot": _performance_plot(daily),
            "report": dg.MetadataValue.path(report_io_manager.location(context.asset_key.path, month)),
            "passed": not failures,
        },
    )
    yield dg.AssetCheckResult(
        check_name=PERFORMANCE_CHECK,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(failures) or "realised kappa and actual/expected claims within bounds",
        metadata={
            "realised_kappa": float(realised["kappa"]),
            "holdout_kappa": holdout_kappa if np.isfinite(holdout_kappa) else None,
            "actual_to_expected": float(backtest.actual_to_expected),
            **asdict(bounds),
        },
    )
