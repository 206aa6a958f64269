"""The models domain's assets: the champion chain and the model in force in each scoring month.

`champion_decision(M)` depends on `champion_decision(M−1)` (a self-dependency one month back) and
takes the incumbent from it — never from the registry's alias — so any month re-decided gives the
decision it gave the first time. It ALWAYS decides: a candidate that failed training or the gate
is "ineligible, champion kept". `model_in_force(X)` is the champion of `champion_decision(X−1)`,
with the policy it was chosen under: the hop from each scored day to the decision of the month
before. The pure logic is in :mod:`claims_platform.models.champion`.
"""

import hashlib
import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field, model_validator

from claims_platform.core.alerts import Alert, AlertsResource
from claims_platform.core.months import shift_month_key
from claims_platform.core.partitions import (
    month_before,
    monthly_partitions,
    require_month_order,
    scoring_months,
)
from claims_platform.core.policy import BusinessCosts, DecisionPolicy
from claims_platform.core.run_origin import launched_by
from claims_platform.core.services import names_outages
from claims_platform.models.champion import PromotionRules
from claims_platform.models.decision import Judged, decide
from claims_platform.models.gate import QualityGate
from claims_platform.models.registry import ModelRegistry
from claims_platform.models.rollback import ROLLBACK_TAG, RollbackRequest, days_scored_by, rolled_back

GROUP = "models"
OWNERS = ["team:data-science", "team:actuarial"]
# One champion decision at a time on the instance: two monthly runs launched together must not
# both read "no champion" and both project their candidate onto the aliases.
CHAMPION_POOL = "champion_chain"
# Tag of the rollback job's runs: such a run must carry a rollback request in its config.

_RULES, _GATE, _POLICY, _COSTS = PromotionRules(), QualityGate(), DecisionPolicy(), BusinessCosts()
CHAMPION_DECISION = dg.AssetKey("champion_decision")


