"""Daily drift: the decision on the nightly run's critical path, the Evidently report in a run of its own.

- `applications_drift` (in `nightly_scoring`): each day's applications and predicted probabilities
  against the reference sample shipped with the model in force, by the pinned tests; the day's
  performance estimated from the calibrated probabilities; metadata per day; a warning check. About
  0.1 s a day, without importing Evidently.
- `applications_drift_report` (job `drift_reports`, requested by `drift_report_sensor` after every
  successful `nightly_scoring` run, for the same days): Evidently's HTML report and JSON snapshot of
  the same tests, stored through the report IO manager, and added to the Evidently workspace.
  Evidently costs 2–4 s to import and ~0.4 s a day to run: off the critical path, in worker
  processes when a backfill has many days.
"""

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from claims_platform.core.figures import percent
from claims_platform.core.months import month_key
from claims_platform.core.partitions import daily_partitions
from claims_platform.core.pictures import bars_markdown
from claims_platform.core.policy import DecisionPolicy
from claims_platform.core.schema import APPLICATION_ID, FEATURES
from claims_platform.core.services import names_outages
from claims_platform.models.loading import (
    MissingReferenceError,
    MissingRuntimeError,
    importance_cached,
    load_reference_cached,
)
from claims_platform.models.registry import ModelRegistry
from claims_platform.monitoring.drift import (
    PREDICTION_COLUMN,
    DriftSettings,
    Reference,
    column_kinds,
    measure_drift,
)
from claims_platform.monitoring.estimation import estimate_performance
from claims_platform.monitoring.relevance import (
    RelevanceRules,
    drift_relevance,
    floor_rows,
    kappa_floor,
    plug_in_kappa,
)
from claims_platform.monitoring.workspace import EvidentlyWorkspace

GROUP = "monitoring"
OWNERS = ["team:data-science", "team:actuarial"]
DRIFT_CHECK = "applications_drift_within_threshold"
_DEFAULT = DriftSettings()
_RELEVANCE = RelevanceRules()


class DriftConfig(dg.Config):
    """The pinned drift tests' thresholds: calibrated to each day's row count unless set by hand
    (docs/monitoring.md says how, and the false-alarm rates measured at 50 to 12,000 rows a day)."""

    numerical_threshold: float | None = Field(
        default=_DEFAULT.numerical_threshold,
        gt=0,
        le=5,
        description="Normed Wasserstein distance at which a numerical column drifts; unset: calibrated per day's rows.",
    )
    categorical_threshold: float | None = Field(
        default=_DEFAULT.categorical_threshold,
        gt=0,
        le=1,
        description="Jensen-Shannon distance at which a categorical column drifts; unset: calibrated per day's rows.",
    )
    prediction_threshold: float | None = Field(
        default=_DEFAULT.prediction_threshold,
        gt=0,
        le=5,
        description="Normed Wasserstein distance at which the predicted probabilities drift; unset: calibrated per day's rows.",
    )
    false_alarm_rate: float = Field(
        default=_DEFAULT.false_alarm_rate,
        gt=0,
        lt=0.5,
        description="Chance that a day like the reference drifts by the calibrated thresholds (all tests together).",
    )
    min_drifted_columns: int = Field(
        default=_DEFAULT.min_drifted_columns,
        ge=1,
        le=40,
        description="Feature columns that must drift for the day to count as drifted.",
    )
    max_rejected_share: float = Field(
        default=_DEFAULT.max_rejected_share,
        gt=0,
        le=1,
        description="A day whose share of rows rejected by the data contract exceeds this counts as drifted (data quality).",
    )
    min_importance_share: float = Field(
        default=_RELEVANCE.min_importance_share,
        gt=0,
        le=1,
        description="Drift in columns carrying together at least this share of the model's importance can move decisions: a retrain.",
    )
    max_kappa_drop: float = Field(
        default=_RELEVANCE.max_kappa_drop,
        gt=0,
        lt=1,
        description="A drifted day whose estimated kappa is this far below the reference's, and below the chance floor of a day of its size, asks for a retrain.",
    )

    def relevance_rules(self) -> RelevanceRules:
        return RelevanceRules(
            min_importance_share=self.min_importance_share, max_kappa_drop=self.max_kappa_drop
        )

    def drift_settings(self) -> DriftSettings:
        return DriftSettings(
            numerical_threshold=self.numerical_threshold,
            categorical_threshold=self.categorical_threshold,
            prediction_threshold=self.prediction_threshold,
            false_alarm_rate=self.false_alarm_rate,
            min_drifted_columns=self.min_drifted_columns,
            max_rejected_share=self.max_rejected_share,
        )


