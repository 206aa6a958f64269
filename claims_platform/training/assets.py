"""Monthly assets: the point-in-time training set, the tuned calibrated model, the champion decision."""

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform.metadata import png_markdown
from claims_platform.models.registry import CHAMPION, ModelRegistry
from claims_platform.partitions import monthly_partitions
from claims_platform.resources import ApplicationSource
from claims_platform.schema import CLAIM_STATUS
from claims_platform.settings import FIRST_DAY, TRAINING_WINDOW_MONTHS
from claims_platform.training.config import TrainingConfig
from claims_platform.training.dataset import (
    MIN_MONTH_COVERAGE,
    fingerprint,
    label_applications,
    training_window,
)

GROUP = "training"
OWNERS = ["team:data-science"]
CANDIDATE_QUALITY = "candidate_quality"
THRESHOLD_TAG = "decision_threshold"


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
        default=MIN_MONTH_COVERAGE, description="A month counts as labelled when this share of it has outcomes."
    )


@dg.asset(
    partitions_def=monthly_partitions,
    ins={
        "applications": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-(TRAINING_WINDOW_MONTHS - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
            ),
            # The window reaches back before the first ingested day for the first year.
            metadata={"allow_missing_partitions": True},
        )
    },
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas", "parquet"},
    description=(
        "Applications of the trailing window ending with the month, labelled with the outcomes known "
        "before the cutoff (first instant of the next month, or a later run-config `label_cutoff`)."
    ),
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    applications: dict[str, pd.DataFrame],
    source: ApplicationSource,
) -> pd.DataFrame:
    """Point-in-time labelled rows for the month's model; never an outcome known after the cutoff."""
    cutoff = datetime.fromisoformat(config.label_cutoff) if config.label_cutoff else None
    if cutoff is not None and cutoff.tzinfo is not None:
        cutoff = cutoff.astimezone(UTC).replace(tzinfo=None)
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
        raise dg.Failure(
            f"No month of {window.first_day:%Y-%m}..{window.last_day:%Y-%m} is labelled to "
            f"{config.min_month_coverage:.0%} by {window.cutoff.isoformat()} (coverage {labelled.coverage})."
        )
    context.add_output_metadata(
        {
            **window.as_metadata(),
            "label_cutoff_source": "run config (off-cycle)" if cutoff else "end of month",
            "days_loaded": len(days),
            "applications_in_window": labelled.applications,
            "training_rows": len(rows),
            "rows_of_partly_labelled_months": labelled.excluded_rows,
            "claim_rate": round(float(rows[CLAIM_STATUS].mean()), 4),
            "label_coverage": dg.MetadataValue.json(labelled.coverage),
            "fingerprint": fingerprint(rows),
        }
    )
    return rows


_BUDGET = TrainingConfig()


class ClaimsModelConfig(dg.Config):
    """Tuning budget and the quality gate a candidate must pass before it may be promoted."""

    n_trials: int = Field(default=_BUDGET.n_trials, description="Optuna trials at most.")
    timeout_seconds: float = Field(default=_BUDGET.timeout_seconds, description="Tuning stops after this many seconds.")
    tuning_rows: int = Field(default=_BUDGET.tuning_rows, description="Train rows (stratified sample) each trial fits on.")
    min_auc: float = Field(default=0.85, description="Quality gate: holdout ROC AUC at least this.")
    max_ece: float = Field(default=0.03, description="Quality gate: holdout expected calibration error at most this.")


_LINEAGE_KEYS = ("window_first_day", "window_last_day", "label_cutoff", "fingerprint")


