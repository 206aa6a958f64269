"""The month's candidate model: trained on the month's training set, tracked in MLflow, registered as a
new version, and judged by the quality gate (a training failure is recorded as an ineligible candidate)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform.core.alerts import AlertsResource
from claims_platform.core.months import shift_month_key
from claims_platform.core.partitions import month_before, monthly_partitions, require_month_order
from claims_platform.core.pictures import png_markdown, sparkline_markdown
from claims_platform.core.policy import DecisionPolicy
from claims_platform.core.protected import protected_columns
from claims_platform.core.schema import CLAIM_STATUS
from claims_platform.core.services import names_outages
from claims_platform.models.candidate_records import (
    CANDIDATE_MODEL,
    CANDIDATE_QUALITY,
    RECORD,
    failed_candidate,
    month_candidate,
    reused_candidate,
    warm_start_for_next,
)
from claims_platform.models.cards import write_model_card
from claims_platform.models.gate import QualityGate
from claims_platform.models.importance import shap_importance
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
from claims_platform.training.fairness import FairnessTolerance, auc_interval, group_table, protected_in
from claims_platform.training.fairness_report import (
    FAIRNESS_CHECK,
    FAIRNESS_CHECK_DESCRIPTION,
    FairnessConfig,
    FairnessReport,
)
from claims_platform.training.metrics import calibration_bins
from claims_platform.training.reuse import code_digest, reusable, training_key

_BUDGET = TrainingConfig()


class CandidateModelConfig(FairnessConfig):
    """The tuning budget: numbers of trials (the result never depends on the machine's load); the fairness
    check's tolerances."""

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


# What a candidate's training may fail with and still make a decision possible: too few labelled
# months or rows (ValueError), the tuning guard or a study with no completed trial (RuntimeError),
# numerical trouble. Anything else (a bug, memory, the network) fails the run loudly.
TRAINING_FAILURES = (ValueError, RuntimeError, ArithmeticError)


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
        ),
        dg.AssetCheckSpec(
            FAIRNESS_CHECK,
            asset=CANDIDATE_MODEL,
            blocking=False,
            description=FAIRNESS_CHECK_DESCRIPTION + " On the holdout.",
        ),
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
    """The month's candidate in its steps: the key of what it is trained from; the month's last candidate
    reused when that key is unchanged, else a new one trained (or its failure recorded); its record; and
    the quality check that says whether it is eligible."""
    month = context.partition_key
    previous = previous_candidate.get(shift_month_key(month, -1))
    require_month_order(context, CANDIDATE_MODEL, previous)
    plan = _plan(context, config, training_set, previous, registry)
    with _mlflow_run_failed_on_error(mlflow, plan.tracked):
        mlflow.set_tags(plan.tracked.tags())
        earlier = month_candidate(context) if config.reuse_unchanged else None
        if (
            earlier is not None
            and reusable(earlier.record, plan.key)
            and registry.has_version(earlier.record["version"])
        ):
            events = reused_candidate(context, earlier, previous, mlflow, plan.tracked, plan.digest)
        else:
            events = _new_candidate(context, training_set, plan, previous, mlflow, registry, alerts)
    yield from events


@dataclass(frozen=True)
class _Plan:
    """What the month's candidate is trained from, and the key a retrain compares."""

    month: str
    budget: TrainingConfig
    warm: dict | None  # the last eligible candidate's hyperparameters, when the search starts from them
    tracked: TrainingRun
    digest: str  # the training set's fingerprint
    key: str
    # The candidate's own figures are at the default policy; the decision re-judges it at the chain's.
    policy: DecisionPolicy = field(default_factory=DecisionPolicy)
    gate: QualityGate = field(default_factory=QualityGate)
    fairness: FairnessTolerance = field(default_factory=FairnessTolerance)


def _plan(
    context, config: CandidateModelConfig, training_set: pd.DataFrame, previous: dict | None, registry
) -> _Plan:
    month = context.partition_key
    warm = (previous or {}).get("warm_start_for_next") if config.warm_start else None
    budget = TrainingConfig(
        n_trials=config.n_trials,
        warm_start_trials=config.warm_start_trials,
        tuning_rows=config.tuning_rows,
        max_boost_rounds=config.max_boost_rounds,
        max_tuning_seconds=config.max_tuning_seconds,
        protected=tuple(sorted(protected_columns().items())),
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
        fingerprint=digest, budget=budget, warm_start=warm["params"] if warm else None,
        model_name=registry.model_name, code=code_digest(),
    )  # fmt: skip
    return _Plan(month, budget, warm, tracked, digest, key, fairness=config.fairness_tolerance())