class ChampionDecisionConfig(dg.Config):
    """The promotion rules, the gate, the policy to judge on, and an optional rollback.

    Unset rules, gate and policy are those recorded with this month's decision when it is decided
    again (so a re-decision reproduces it), else the defaults (the policy: the month before's).
    """

    promote: bool = Field(
        default=True,
        description=(
            "False: record what would have happened and change nothing that scores. Over a month already "
            "decided, the decision stays as it was and the would-be outcome is added to it."
        ),
    )
    requested_by: str | None = Field(default=None, description="Who launched this decision (audited).")
    margin: float | None = Field(
        default=None,
        ge=-10_000,
        le=10_000,
        description=(
            f"Value per application (the costs' currency) the candidate must gain beyond the holdout's noise (default "
            f"{_RULES.margin}): the lower end of the difference's interval must exceed it. Negative: prefer the fresher "
            "model unless it is worse beyond noise."
        ),
    )
    confidence: float | None = Field(
        default=None,
        gt=0.5,
        lt=1.0,
        description=f"Of the paired bootstrap interval (default {_RULES.confidence}).",
    )
    resamples: int | None = Field(
        default=None,
        ge=200,
        le=100_000,
        description=f"Paired bootstrap resamples (default {_RULES.resamples}).",
    )
    max_champion_age_months: int | None = Field(
        default=None,
        ge=1,
        le=60,
        description=f"An incumbent trained longer ago is stale (default {_RULES.max_champion_age_months}).",
    )
    min_auc: float | None = Field(
        default=None,
        ge=0.5,
        le=1.0,
        description=f"Quality gate: holdout ROC AUC floor (default {_GATE.min_auc}).",
    )
    max_ece: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description=f"Quality gate: calibration error ceiling (default {_GATE.max_ece}).",
    )
    max_accepted_bias: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description=(
            "Quality gate: the largest relative gap between actual and expected claims among the holdout applicants the "
            f"policy accepts, beyond the holdout's noise (default {_GATE.max_accepted_bias})."
        ),
    )
    claim_cost: float | None = Field(
        default=None,
        gt=0,
        description=f"A new decision policy from this decision on: the average claim (default {_COSTS.claim_cost:,.0f}).",
    )
    premium_margin: float | None = Field(
        default=None,
        gt=0,
        description=f"... what an accepted policy earns when it does not claim (default {_COSTS.premium_margin:,.0f}).",
    )
    review_cost: float | None = Field(
        default=None,
        ge=0,
        description=f"... an underwriter's review of a referred application (default {_COSTS.review_cost:,.0f}).",
    )
    review_accuracy: float | None = Field(
        default=None, ge=0.5, le=1.0,
        description=f"... the share of referred applicants the underwriter decides right (default {_COSTS.review_accuracy}).",
    )  # fmt: skip
    rollback: RollbackRequest | None = Field(
        default=None, description="Roll the champion back (the rollback_champion job)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "ChampionDecisionConfig":
        if self.new_costs() and not self.promote:
            raise ValueError(
                "a new decision policy changes what scores: it cannot be set with promote: false"
            )
        if self.rollback is not None and not self.promote:
            raise ValueError("a rollback moves the champion: it cannot run with promote: false")
        return self

    def new_costs(self) -> dict[str, float]:
        """The business costs given in this run config (a new policy derived from them)."""
        return {
            name: getattr(self, name)
            for name in ("claim_cost", "premium_margin", "review_cost", "review_accuracy")
            if getattr(self, name) is not None
        }

    def settings(
        self, recorded: dict[str, Any] | None, previous: dict[str, Any] | None
    ) -> tuple[DecisionPolicy, QualityGate, PromotionRules]:
        """Policy, gate and rules for this decision: given here, else as recorded, else defaults."""

        def pick(name: str, section: str, default: Any) -> Any:
            given = getattr(self, name)
            if given is not None:
                return given
            return (recorded or {}).get(section, {}).get(name, default)

        source = recorded or previous
        policy = DecisionPolicy.from_dict(source["policy"]) if source else _POLICY
        if self.new_costs():
            # New costs, the others as in force: the thresholds of least expected cost under them.
            policy = DecisionPolicy.from_costs(
                BusinessCosts(**{**policy.costs.as_dict(), **self.new_costs()})
            )
        gate = QualityGate(
            pick("min_auc", "gate", _GATE.min_auc),
            pick("max_ece", "gate", _GATE.max_ece),
            pick("max_accepted_bias", "gate", _GATE.max_accepted_bias),
        )
        rules = PromotionRules(
            margin=pick("margin", "rules", _RULES.margin),
            confidence=pick("confidence", "rules", _RULES.confidence),
            resamples=pick("resamples", "rules", _RULES.resamples),
            max_champion_age_months=pick("max_champion_age_months", "rules", _RULES.max_champion_age_months),
        )
        return policy, gate, rules


def recorded_decision(instance: dg.DagsterInstance, month: str) -> dict[str, Any] | None:
    """The latest decision recorded for training month ``month`` (its audit record), if any."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CHAMPION_DECISION, asset_partitions=[month]), limit=1
    ).records
    if not records:
        return None
    entry = records[0].asset_materialization.metadata.get("decision")
    return dict(entry.value) if entry is not None else None


def _digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


_ALERT_LEVEL = {
    "no model": "error",
    "ineligible": "warning",
    "kept": "info",
    "promoted": "info",
    "first champion": "info",
}


@dg.asset(
    partitions_def=monthly_partitions,
    io_manager_key="object_io_manager",
    ins={"previous_decision": month_before("champion_decision")},
    pool=CHAMPION_POOL,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"mlflow"},
    description=(
        "Which model scores the days of the NEXT month. Takes the incumbent from the decision of the month before, "
        "judges the candidate and the incumbent on the same holdout with the one decision policy (paired bootstrap "
        "of kappa, quality gate), and always decides: an ineligible candidate keeps the champion. Audited as JSON; "
        "the MLflow aliases `champion` / `previous_champion` are a projection of the latest decision."
    ),
)
@names_outages
def champion_decision(
    context: dg.AssetExecutionContext,
    config: ChampionDecisionConfig,
    previous_decision: dict[str, dict],
    candidate_model: dict,
    training_set: pd.DataFrame,
    registry: ModelRegistry,
    alerts: AlertsResource,
):
    """Decide the champion for month M+1 from M−1's decision and M's candidate; or roll M back."""
    month = context.partition_key
    if context.run.tags.get(ROLLBACK_TAG) == "rollback" and config.rollback is None:
        raise dg.Failure(
            "A rollback run needs a reason and a requester in its run config: "
            "ops: {champion_decision: {config: {rollback: {reason: '...', requested_by: '...'}}}}"
        )
    recorded = recorded_decision(context.instance, month)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if config.rollback is not None:
        latest = max(context.instance.get_materialized_partitions(CHAMPION_DECISION) | {month})
        record = rolled_back(
            recorded, config.rollback, month=month, latest_decided=latest,
            scored_by=partial(days_scored_by, context.instance),
            launched_by=launched_by(context.run.tags, config.rollback.requested_by), run_id=context.run_id, now=now,
        )  # fmt: skip
    else:
        previous = previous_decision.get(shift_month_key(month, -1))
        require_month_order(context, CHAMPION_DECISION, previous)
        policy, gate, rules = config.settings(recorded, previous)
        record = decide(
            Judged(policy, gate, rules, config.promote), previous, recorded, candidate_model, training_set,
            month=month, model_name=registry.model_name, now=now, log=context.log,
            launched_by=launched_by(context.run.tags, config.requested_by), run_id=context.run_id,
        )  # fmt: skip
        if not config.promote and recorded is not None:
            # Record-only over a month already decided: the decision stays exactly as it was.
            record = {**recorded, "record_only": {k: record[k] for k in _RECORD_ONLY_KEYS}}
    record["digest"] = _digest({"state": record["state"], "policy": record["policy"]})

    latest = max(context.instance.get_materialized_partitions(CHAMPION_DECISION) | {month})
    record["aliases"] = aliases = _aliases(record, month, latest, config.promote)
    yield dg.Output(
        record,
        # What scores (state and policy) is the data: a re-decision that comes out the same does
        # not mark the next month stale; one that differs does.
        data_version=dg.DataVersion(record["digest"]),
        metadata={**_decision_metadata(registry, record), **_card_link(registry, candidate_model, record)},
    )
    # After the decision is stored: the registry only ever points at a stored decision.
    if isinstance(aliases, dict):
        registry.project_aliases(aliases["champion"], aliases["previous_champion"])
    candidate_version = record["candidate"]["version"]
    if candidate_version is not None and "record_only" not in record:
        registry.tag_version(
            int(candidate_version),
            {f"decision.{month[:7]}": {"outcome": record["outcome"], "reason": record["reason"]}},
        )
    registry.record(f"decision_{month[:7]}", {k: record.get(k) for k in _AUDIT_TAG_KEYS})
    _alert(context, alerts, record, rollback_run=config.rollback is not None)


def _card_link(registry: ModelRegistry, candidate_model: dict, record: dict[str, Any]) -> dict[str, Any]:
    """The candidate's model card, written again with this decision's comparison; a link to it. A record-only
    run leaves the card as the recorded decision wrote it; a candidate that failed, or was recorded before
    versions carried cards, has none."""
    if "card_facts" not in candidate_model or (record.get("candidate") or {}).get("version") is None:
        return {}
    from claims_platform.models.cards import card_url, write_model_card

    if "record_only" in record:
        run = registry.client().get_run(candidate_model["mlflow_run_id"])
        return {
            "model_card": dg.MetadataValue.url(card_url(registry, run.info.run_id, run.info.experiment_id))
        }
    return {"model_card": dg.MetadataValue.url(write_model_card(registry, candidate_model, decision=record))}


def _aliases(record: dict[str, Any], month: str, latest: str, promote: bool) -> dict[str, Any] | str:
    """Where the registry's aliases go: they follow the LATEST decision only, and never a record-only run."""
    if not promote:
        return "not moved: promote is false (record-only)"
    if latest > month:
        return f"not moved: {latest[:7]} is the latest decision"
    champion = record["champion"]
    return {
        "champion": champion["version"] if champion else None,
        "previous_champion": record["previous_champion"],
    }


_RECORD_ONLY_KEYS = (
    "outcome",
    "reason",
    "would_promote",
    "candidate",
    "incumbent",
    "comparison",
    "launched_by",
    "dagster_run_id",
    "decided_at",
)
_AUDIT_TAG_KEYS = (
    "outcome",
    "reason",
    "launched_by",
    "dagster_run_id",
    "aliases",
    "rollbacks",
    "record_only",
)


def _decision_metadata(registry: ModelRegistry, record: dict[str, Any]) -> dict[str, Any]:
    champion, comparison = record["champion"], record["comparison"]
    aliases = record["aliases"]
    return {
        "outcome": record["outcome"],
        "reason": record["reason"],
        "champion": registry.version_reference(champion["version"] if champion else None),
        "champion_version": champion["version"] if champion else "none",
        "scores_month": record["scores_month"],
        "candidate": registry.version_reference(record["candidate"]["version"]),
        **(_comparison_metadata(comparison, record.get("kappa_comparison")) if comparison else {}),
        **({"importance_ranking": _ranking_table(record["importance"])} if record.get("importance") else {}),
        **({"record_only": record["record_only"]["outcome"]} if "record_only" in record else {}),
        "policy": dg.MetadataValue.json(record["policy"]),
        "aliases": dg.MetadataValue.json(aliases) if isinstance(aliases, dict) else aliases,
        "launched_by": record["launched_by"],
        "decision": dg.MetadataValue.json(record),
    }


def _ranking_table(importance: dict[str, Any]) -> dg.TableMetadataValue:
    """The candidate's top features by importance beside the incumbent's ranks (+ moved up)."""
    columns = {
        "feature": "string",
        "rank": "int",
        "share": "float",
        "incumbent_rank": "string",
        "moved": "string",
    }
    rows = [
        dg.TableRecord(
            {
                "feature": move["feature"],
                "rank": move["rank"],
                "share": move["share"],
                "incumbent_rank": "—" if move["incumbent_rank"] is None else str(move["incumbent_rank"]),
                "moved": "new" if move["moved"] is None else f"{move['moved']:+d}" if move["moved"] else "=",
            }
        )
        for move in importance["top"]
    ]
    return dg.MetadataValue.table(
        rows, schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()])
    )