def _training_set_lineage(context: dg.AssetExecutionContext) -> dict[str, str]:
    """Window, cutoff, fingerprint and producing run of the training set this model is trained on."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("training_set"), asset_partitions=[context.partition_key]),
        limit=1,
    ).records
    if not records:
        return {}
    materialization = records[0].asset_materialization
    lineage = {f"training_set_{k}": str(materialization.metadata[k].value) for k in _LINEAGE_KEYS if k in materialization.metadata}
    lineage["training_set_run_id"] = records[0].run_id
    return lineage


def _log_to_mlflow(mlflow, context, trained, split, metrics: dict[str, float], plots: dict[str, bytes], rows: pd.DataFrame):
    import mlflow as mlflow_module

    month = context.partition_key[:7]
    tags = {
        "dagster_run_id": context.run_id,
        "dagster_partition": context.partition_key,
        "training_month": month,
        **_training_set_lineage(context),
    }
    tags.setdefault("training_set_fingerprint", fingerprint(rows))
    mlflow.set_tags(tags)
    mlflow.log_params({**trained.params_for_logging(), **{f"split_{k}": v for k, v in split.summary().items()}})
    mlflow.log_metrics({f"holdout_{k}": float(v) for k, v in metrics.items()})
    mlflow.log_metrics({f"validation_{k}": float(v) for k, v in trained.validation_metrics.items()})
    dataset = mlflow_module.data.from_pandas(rows, name=f"training_set_{month}", targets=CLAIM_STATUS)
    mlflow.log_input(dataset, context="training")
    for name, png in plots.items():
        mlflow.log_image(_as_image(png), f"plots/{name}.png")
    return tags


def _as_image(png: bytes):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png))


@dg.asset(
    partitions_def=monthly_partitions,
    io_manager_key="object_io_manager",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"lightgbm", "optuna", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            CANDIDATE_QUALITY,
            asset="claims_model",
            blocking=True,
            description="Holdout AUC above the floor, calibration error under the ceiling, no missing predictions.",
        )
    ],
    description=(
        "LightGBM tuned with Optuna and calibrated on validation data, evaluated on the out-of-time holdout "
        "(the most recent labelled month), tracked in MLflow and registered as a new model version."
    ),
)
def claims_model(
    context: dg.AssetExecutionContext,
    config: ClaimsModelConfig,
    training_set: pd.DataFrame,
    mlflow: dg.ResourceParam[Any],
    registry: ModelRegistry,
):
    """Train, evaluate on the holdout, log everything to MLflow, register; the version's summary."""
    from claims_platform.models.packaging import log_trained_model
    from claims_platform.training.metrics import evaluate
    from claims_platform.training.plots import calibration_png, feature_importance_png, roc_curve_png
    from claims_platform.training.split import out_of_time_split
    from claims_platform.training.train import train_model

    try:
        split = out_of_time_split(training_set)
        trained = train_model(
            split.development,
            TrainingConfig(n_trials=config.n_trials, timeout_seconds=config.timeout_seconds, tuning_rows=config.tuning_rows),
        )
        y = split.holdout[CLAIM_STATUS].to_numpy()
        p = trained.predict_proba(split.holdout)
        missing = int(np.isnan(p).sum())
        metrics = evaluate(y, np.nan_to_num(p, nan=0.0), trained.threshold)
        plots = {
            "roc_curve": roc_curve_png(y, p),
            "calibration": calibration_png(y, p),
            "feature_importance": feature_importance_png(trained.booster),
        }
        tags = _log_to_mlflow(mlflow, context, trained, split, metrics, plots, training_set)
        run_id = mlflow.active_run().info.run_id
        version = log_trained_model(
            trained,
            registered_model_name=registry.model_name,
            tags={**tags, "mlflow_run_id": run_id, THRESHOLD_TAG: str(trained.threshold), "holdout_month": split.holdout_month},
        )
    except BaseException:
        # The run fails loudly; its MLflow run must not stay RUNNING forever.
        mlflow.end_run(status="FAILED")
        raise
    # dagster-mlflow ends its run only through a job hook; end it here so the run is complete even
    # when the asset is materialized from the UI.
    mlflow.end_run()
    summary = {
        "model_name": registry.model_name,
        "version": version,
        "mlflow_run_id": run_id,
        "threshold": trained.threshold,
        "holdout_month": split.holdout_month,
        "holdout_metrics": metrics,
        "validation_metrics": trained.validation_metrics,
        "missing_predictions": missing,
        "calibration": trained.calibration["method"],
        "fit_seconds": trained.fit_seconds,
    }
    yield dg.Output(
        summary,
        metadata={
            "model_version": version,
            "model": dg.MetadataValue.url(registry.version_url(version))
            if registry.ui_url
            else registry.model_uri(version),
            "mlflow_run_id": run_id,
            "decision_threshold": trained.threshold,
            "calibration": trained.calibration["method"],
            "holdout_month": split.holdout_month,
            **{f"holdout_{k}": round(float(v), 5) for k, v in metrics.items() if k not in ("rows",)},
            "holdout_rows": int(metrics["rows"]),
            "fit_seconds": round(trained.fit_seconds, 1),
            "best_params": dg.MetadataValue.json(trained.best_params),
            **{f"plot_{name}": png_markdown(png, name) for name, png in plots.items()},
        },
    )
    failures = []
    if metrics["roc_auc"] < config.min_auc:
        failures.append(f"holdout AUC {metrics['roc_auc']:.4f} < {config.min_auc}")
    if metrics["ece"] > config.max_ece:
        failures.append(f"holdout ECE {metrics['ece']:.4f} > {config.max_ece}")
    if missing:
        failures.append(f"{missing} missing predictions")
    yield dg.AssetCheckResult(
        check_name=CANDIDATE_QUALITY,
        passed=not failures,
        description="; ".join(failures) or "candidate fit to be compared with the champion",
        metadata={
            "roc_auc": float(metrics["roc_auc"]),
            "ece": float(metrics["ece"]),
            "missing_predictions": missing,
            "min_auc": config.min_auc,
            "max_ece": config.max_ece,
        },
    )


