"""What a candidate records when its training is not new: the month's last candidate reused (nothing
trained or registered), or a training that failed (an ineligible candidate; the chain still decides)."""

import traceback
from typing import Any, NamedTuple

import dagster as dg
import pandas as pd

from claims_platform.core import links
from claims_platform.core.alerts import Alert, AlertsResource
from claims_platform.models.registry import ModelRegistry
from claims_platform.models.tracking import NOTE_TAG, TrainingRun, failed_outcome
from claims_platform.training.fairness import GROUP_COLUMNS
from claims_platform.training.fairness_report import fairness_check, fairness_not_measured
from claims_platform.training.reuse import reused_outcome, reused_record

CANDIDATE_MODEL = dg.AssetKey("candidate_model")
CANDIDATE_QUALITY = "candidate_quality"


def warm_start_for_next(previous: dict | None, record: dict) -> dict | None:
    """What the next month's search starts from: this candidate's hyperparameters if it is eligible,
    else what this one started from (the last eligible candidate's)."""
    if record.get("status") == "trained" and record["gate"]["passed"]:
        return {
            "params": record["params"],
            "from_version": record["version"],
            "from_month": record["training_month"],
        }
    return (previous or {}).get("warm_start_for_next")


RECORD = "record"  # the candidate's stored record, also on its materialization (what a retrain compares with)


class MonthCandidate(NamedTuple):
    """The month's last materialized candidate: its record, the run that materialized it, its metadata."""

    record: dict[str, Any]
    run_id: str
    metadata: dict[str, Any]


def month_candidate(context: dg.AssetExecutionContext) -> MonthCandidate | None:
    """This partition's last candidate, when its materialization carries its record."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CANDIDATE_MODEL, asset_partitions=[context.partition_key]), limit=1
    ).records
    if not records:
        return None
    metadata = dict(records[0].asset_materialization.metadata)
    entry = metadata.get(RECORD)
    return MonthCandidate(dict(entry.value), records[0].run_id, metadata) if entry is not None else None


def reused_candidate(
    context: dg.AssetExecutionContext,
    earlier: MonthCandidate,
    previous: dict | None,
    mlflow,
    tracked: TrainingRun,
    digest: str,
) -> list:
    """The month's last candidate again (see :mod:`claims_platform.training.reuse`): nothing trained or registered."""
    record = reused_record(earlier.record, dagster_run_id=context.run_id, earlier_run_id=earlier.run_id)
    record["warm_start_for_next"] = warm_start_for_next(previous, record)
    version, trained_by = record["version"], record["trained_by_dagster_run_id"]
    outcome = reused_outcome(record["model_name"], version, digest, trained_by)
    context.log.info(f"{context.partition_key[:7]}: {outcome}")
    mlflow.set_tags({NOTE_TAG: tracked.description(outcome), "reused_model_version": str(version)})
    mlflow.end_run()
    # The earlier materialization's figures and plots describe this same model; the IO manager adds its path.
    kept = {k: v for k, v in earlier.metadata.items() if k not in ("path", RECORD, "reused", "trained_by")}
    output = dg.Output(
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
    check = dg.AssetCheckResult(
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
    fairness = record.get("fairness")
    if fairness is None:  # a candidate recorded before groups were reported
        return [
            output,
            check,
            fairness_not_measured(CANDIDATE_MODEL, f"v{version} was recorded before groups were"),
        ]
    groups = pd.DataFrame(fairness["groups"], columns=list(GROUP_COLUMNS))
    return [output, check, fairness_check(groups, CANDIDATE_MODEL, f"the holdout {record['holdout_month']}")]


def failed_candidate(
    context: dg.AssetExecutionContext,
    month: str,
    error: Exception,
    previous: dict | None,
    mlflow,
    alerts: AlertsResource,
    registry: ModelRegistry,
    tracked: TrainingRun,
) -> list:
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
    record["warm_start_for_next"] = warm_start_for_next(previous, record)
    output = dg.Output(
        record,
        metadata={
            "status": "failed",
            "failure": reason,
            "mlflow_run": registry.run_reference(run.run_id, run.experiment_id),
        },
    )
    check = dg.AssetCheckResult(
        check_name=CANDIDATE_QUALITY,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"training failed: {reason}",
    )
    return [
        output,
        check,
        fairness_not_measured(CANDIDATE_MODEL, "training failed: no model to judge by group"),
    ]