def _comparison_metadata(comparison: dict[str, Any], kappa: dict[str, Any] | None) -> dict[str, Any]:
    """What the decision judged on (the value per application, or kappa in a decision recorded before it), and kappa."""
    metric = comparison.get("metric", "kappa")
    name = "value" if metric == "value per application" else "kappa"
    out = {
        "judged_on": metric,
        f"candidate_{name}": round(comparison.get("candidate", comparison.get("candidate_kappa")), 5),
        f"incumbent_{name}": round(comparison.get("incumbent", comparison.get("incumbent_kappa")), 5),
        f"{name}_difference": round(comparison["difference"], 5),
        "difference_interval": f"{comparison['low']:+.4f} .. {comparison['high']:+.4f} ({comparison['confidence']:.0%})",
    }
    if kappa is not None:
        out.update(
            {"candidate_kappa": round(kappa["candidate"], 5), "incumbent_kappa": round(kappa["incumbent"], 5)}
        )
    return out


def _alert(
    context: dg.AssetExecutionContext, alerts: AlertsResource, record: dict[str, Any], rollback_run: bool
) -> None:
    month, outcome = record["training_month"], record["outcome"]
    champion = record["champion"]["version"] if record["champion"] else None
    fields = {
        "month": month,
        "scores": record["scores_month"],
        "champion": f"v{champion}" if champion else "none",
    }
    if rollback_run:
        last = record["rollbacks"][-1]
        days = last["days_scored_by_withdrawn"]
        scored = f"{days} days ({last['first_day_scored']}..{last['last_day_scored']})" if days else "no day"
        alert = Alert(
            "warning",
            f"Champion rolled back: v{last['version']} withdrawn, v{last['restored']} restored",
            f"{last['reason']} (requested by {last['requested_by']}). {scored} were scored by v{last['version']} "
            "and are NOT re-scored: backfill `application_scores` for them to re-score.",
            fields=fields,
        )
    elif "record_only" in record:
        would = record["record_only"]
        alert = Alert(
            "info", f"Record-only check {month}: {would['outcome']}", would["reason"], fields=fields
        )
    else:
        alert = Alert(
            _ALERT_LEVEL.get(outcome, "info"),
            f"Champion decision {month}: {outcome}",
            record["reason"],
            fields=fields,
        )
    alerts.send(alert, log=context.log)


