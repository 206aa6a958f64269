"""The month's candidate model: trained on the month's training set, tracked in MLflow, registered as a
new version, and judged by the quality gate (a training failure is recorded as an ineligible candidate)."""

import traceback
from typing import Any, NamedTuple

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform.core import links
from claims_platform.core.alerts import Alert, AlertsResource
from claims_platform.core.months import shift_month_key
from claims_platform.core.partitions import month_before, monthly_partitions, require_month_order
from claims_platform.core.pictures import png_markdown, sparkline_markdown
from claims_platform.core.policy import DecisionPolicy
from claims_platform.core.schema import CLAIM_STATUS
from claims_platform.core.services import names_outages
from claims_platform.models.gate import QualityGate
from claims_platform.models.registry import ModelRegistry
from claims_platform.models.tracking import (
    NOTE_TAG,
    TrainingRun,
    failed_outcome,
    log_datasets,
    trained_outcome,
    version_description,
)
from claims_platform.training.assets import GROUP, OWNERS
from claims_platform.training.config import TrainingConfig
from claims_platform.training.dataset import (
    fingerprint,
)
from claims_platform.training.metrics import calibration_bins
from claims_platform.training.reuse import code_digest, reusable, reused_outcome, reused_record, training_key

CANDIDATE_QUALITY = "candidate_quality"


_BUDGET = TrainingConfig()


class CandidateModelConfig(dg.Config):
    """The tuning budget: numbers of trials (the result never depends on the machine's load)."""

    n_trials: int = Field(
        default=_BUDGET.n_trials, ge=1, le=500, description="Optuna trials of a cold start."
    )
    warm_start_trials: int = Field(
        default=_BUDGET.warm_start_trials,
        ge=1,
        le=500,
        description="Optuna trials when the search starts from the last eligible candidate's hyperparameters.",
    )
    warm_start: bool = Field(
        default=True, description="Start the search from the last eligible candidate's hyperparameters."
    )
    tuning_rows: int = Field(
        default=_BUDGET.tuning_rows, ge=1000, description="Train rows (stratified sample) each trial fits on."
    )
    max_boost_rounds: int = Field(
        default=_BUDGET.max_boost_rounds,
        ge=10,
        description="Boosting rounds at most (early stopping usually ends sooner).",
    )
    max_tuning_seconds: float = Field(
        default=_BUDGET.max_tuning_seconds,
        gt=0,
        description="A guard, not a budget: tuning that runs longer fails the candidate (recorded), it is never cut short.",
    )
    reuse_unchanged: bool = Field(
        default=True,
        description=(
            "When the training set, budget, warm start and code are those of the month's last trained candidate "
            "(an off-cycle retrain that found no newly labelled month), reuse it instead of training and "
            "registering the same model again. False: train anyway."
        ),
    )


_LINEAGE_KEYS = (
    "window_first_day",
    "window_last_day",
    "label_cutoff",
    "fingerprint",
    "training_rows",
    "path",
)