def day_frame(applications: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The day's valid applications with their predicted probability (one row per application)."""
    return applications.merge(
        scores[[APPLICATION_ID, PREDICTION_COLUMN]], on=APPLICATION_ID, how="left", validate="one_to_one"
    )


def _reference(uri: str) -> pd.DataFrame:
    try:
        return load_reference_cached(uri)
    except MissingReferenceError as error:
        raise dg.Failure(str(error)) from error


@dataclass
class ModelInForce:
    """What a day's decision needs of the model in force, prepared once per model for many days: its
    reference sample, its importance per feature, and the reference's estimated kappa at a screen."""

    reference: Reference
    importance: dict[str, float]
    _kappa: dict[tuple[float, int, float], tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def load(cls, uri: str) -> "ModelInForce":
        try:
            importance = importance_cached(uri)
        except MissingRuntimeError:  # a model registered before models shipped their code: importance unknown
            importance = {}
        return cls(Reference(_reference(uri)), importance)

    def reference_level(self) -> dict[str, float | None]:
        """The mean and standard deviation of the reference's probabilities: what the predictions' level over
        a week is judged against (:mod:`~claims_platform.monitoring.level`; None without predictions)."""
        prediction = self.reference.prediction
        if prediction is None or len(prediction) < 2:
            return {"reference_prediction_mean": None, "reference_prediction_sd": None}
        p = prediction.to_numpy(dtype="float64")
        return {"reference_prediction_mean": float(p.mean()), "reference_prediction_sd": float(p.std(ddof=1))}

    def reference_kappa(
        self, refer_at: float, rows: int, false_alarm_rate: float
    ) -> tuple[float, float] | None:
        """The plug-in estimated kappa of the reference's own predictions, and its chance floor at a day of
        ``rows`` rows (:func:`~claims_platform.monitoring.relevance.kappa_floor`); None without predictions."""
        prediction = self.reference.prediction
        if prediction is None or prediction.empty:
            return None
        bucket = floor_rows(rows)
        if (refer_at, bucket, false_alarm_rate) not in self._kappa:
            p = prediction.to_numpy()
            estimate = float(plug_in_kappa(p.reshape(1, -1), refer_at)[0])
            self._kappa[refer_at, bucket, false_alarm_rate] = (
                estimate,
                kappa_floor(p, bucket, refer_at, false_alarm_rate),
            )
        return self._kappa[refer_at, bucket, false_alarm_rate]


def _day_summary(
    day: str,
    current: pd.DataFrame,
    rejected_rows: int,
    model: ModelInForce,
    record: dict,
    drift_settings: DriftSettings,
    rules: RelevanceRules = _RELEVANCE,
) -> dict[str, Any]:
    """The day's drift decision, what it means for the model, and the estimated performance (plain values)."""
    reference = model.reference
    base = {
        "day": day, "model_version": record["version"], "model_uri": record["model_uri"], "policy": record["policy"],
        **model.reference_level(),
    }  # fmt: skip
    settings_record = {**drift_settings.as_dict(), **asdict(rules)}
    if current.empty:
        exceeded = rejected_rows > 0 and drift_settings.max_rejected_share < 1.0
        return {
            **base,
            "drifted": exceeded,
            "drift_share": 0.0,
            "drifted_columns": {},
            "prediction_drift_score": None,
            "prediction_drifted": False,
            "rows": 0,
            "rejected_rows": rejected_rows,
            "rejected_share": 1.0 if rejected_rows else 0.0,
            "rejected_share_exceeded": exceeded,
            "reference_rows": reference.rows,
            "worst_columns": {},
            "column_scores": {},
            "column_thresholds": {},
            "settings": settings_record,
            "relevance": drift_relevance(exceeded, [], False, model.importance, rules=rules).as_dict(),
            "estimated": None,
            "prediction_mean": None,
        }
    result = measure_drift(current, reference, drift_settings, rejected_rows=rejected_rows)
    refer_at = DecisionPolicy.from_dict(record["policy"]).refer_at
    estimate = estimate_performance(
        current[PREDICTION_COLUMN].to_numpy(), refer_at, seed=date.fromisoformat(day).toordinal()
    )
    relevance = drift_relevance(
        result.drifted, result.drifted_columns, result.prediction_drifted, model.importance,
        estimate.kappa, model.reference_kappa(refer_at, len(current), drift_settings.false_alarm_rate), rules,
    )  # fmt: skip
    return {
        **base,
        **result.summary(),
        "settings": settings_record,
        "worst_columns": result.worst(),
        "relevance": relevance.as_dict(),
        "estimated": estimate.as_dict(),
        "prediction_mean": float(current[PREDICTION_COLUMN].mean()),
    }


def _scores(scores: dict[str, float]) -> dg.JsonMetadataValue:
    """Column scores, worst first, to 3 decimals (the UI shows a short JSON inline)."""
    return dg.MetadataValue.json({column: round(score, 3) for column, score in scores.items()})


def _column_drift_picture(summary: dict[str, Any]) -> dg.MarkdownMetadataValue | None:
    """Each feature column's drift score as a share of its threshold, in schema order (red above it):
    a picture small enough for the UI to show inline on the day's page."""
    scores = summary.get("column_scores") or {}
    limits = summary.get("column_thresholds") or {}
    kinds = [c for c in FEATURES if c in scores and c in limits]
    if not kinds:
        return None
    return bars_markdown([scores[c] / limits[c] for c in kinds], "drift score / threshold per feature column")


def _relevance_metadata(relevance: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the day's drift matters to the model in force: its level (``none``, ``warning``: drift the
    model barely uses, ``retrain``: drift that can move decisions), why, and each drifted column's share of
    the model's importance (what the alerts sensor reads)."""
    if relevance is None:
        return {}
    touched = relevance["drifted_importance"]
    return {
        "drift_level": relevance["level"],
        "drift_reasons": "; ".join(relevance["reasons"])
        or ("drift in columns the model barely uses" if relevance["level"] == "warning" else "-"),
        "drifted_importance": "unknown" if touched is None else percent(touched, 1),
        "drifted_column_importance": dg.MetadataValue.json(
            {c: round(v, 3) for c, v in relevance["importance"].items()}
        ),
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def sensor_facts(summary: dict[str, Any]) -> dict[str, Any]:
    """The day's metadata that the alerts sensor reads back (:func:`~claims_platform.assembly.monitoring_sensors.drift_day`):
    the decision and its severity, whether it matters, and the day's mean probability with its reference's."""
    return {
        "drifted": summary["drifted"],
        # The largest score / threshold of the day's tests (1+: drifted); the episode rules smooth it.
        "drift_severity": summary.get("severity"),
        **_relevance_metadata(summary.get("relevance")),
        "rows": summary["rows"],
        "model_version": summary["model_version"],
        # The predictions' level, pooled over a week by the episode rules (monitoring/level.py).
        "prediction_mean": _rounded(summary.get("prediction_mean"), 5),
        "reference_prediction_mean": _rounded(summary.get("reference_prediction_mean"), 5),
        "reference_prediction_sd": _rounded(summary.get("reference_prediction_sd"), 5),
        "reference_rows": summary["reference_rows"],
    }


def _drift_metadata(summary: dict[str, Any], registry: ModelRegistry) -> dict[str, Any]:
    """One day's drift decision as its partition shows it: counts and scores as numbers (the UI graphs
    them by partition), shares as percentages, the columns' scores against their thresholds as a picture."""
    metadata: dict[str, Any] = {
        **sensor_facts(summary),
        "drifted_column_count": len(summary["drifted_columns"]),
        "drift_share": percent(summary["drift_share"]),
        "drifted_columns": _scores(summary["drifted_columns"]),
        "rejected_rows": summary["rejected_rows"],
        "rejected_share": percent(summary["rejected_share"], 2),
        "model": registry.version_reference(summary["model_version"]),
    }
    estimated = summary["estimated"]
    if estimated is None:
        return {**metadata, "note": "no valid application on this day"}
    picture = _column_drift_picture(summary)
    return {
        **metadata,
        **({"column_drift": picture} if picture is not None else {}),
        "prediction_drift_score": None
        if summary["prediction_drift_score"] is None
        else round(summary["prediction_drift_score"], 3),
        "worst_columns": _scores(summary["worst_columns"]),
        "estimated_kappa": round(estimated["estimated_kappa"], 3),
        "estimated_kappa_95": f"{estimated['estimated_kappa_low']:.3f}–{estimated['estimated_kappa_high']:.3f}",
        "estimated_claim_rate": percent(estimated["estimated_expected_claim_rate"], 2),
    }


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="object_io_manager",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas", "json"},
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="applications_drift",
            description=(
                "No drift of the applications or of the predicted probabilities by the pinned tests, and no more rows "
                "rejected by the data contract than max_rejected_share (warning)."
            ),
        )
    ],
    ins={
        "model_in_force": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping()),
        "rejected_applications": dg.AssetIn(),
    },
    description=(
        "The day's drift decision: every feature column and the predicted probabilities against the reference sample "
        "shipped with the model in force, by pinned distance tests (normed Wasserstein for numbers, Jensen-Shannon for "
        "levels), and the share of rows the data contract rejected; and the day's performance estimated from the "
        "calibrated probabilities before any outcome is known."
    ),
)
@names_outages
def applications_drift(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    applications: dict[str, pd.DataFrame],
    rejected_applications: dict[str, pd.DataFrame],
    application_scores: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
    registry: ModelRegistry,
):
    """Each day's drift decision and estimated performance, with its own metadata."""
    drift_settings, rules = config.drift_settings(), config.relevance_rules()
    models: dict[str, ModelInForce] = {}
    summaries = {}
    for day in sorted(applications):
        record = model_in_force[month_key(day)]
        if record["model_uri"] not in models:
            models[record["model_uri"]] = ModelInForce.load(record["model_uri"])
        current = day_frame(applications[day], application_scores[day])
        rejected = len(rejected_applications.get(day, ()))
        summaries[day] = _day_summary(
            day, current, rejected, models[record["model_uri"]], record, drift_settings, rules
        )
        context.add_asset_metadata(_drift_metadata(summaries[day], registry), partition_key=day)
    drifted = {d: _why(s) for d, s in summaries.items() if s["drifted"]}
    yield dg.Output(summaries)
    yield dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"drift on {len(drifted)} of {len(summaries)} day(s): "
            + "; ".join(f"{d} {c}" for d, c in sorted(drifted.items()))
            if drifted
            else f"no drift on {len(summaries)} day(s)"
        )[:2000],
        metadata={"days": len(summaries), "drifted_days": len(drifted), **drift_settings.as_dict()},
    )