def model_in_force_record(decision: dict[str, Any], decided_in: str) -> dict[str, Any]:
    """What scores a month, from the decision of the month before (pure)."""
    champion = decision.get("champion")
    base = {
        "model_name": decision["model_name"],
        "decided_in": decided_in[:7],
        "policy": decision["policy"],
        "outcome": decision["outcome"],
    }
    if not champion:
        return {
            **base,
            "version": None,
            "model_uri": None,
            "reason": f"no champion after the decision of {decided_in[:7]}: {decision['reason']}",
        }
    return {
        **base,
        "version": int(champion["version"]),
        "model_uri": champion["model_uri"],
        "reason": decision["reason"],
    }


@dg.asset(
    partitions_def=scoring_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="object_io_manager",
    ins={
        "champion_decision": dg.AssetIn(
            # The first month has no month before it: the asset then fails with a clear message.
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
            ),
        )
    },
    group_name=GROUP,
    owners=OWNERS,
    kinds={"mlflow"},
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "The model that scores the days of this month, and the decision policy it was chosen under: the champion of "
        "`champion_decision` of the month before. Daily scores depend on it, so the lineage shows which decision "
        "scored which day; a rollback re-decides that month and this asset follows automatically."
    ),
)
@names_outages
def model_in_force(
    context: dg.AssetExecutionContext, champion_decision: dict[str, dict], registry: ModelRegistry
) -> dict[str, dict]:
    """For each month of the run, the champion decided in the previous month's partition."""
    in_force = {}
    for month in context.partition_keys:
        previous = shift_month_key(month, -1)
        if previous < scoring_months.get_first_partition_key():
            raise dg.Failure(
                f"{month[:7]} is the platform's first month: no champion can have been decided before it. "
                "Scoring starts with the month after the first trained month."
            )
        if previous not in champion_decision:
            raise dg.Failure(
                f"No champion decided for {month[:7]}: materialize `champion_decision` partition {previous} first."
            )
        in_force[month] = model_in_force_record(champion_decision[previous], previous)
        # Each month's own model and thresholds on its own partition, also in a range run.
        policy = DecisionPolicy.from_dict(in_force[month]["policy"])
        context.add_asset_metadata(
            {
                "model_version": in_force[month]["version"]
                if in_force[month]["version"] is not None
                else "none",
                "decided_in": previous[:7],
                "accept_below": round(policy.refer_at, 4),
                "refer_below": round(policy.decline_at, 4),
                "thresholds": f"accept below {policy.refer_at:.1%}, refer below {policy.decline_at:.1%}, decline above",
                "costs": dg.MetadataValue.json(policy.costs.as_dict()),
            },
            partition_key=month,
        )
    context.add_output_metadata(
        {
            "model_versions": dg.MetadataValue.json({m[:7]: r["version"] for m, r in in_force.items()}),
            **(
                {"model": registry.version_reference(record["version"])}
                if len(in_force) == 1 and (record := next(iter(in_force.values())))
                else {}
            ),
        }
    )
    return in_force