def _training_set_lineage(context: dg.AssetExecutionContext) -> dict[str, str]:
    """Window, cutoff, fingerprint, rows, storage path and producing run of the training set this model is trained on."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("training_set"), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    if not records:
        return {}
    materialization = records[0].asset_materialization
    lineage = {
        f"training_set_{k}": str(materialization.metadata[k].value)
        for k in _LINEAGE_KEYS
        if k in materialization.metadata
    }
    lineage["training_set_run_id"] = records[0].run_id
    return lineage


def _as_image(png: bytes):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png))


def _warm_start_for_next(previous: dict | None, record: dict) -> dict | None:
    """What the next month's search starts from: this candidate's hyperparameters if it is eligible,
    else what this one started from (the last eligible candidate's)."""
    if record.get("status") == "trained" and record["gate"]["passed"]:
        return {
            "params": record["params"],
            "from_version": record["version"],
            "from_month": record["training_month"],
        }
    return (previous or {}).get("warm_start_for_next")


# What a candidate's training may fail with and still make a decision possible: too few labelled
# months or rows (ValueError), the tuning guard or a study with no completed trial (RuntimeError),
# numerical trouble. Anything else (a bug, memory, the network) fails the run loudly.
TRAINING_FAILURES = (ValueError, RuntimeError, ArithmeticError)
CANDIDATE_MODEL = dg.AssetKey("candidate_model")


def _reliability_sparkline(y: np.ndarray, p: np.ndarray) -> dg.MarkdownMetadataValue:
    bins = calibration_bins(y, p)
    return sparkline_markdown(
        bins["mean_probability"],
        "predicted probability (line) and observed claim rate (dots) per bin",
        marks=bins["claim_rate"],
    )


@dg.asset(
    partitions_def=monthly_partitions,
    io_manager_key="object_io_manager",
    ins={
        # The month before's candidate: the search starts from the last eligible candidate's
        # hyperparameters. A declared dependency (a chain over months, like the champion decision),
        # so a backfill trains the months in order and each gets the warm start a scheduled run gets.
        "previous_candidate": month_before("candidate_model")
    },
    group_name=GROUP,
    owners=OWNERS,
    kinds={"lightgbm", "optuna", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            CANDIDATE_QUALITY,
            asset="candidate_model",
            # Not blocking: the champion decision must run to record "ineligible, champion kept"
            # (it enforces the same gate itself).
            blocking=False,
            description="Trained, holdout AUC above the floor, calibration error under the ceiling, no missing predictions.",
        )
    ],
    description=(
        "The month's candidate: LightGBM tuned with Optuna (a number of trials, warm-started from the last eligible candidate's "
        "hyperparameters) and calibrated, evaluated on the out-of-time holdout at the decision policy, tracked in "
        "MLflow and registered as a new version. A training failure is recorded as an ineligible candidate."
    ),
)
# Not retried: a second attempt would train again (and find its MLflow run ended).
@names_outages(retry=False)
def candidate_model(
    context: dg.AssetExecutionContext,
    config: CandidateModelConfig,
    training_set: pd.DataFrame,
    previous_candidate: dict[str, dict],
    mlflow: dg.ResourceParam[Any],
    registry: ModelRegistry,
    alerts: AlertsResource,
):
    """Train, evaluate, log to MLflow and register; a record of the candidate (trained or failed)."""
    from claims_platform.models.packaging import log_trained_model
    from claims_platform.models.reference import REFERENCE_ROWS, reference_drawn_from
    from claims_platform.training.metrics import evaluate
    from claims_platform.training.plots import calibration_png, feature_importance_png, roc_curve_png
    from claims_platform.training.split import out_of_time_split
    from claims_platform.training.train import train_model

    month = context.partition_key
    previous = previous_candidate.get(shift_month_key(month, -1))
    require_month_order(context, CANDIDATE_MODEL, previous)
    # The candidate's own figures are at the default policy; the decision re-judges it at the chain's.
    gate, policy = QualityGate(), DecisionPolicy()
    warm = (previous or {}).get("warm_start_for_next") if config.warm_start else None
    budget = TrainingConfig(
        n_trials=config.n_trials,
        warm_start_trials=config.warm_start_trials,
        tuning_rows=config.tuning_rows,
        max_boost_rounds=config.max_boost_rounds,
        max_tuning_seconds=config.max_tuning_seconds,
    )
    # Name, description, code version, Dagster run id, partition and link, the training set's lineage.
    tracked = TrainingRun(
        month=month[:7],
        dagster_run_id=context.run_id,
        partition=month,
        lineage=_training_set_lineage(context),
    )
    digest = fingerprint(training_set)
    key = training_key(
        fingerprint=digest,
        budget=budget,
        warm_start=warm["params"] if warm else None,
        model_name=registry.model_name,
        code=code_digest(),
    )
    try:
        mlflow.set_tags(tracked.tags())
        earlier = _month_candidate(context) if config.reuse_unchanged else None
        if (
            earlier is not None
            and reusable(earlier.record, key)
            and registry.has_version(earlier.record["version"])
        ):
            yield from _reused_candidate(context, earlier, previous, mlflow, tracked, digest)
            return
        try:
            if training_set.empty:
                raise ValueError(
                    "no labelled rows before the cutoff (see the training_set partition's label coverage)"
                )
            split = out_of_time_split(training_set)
            trained = train_model(split.development, budget, warm_start=warm["params"] if warm else None)
            y = split.holdout[CLAIM_STATUS].to_numpy()
            p = trained.predict_proba(split.holdout)
            missing = int(np.isnan(p).sum())
            p = np.nan_to_num(
                p, nan=0.0
            )  # a missing prediction fails the gate below; plots and metrics need numbers
            metrics = evaluate(y, p, policy.refer_at)
        except TRAINING_FAILURES as error:
            yield from _failed_candidate(context, month, error, previous, mlflow, alerts, registry, tracked)
            return
        plots = {
            "roc_curve": roc_curve_png(y, p),
            "calibration": calibration_png(y, p),
            "feature_importance": feature_importance_png(trained.booster),
        }
        run_id, experiment_id = mlflow.active_run().info.run_id, mlflow.active_run().info.experiment_id
        mlflow.log_params(
            {**trained.params_for_logging(), **{f"split_{k}": v for k, v in split.summary().items()}}
        )
        mlflow.log_params(
            {"warm_start": bool(warm), "warm_start_from_version": warm["from_version"] if warm else "none"}
        )
        mlflow.log_metrics({f"holdout_{k}": float(v) for k, v in metrics.items()})
        mlflow.log_metrics({f"validation_{k}": float(v) for k, v in trained.validation_metrics.items()})
        log_datasets(
            training_set,
            split.holdout,
            month=month,
            holdout_month=split.holdout_month,
            # The stored training set and the fingerprint Dagster recorded for it (computed alike when unrecorded).
            source=tracked.lineage.get("training_set_path") or f"training_set/{month}",
            training_digest=tracked.lineage.get("training_set_fingerprint") or digest,
            holdout_digest=fingerprint(split.holdout),
            targets=CLAIM_STATUS,
        )
        for name, png in plots.items():
            mlflow.log_image(_as_image(png), f"plots/{name}.png")
        # Judged (above) with the calibrator fitted without the holdout; registered with it refitted on validation
        # and holdout, whose probabilities the drift reference then carries.
        deployed = trained.deployed(split.holdout, split.holdout_month, policy.refer_at)
        reference = reference_drawn_from(
            split.holdout,
            deployed.predict_proba(split.holdout),
            REFERENCE_ROWS,
            seed=int(month[:7].replace("-", "")),
        )
        registry.ensure_registered_model()  # with its description, before the first version creates it bare
        version = log_trained_model(
            deployed,
            reference=reference,
            registered_model_name=registry.model_name,
            tags={
                "dagster_run_id": context.run_id,
                "dagster_partition": month,
                "training_month": month[:7],
                "holdout_month": split.holdout_month,
                "mlflow_run_id": run_id,
            },
            description=version_description(
                tracked,
                holdout_month=split.holdout_month,
                metrics=metrics,
                refer_at=policy.refer_at,
                calibration=trained.calibration["method"],
                mlflow_run_url=registry.run_url(run_id, experiment_id),
            ),
        )
        model_uri = registry.artifact_uri(version)
        gate_failures = gate.failures(metrics, missing)
        outcome = trained_outcome(
            registry.model_name, version, split.holdout_month, metrics, policy.refer_at, gate_failures
        )
        mlflow.set_tag(NOTE_TAG, tracked.description(outcome))
    except BaseException as error:
        # The run fails loudly; its MLflow run must not stay RUNNING forever, nor say it is in progress.
        if mlflow.active_run() is not None:  # (a failed training has ended it already)
            try:
                mlflow.set_tag(
                    NOTE_TAG, tracked.description(failed_outcome(f"{type(error).__name__}: {error}"[:2000]))
                )
            finally:
                mlflow.end_run(status="FAILED")
        raise
    # dagster-mlflow ends its run only through a job hook; end it here so the run is complete even
    # when the asset is materialized from the UI.
    mlflow.end_run()
    record = {
        "status": "trained",
        "failure": None,
        "model_name": registry.model_name,
        "version": version,
        "model_uri": model_uri,
        "mlflow_run_id": run_id,
        "training_month": month[:7],
        "holdout_month": split.holdout_month,
        "holdout_rows": int(metrics["rows"]),
        "policy": policy.as_dict(),
        "holdout_metrics": {k: float(v) for k, v in metrics.items()},
        "validation_metrics": {k: float(v) for k, v in trained.validation_metrics.items()},
        "gate": {**gate.as_dict(), "passed": not gate_failures, "failures": gate_failures},
        "params": trained.best_params,
        "warm_start": {"from_version": warm["from_version"], "used": True}
        if warm
        else {"from_version": None, "used": False},
        "tuning": {k: v for k, v in trained.tuning.items() if k != "trials"},
        "calibration": trained.calibration["method"],
        "calibration_level_sd": deployed.calibrator["level_sd"],
        "fit_seconds": round(trained.fit_seconds, 2),
        "reference_rows": len(reference),
        "training_key": key,  # what the model depends on: a retrain with the same key reuses it
        "trained_by_dagster_run_id": context.run_id,
    }
    record["warm_start_for_next"] = _warm_start_for_next(previous, record)
    yield dg.Output(
        record,
        metadata={
            "status": "trained",
            "model_version": version,
            "model": registry.version_reference(version),
            "mlflow_run": registry.run_reference(run_id, experiment_id),
            "mlflow_experiment": registry.experiment_reference(experiment_id),
            "warm_start": f"from v{warm['from_version']} ({warm['from_month']})" if warm else "cold start",
            "trials": int(trained.tuning.get("n_trials", 0)),
            "calibration": trained.calibration["method"],
            "calibration_deployed_on": (
                f"{trained.calibration['fitted_on']} + holdout {split.holdout_month} ({len(trained.calibration_y) + len(split.holdout):,} rows)"
            ),
            "calibration_level_sd": round(deployed.calibrator["level_sd"], 4),
            "holdout_month": split.holdout_month,
            "holdout_rows": int(metrics["rows"]),
            **{
                f"holdout_{k}": round(float(v), 5)
                for k, v in metrics.items()
                if k not in ("rows", "threshold")
            },
            "kappa_at": f"the decision policy's screen, p >= {policy.refer_at}",
            "fit_seconds": round(trained.fit_seconds, 1),
            "best_params": dg.MetadataValue.json(trained.best_params),
            # Inline on the page (the full charts below are one click away): predicted probability (line)
            # against the claim rate observed (dots) in each equal-mass bin of the holdout.
            "reliability": _reliability_sparkline(y, p),
            **{f"plot_{name}": png_markdown(png, name) for name, png in plots.items()},
            RECORD: dg.MetadataValue.json(record),
        },
    )
    yield dg.AssetCheckResult(
        check_name=CANDIDATE_QUALITY,
        passed=not gate_failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(gate_failures) or "candidate fit to be compared with the champion",
        metadata={
            "roc_auc": float(metrics["roc_auc"]),
            "ece": float(metrics["ece"]),
            "missing_predictions": missing,
            **gate.as_dict(),
        },
    )