def _why(summary: dict[str, Any]) -> dict[str, float]:
    """What made a day drifted: its drifted columns, the predictions, the rejected share."""
    why = dict(summary["drifted_columns"])
    if summary.get("prediction_drifted"):
        why[PREDICTION_COLUMN] = summary["prediction_drift_score"]
    if summary["rejected_share_exceeded"]:
        why["rejected_share"] = summary["rejected_share"]
    return why


_EMPTY_HTML = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Applications drift {day}</title></head>"
    "<body><h1>Applications drift {day}</h1><p>No valid application on this day: nothing to compare.</p></body></html>"
)


def _settings_of(summary: dict[str, Any]) -> DriftSettings:
    """The settings the day's decision used (its thresholds per column are in the summary itself)."""
    defaults = DriftSettings().as_dict()
    fields = (
        "numerical_threshold",
        "categorical_threshold",
        "prediction_threshold",
        "false_alarm_rate",
        "min_drifted_columns",
        "max_rejected_share",
    )
    return DriftSettings(**{k: summary["settings"].get(k, defaults[k]) for k in fields})


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="report_io_manager",
    ins={"model_in_force": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping())},
    group_name=GROUP,
    owners=OWNERS,
    kinds={"evidently", "html"},
    description=(
        "Evidently's report of the day's drift decision: the same pinned tests on the same data, as a standalone HTML "
        "report and a JSON snapshot under <storage>/applications_drift_report/<day>/, and a snapshot in the Evidently "
        "workspace (`make evidently`). Built after `nightly_scoring` by `drift_report_sensor`."
    ),
)
@names_outages
def applications_drift_report(
    context: dg.AssetExecutionContext,
    applications: dict[str, pd.DataFrame],
    application_scores: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
    applications_drift: dict[str, dict],
    evidently: EvidentlyWorkspace,
    report_io_manager: dg.ResourceParam[Any],
) -> dict:
    """Each day's Evidently report (worker processes for many days) and its workspace snapshot."""
    from claims_platform.monitoring.reports import (
        DriftReportInput,
        RenderedReport,
        build_drift_reports,
    )

    target = evidently.target()
    specs, empty = [], {}
    for day in sorted(applications):
        summary = applications_drift[day]
        current = day_frame(applications[day], application_scores[day])
        if current.empty:
            empty[day] = RenderedReport(html=_EMPTY_HTML.format(day=day), snapshot="{}", summary=summary)
            continue
        uri = model_in_force[month_key(day)]["model_uri"]
        kinds = column_kinds([c for c in FEATURES if c in _reference(uri).columns])
        # The worker loads the reference by the model's URI, once per process.
        specs.append(
            DriftReportInput(
                day,
                current,
                uri,
                kinds,
                _settings_of(summary),
                list(summary["drifted_columns"]),
                summary,
                workspace=target,
            )
        )
    built = build_drift_reports(specs)
    if target is not None and built:
        evidently.register(target, {day: report.workspace_snapshot for day, report in built.items()})
        context.log.info(f"Added {len(built)} snapshot(s) to the Evidently workspace {target[0]}")
    for day in sorted(applications):
        summary = applications_drift[day]
        metadata = {
            "drifted": summary["drifted"],
            "drift_share": percent(summary["drift_share"]),
            "drifted_columns": _scores(summary["drifted_columns"]),
            "report": dg.MetadataValue.path(report_io_manager.location(context.asset_key.path, day)),
        }
        if day in built:
            metadata["evidently_drifted_columns"] = built[day].evidently_drifted_columns
        context.add_asset_metadata(metadata, partition_key=day)
    return {day: built.get(day) or empty[day] for day in sorted(applications)}