@contextmanager
def _mlflow_run_failed_on_error(mlflow, tracked: TrainingRun) -> Iterator[None]:
    """An error (any: the run fails loudly) ends the candidate's MLflow run as FAILED, with a note that says
    why: it must not stay RUNNING for ever, nor say it is in progress."""
    try:
        yield
    except BaseException as error:
        if mlflow.active_run() is not None:  # (a failed training has ended it already)
            try:
                mlflow.set_tag(
                    NOTE_TAG, tracked.description(failed_outcome(f"{type(error).__name__}: {error}"[:2000]))
                )
            finally:
                mlflow.end_run(status="FAILED")
        raise


@dataclass(frozen=True)
class _Fitted:
    """A candidate trained and judged on its out-of-time holdout."""

    split: Any
    trained: Any
    y: np.ndarray
    p: np.ndarray
    missing: int  # holdout rows without a prediction (a gate failure)
    metrics: dict[str, float]
    importance: dict[str, Any]  # mean |TreeSHAP| per feature on the holdout (models/importance.py)


def _fit(training_set: pd.DataFrame, plan: _Plan) -> _Fitted:
    """Split, train and judge (raises one of TRAINING_FAILURES when there is nothing to train on)."""
    from claims_platform.training.metrics import evaluate
    from claims_platform.training.split import out_of_time_split
    from claims_platform.training.train import train_model

    if training_set.empty:
        raise ValueError(
            "no labelled rows before the cutoff (see the training_set partition's label coverage)"
        )
    split = out_of_time_split(training_set)
    trained = train_model(
        split.development, plan.budget, warm_start=plan.warm["params"] if plan.warm else None
    )
    y = split.holdout[CLAIM_STATUS].to_numpy()
    p = trained.predict_proba(split.holdout)
    missing = int(np.isnan(p).sum())
    p = np.nan_to_num(p, nan=0.0)  # a missing prediction fails the gate; plots and metrics need numbers
    importance = shap_importance(
        trained.booster, trained.spec, split.holdout, seed=int(plan.month[:7].replace("-", ""))
    )
    return _Fitted(split, trained, y, p, missing, evaluate(y, p, plan.policy.refer_at), importance)


def _new_candidate(context, training_set, plan: _Plan, previous, mlflow, registry, alerts) -> list:
    """Train, track and register a new candidate; or record why it could not be trained."""
    try:
        fitted = _fit(training_set, plan)
    except TRAINING_FAILURES as error:
        return failed_candidate(context, plan.month, error, previous, mlflow, alerts, registry, plan.tracked)
    registered = _track_and_register(context, training_set, fitted, plan, mlflow, registry)
    # dagster-mlflow ends its run only through a job hook; end it here so the run is complete even
    # when the asset is materialized from the UI.
    mlflow.end_run()
    holdout = fitted.split.holdout_month
    fairness = FairnessReport(
        _holdout_groups(fitted, plan), plan.fairness, CANDIDATE_MODEL, f"the holdout {holdout}",
        f"candidate v{registered.version} on its holdout {holdout}",
        {"month": plan.month[:7], "version": str(registered.version), "run": context.run_id},
    )  # fmt: skip
    record = _trained_record(context, fitted, registered, plan, registry, previous)
    record["fairness"] = fairness.record()
    record["card_facts"] = _card_facts(fitted, plan)
    card = write_model_card(registry, record, calibration_png=registered.plots["calibration"])
    fairness.send_alert(alerts, context.log)
    metadata = {
        **_trained_metadata(fitted, registered, plan, registry, record),
        "model_card": dg.MetadataValue.url(card),
        **fairness.metadata(),
    }
    return [dg.Output(record, metadata=metadata), _quality_check(fitted, registered, plan), fairness.check()]


def _card_facts(fitted: _Fitted, plan: _Plan) -> dict[str, Any]:
    """What the model card needs beyond the record: the training set's lineage, the AUC's interval, the
    features and the protected declaration (kept in the record so the decision can write the card again)."""
    spec = fitted.trained.spec
    return {
        "lineage": dict(plan.tracked.lineage),
        "auc_interval": list(auc_interval(fitted.y, fitted.p)[1:]),
        "features": list(spec["features"]),
        "protected": dict(spec.get("protected") or {}),
    }