RECORD = "record"  # the candidate's stored record, also on its materialization (what a retrain compares with)


class _MonthCandidate(NamedTuple):
    """The month's last materialized candidate: its record, the run that materialized it, its metadata."""

    record: dict[str, Any]
    run_id: str
    metadata: dict[str, Any]


def _month_candidate(context: dg.AssetExecutionContext) -> _MonthCandidate | None:
    """This partition's last candidate, when its materialization carries its record."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CANDIDATE_MODEL, asset_partitions=[context.partition_key]), limit=1
    ).records
    if not records:
        return None
    metadata = dict(records[0].asset_materialization.metadata)
    entry = metadata.get(RECORD)
    return _MonthCandidate(dict(entry.value), records[0].run_id, metadata) if entry is not None else None


def _reused_candidate(
    context: dg.AssetExecutionContext,
    earlier: _MonthCandidate,
    previous: dict | None,
    mlflow,
    tracked: TrainingRun,
    digest: str,
):
    """The month's last candidate again (see :mod:`claims_platform.training.reuse`): nothing trained or registered."""
    record = reused_record(earlier.record, dagster_run_id=context.run_id, earlier_run_id=earlier.run_id)
    record["warm_start_for_next"] = _warm_start_for_next(previous, record)
    version, trained_by = record["version"], record["trained_by_dagster_run_id"]
    outcome = reused_outcome(record["model_name"], version, digest, trained_by)
    context.log.info(f"{context.partition_key[:7]}: {outcome}")
    mlflow.set_tags({NOTE_TAG: tracked.description(outcome), "reused_model_version": str(version)})
    mlflow.end_run()
    # The earlier materialization's figures and plots describe this same model; the IO manager adds its path.
    kept = {k: v for k, v in earlier.metadata.items() if k not in ("path", RECORD, "reused", "trained_by")}
    yield dg.Output(
        record,
        metadata={
            "status": kept.pop("status", "trained"),
            # Second on the page: why this run trained nothing, and the run that did.
            "reused": f"v{version}: training set {digest}, budget, warm start and code unchanged, nothing trained",
            "trained_by": dg.MetadataValue.url(links.dagster_run_url(trained_by)),
            **kept,
            RECORD: dg.MetadataValue.json(record),
        },
    )
    gate, metrics = record["gate"], record["holdout_metrics"]
    yield dg.AssetCheckResult(
        check_name=CANDIDATE_QUALITY,
        passed=bool(gate["passed"]),
        severity=dg.AssetCheckSeverity.ERROR,
        description=("; ".join(gate["failures"]) or "candidate fit to be compared with the champion")
        + f" (v{version} reused)",
        metadata={
            "roc_auc": float(metrics["roc_auc"]),
            "ece": float(metrics["ece"]),
            **{k: v for k, v in gate.items() if k not in ("passed", "failures")},
        },
    )