class ChampionConfig(dg.Config):
    """Whether a decision to promote moves the registry aliases (False: record-only backfills)."""

    promote: bool = Field(default=True, description="Move the `champion` alias when the candidate wins.")


def _kappa(registry: ModelRegistry, version: int, threshold: float, holdout: pd.DataFrame) -> float:
    from claims_platform.training.metrics import evaluate

    p = registry.predict(version, holdout.drop(columns=[CLAIM_STATUS]))
    return float(evaluate(holdout[CLAIM_STATUS].to_numpy(), p, threshold)["kappa"])


@dg.asset(
    partitions_def=monthly_partitions,
    io_manager_key="object_io_manager",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"mlflow"},
    description=(
        "Which model scores the days of the NEXT month: the candidate is promoted only if its Cohen's kappa "
        "on its own holdout beats the champion's on the same rows (ties keep the champion). Audited."
    ),
)
def champion_model(
    context: dg.AssetExecutionContext,
    config: ChampionConfig,
    training_set: pd.DataFrame,
    claims_model: dict,
    registry: ModelRegistry,
) -> dict:
    """Compare candidate and champion on the candidate's holdout; move aliases; record the decision."""
    from claims_platform.training.promotion import decide_promotion
    from claims_platform.training.split import out_of_time_split

    holdout = out_of_time_split(training_set).holdout
    candidate = int(claims_model["version"])
    candidate_kappa = _kappa(registry, candidate, float(claims_model["threshold"]), holdout)
    champion = registry.alias_version(CHAMPION)
    champion_threshold = champion_kappa = None
    if champion is not None and champion != candidate:
        champion_threshold = float(registry.version_tags(champion)[THRESHOLD_TAG])
        champion_kappa = _kappa(registry, champion, champion_threshold, holdout)
    decision = decide_promotion(candidate, candidate_kappa, champion, champion_kappa)
    in_force = candidate if decision.promote else champion
    audit = {
        **decision.as_dict(),
        "training_month": context.partition_key[:7],
        "scores_month": context.partition_time_window.end.strftime("%Y-%m"),
        "holdout_month": claims_model["holdout_month"],
        "holdout_rows": len(holdout),
        "candidate_threshold": claims_model["threshold"],
        "champion_threshold": champion_threshold,
        "aliases_moved": bool(config.promote and decision.promote),
        "promote_switch": config.promote,
        "dagster_run_id": context.run_id,
        "decided_by": context.run.tags.get("user", context.run.tags.get("dagster/schedule_name", "manual or backfill")),
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if config.promote and decision.promote:
        registry.promote(candidate, audit)
    registry.tag_version(candidate, {f"decision.{context.partition_key[:7]}": audit})
    registry.record(f"decision_{context.partition_key[:7]}", audit)
    threshold = claims_model["threshold"] if in_force == candidate else champion_threshold
    context.add_output_metadata(
        {
            "decision": "promoted" if decision.promote else "kept champion",
            "reason": decision.reason,
            "model_in_force_next_month": in_force,
            "candidate_version": candidate,
            "candidate_kappa": round(candidate_kappa, 5),
            "champion_version": champion if champion is not None else "none",
            "champion_kappa": round(champion_kappa, 5) if champion_kappa is not None else "n/a",
            "aliases_moved": audit["aliases_moved"],
            "audit": dg.MetadataValue.json(audit),
        }
    )
    return {"model_name": registry.model_name, "version": in_force, "threshold": threshold, "decision": audit}