def _holdout_groups(fitted: _Fitted, plan: _Plan) -> pd.DataFrame:
    """Outcomes by group of every protected column on the holdout, decided as the policy would."""
    return group_table(
        fitted.split.holdout, fitted.y, fitted.p, plan.policy.decide(fitted.p),
        protected_in(dict(plan.budget.protected)), plan.fairness, refer_at=plan.policy.refer_at,
    )  # fmt: skip


@dataclass(frozen=True)
class _Registered:
    """The registered version of a trained candidate, and what its MLflow run holds."""

    version: str
    model_uri: str
    run_id: str
    experiment_id: str
    deployed: Any  # the model as registered: its calibrator refitted on validation and holdout
    reference_rows: int
    plots: dict[str, bytes]
    gate_failures: list[str]


def _track_and_register(context, training_set, fitted: _Fitted, plan: _Plan, mlflow, registry) -> _Registered:
    """Log the candidate to its MLflow run, register it, and note the outcome on the run."""
    run = mlflow.active_run().info
    plots = _log_run(training_set, fitted, plan, mlflow)
    deployed, reference, version = _register(context, fitted, plan, registry, run.run_id, run.experiment_id)
    split, metrics = fitted.split, fitted.metrics
    gate_failures = plan.gate.failures(metrics, fitted.missing)
    outcome = trained_outcome(
        registry.model_name, version, split.holdout_month, metrics, plan.policy.refer_at, gate_failures
    )
    mlflow.set_tag(NOTE_TAG, plan.tracked.description(outcome))
    return _Registered(
        version, registry.artifact_uri(version), run.run_id, run.experiment_id, deployed, len(reference), plots,
        gate_failures,
    )  # fmt: skip


def _log_run(training_set, fitted: _Fitted, plan: _Plan, mlflow) -> dict[str, bytes]:
    """The candidate's parameters, metrics, data and plots on its MLflow run; the plots (PNG bytes)."""
    from claims_platform.training.plots import calibration_png, feature_importance_png, roc_curve_png

    split, trained, warm, month = fitted.split, fitted.trained, plan.warm, plan.month
    plots = {
        "roc_curve": roc_curve_png(fitted.y, fitted.p),
        "calibration": calibration_png(fitted.y, fitted.p),
        "feature_importance": feature_importance_png(fitted.importance["shares"]),
    }
    mlflow.log_params(
        {**trained.params_for_logging(), **{f"split_{k}": v for k, v in split.summary().items()}}
    )
    mlflow.log_params(
        {"warm_start": bool(warm), "warm_start_from_version": warm["from_version"] if warm else "none"}
    )
    mlflow.log_metrics({f"holdout_{k}": float(v) for k, v in fitted.metrics.items()})
    mlflow.log_metrics({f"validation_{k}": float(v) for k, v in trained.validation_metrics.items()})
    log_datasets(
        training_set,
        split.holdout,
        month=month,
        holdout_month=split.holdout_month,
        # The stored training set and the fingerprint Dagster recorded for it (computed alike when unrecorded).
        source=plan.tracked.lineage.get("training_set_path") or f"training_set/{month}",
        training_digest=plan.tracked.lineage.get("training_set_fingerprint") or plan.digest,
        holdout_digest=fingerprint(split.holdout),
        targets=CLAIM_STATUS,
    )
    for name, png in plots.items():
        mlflow.log_image(_as_image(png), f"plots/{name}.png")
    return plots


def _register(context, fitted: _Fitted, plan: _Plan, registry, run_id: str, experiment_id: str):
    """The model as deployed (judged with the calibrator fitted without the holdout; registered with it
    refitted on validation and holdout, whose probabilities the drift reference then carries), its
    reference, and its new registered version."""
    from claims_platform.models.packaging import log_trained_model
    from claims_platform.models.reference import REFERENCE_ROWS, reference_drawn_from

    split, trained, month = fitted.split, fitted.trained, plan.month
    deployed = trained.deployed(split.holdout, split.holdout_month, plan.policy.refer_at)
    seed = int(month[:7].replace("-", ""))
    reference = reference_drawn_from(
        split.holdout, deployed.predict_proba(split.holdout), REFERENCE_ROWS, seed=seed
    )
    registry.ensure_registered_model()  # with its description, before the first version creates it bare
    version = log_trained_model(
        deployed,
        reference=reference,
        importance=fitted.importance,
        registered_model_name=registry.model_name,
        tags={
            "dagster_run_id": context.run_id, "dagster_partition": month, "training_month": month[:7],
            "holdout_month": split.holdout_month, "mlflow_run_id": run_id,
        },
        description=version_description(
            plan.tracked, holdout_month=split.holdout_month, metrics=fitted.metrics, refer_at=plan.policy.refer_at,
            calibration=trained.calibration["method"], mlflow_run_url=registry.run_url(run_id, experiment_id),
        ),
    )  # fmt: skip
    return deployed, reference, version