def _failed_candidate(
    context: dg.AssetExecutionContext,
    month: str,
    error: Exception,
    previous: dict | None,
    mlflow,
    alerts: AlertsResource,
    registry: ModelRegistry,
    tracked: TrainingRun,
):
    """The record, check and alert of a candidate whose training failed (the chain still decides)."""
    reason = f"{type(error).__name__}: {error}"
    context.log.error(
        f"Training failed for {month[:7]}; the candidate is ineligible.\n{traceback.format_exc()}"
    )
    run = mlflow.active_run().info
    mlflow.set_tags({"failure": reason[:5000], NOTE_TAG: tracked.description(failed_outcome(reason[:2000]))})
    mlflow.end_run(status="FAILED")
    alerts.send(
        Alert(
            "error",
            f"Training failed for {month[:7]}",
            f"{reason}. The candidate is ineligible; the champion decision keeps the incumbent.",
            fields={"month": month[:7], "run": context.run_id},
        ),
        log=context.log,
    )
    record = {"status": "failed", "failure": reason, "version": None, "training_month": month[:7]}
    record["warm_start_for_next"] = _warm_start_for_next(previous, record)
    yield dg.Output(
        record,
        metadata={
            "status": "failed",
            "failure": reason,
            "mlflow_run": registry.run_reference(run.run_id, run.experiment_id),
        },
    )
    yield dg.AssetCheckResult(
        check_name=CANDIDATE_QUALITY,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"training failed: {reason}",
    )