def _trained_record(
    context, fitted: _Fitted, registered: _Registered, plan: _Plan, registry, previous
) -> dict:
    """The candidate's stored record: what the champion decision and the next month's search read."""
    trained, metrics, warm = fitted.trained, fitted.metrics, plan.warm
    record = {
        "status": "trained",
        "failure": None,
        "model_name": registry.model_name,
        "version": registered.version,
        "model_uri": registered.model_uri,
        "mlflow_run_id": registered.run_id,
        "training_month": plan.month[:7],
        "holdout_month": fitted.split.holdout_month,
        "holdout_rows": int(metrics["rows"]),
        "policy": plan.policy.as_dict(),
        "holdout_metrics": {k: float(v) for k, v in metrics.items()},
        "validation_metrics": {k: float(v) for k, v in trained.validation_metrics.items()},
        "gate": {
            **plan.gate.as_dict(),
            "passed": not registered.gate_failures,
            "failures": registered.gate_failures,
        },
        "params": trained.best_params,
        "warm_start": {"from_version": warm["from_version"], "used": True}
        if warm
        else {"from_version": None, "used": False},
        "tuning": {k: v for k, v in trained.tuning.items() if k != "trials"},
        "calibration": trained.calibration["method"],
        "calibration_level_sd": registered.deployed.calibrator["level_sd"],
        "fit_seconds": round(trained.fit_seconds, 2),
        "reference_rows": registered.reference_rows,
        "importance": {k: fitted.importance[k] for k in ("method", "rows", "shares")},
        "training_key": plan.key,  # what the model depends on: a retrain with the same key reuses it
        "trained_by_dagster_run_id": context.run_id,
    }
    record["warm_start_for_next"] = warm_start_for_next(previous, record)
    return record


def _trained_metadata(
    fitted: _Fitted, registered: _Registered, plan: _Plan, registry, record: dict
) -> dict[str, Any]:
    """What the candidate's partition shows: its version and runs, its tuning and calibration, its holdout."""
    trained, metrics, split, warm = fitted.trained, fitted.metrics, fitted.split, plan.warm
    run_id, experiment_id = registered.run_id, registered.experiment_id
    deployed_on = (
        f"{trained.calibration['fitted_on']} + holdout {split.holdout_month} "
        f"({len(trained.calibration_y) + len(split.holdout):,} rows)"
    )
    return {
        "status": "trained",
        "model_version": registered.version,
        "model": registry.version_reference(registered.version),
        "mlflow_run": registry.run_reference(run_id, experiment_id),
        "mlflow_experiment": registry.experiment_reference(experiment_id),
        "warm_start": f"from v{warm['from_version']} ({warm['from_month']})" if warm else "cold start",
        "trials": int(trained.tuning.get("n_trials", 0)),
        "calibration": trained.calibration["method"],
        "calibration_deployed_on": deployed_on,
        "calibration_level_sd": round(registered.deployed.calibrator["level_sd"], 4),
        "holdout_month": split.holdout_month,
        "holdout_rows": int(metrics["rows"]),
        **{f"holdout_{k}": round(float(v), 5) for k, v in metrics.items() if k not in ("rows", "threshold")},
        "kappa_at": f"the decision policy's screen, p >= {plan.policy.refer_at}",
        "fit_seconds": round(trained.fit_seconds, 1),
        "best_params": dg.MetadataValue.json(trained.best_params),
        # Inline on the page (the full charts below are one click away): predicted probability (line)
        # against the claim rate observed (dots) in each equal-mass bin of the holdout.
        "reliability": _reliability_sparkline(fitted.y, fitted.p),
        **{f"plot_{name}": png_markdown(png, name) for name, png in registered.plots.items()},
        RECORD: dg.MetadataValue.json(record),
    }


def _quality_check(fitted: _Fitted, registered: _Registered, plan: _Plan) -> dg.AssetCheckResult:
    """Whether the candidate is eligible: the quality gate on its holdout."""
    return dg.AssetCheckResult(
        check_name=CANDIDATE_QUALITY,
        passed=not registered.gate_failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(registered.gate_failures) or "candidate fit to be compared with the champion",
        metadata={
            "roc_auc": float(fitted.metrics["roc_auc"]),
            "ece": float(fitted.metrics["ece"]),
            "missing_predictions": fitted.missing,
            **plan.gate.as_dict(),
        },
    )
