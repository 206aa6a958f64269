"""Daily scoring assets: the model in force, the scored applications, the reserve forecast."""

import io
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform.metadata import png_markdown
from claims_platform.models.loading import load_scorer_cached
from claims_platform.models.policy import DECISIONS, DecisionPolicy, decision_counts, risk_band
from claims_platform.models.registry import ModelRegistry
from claims_platform.months import add_months
from claims_platform.partitions import daily_partitions, scoring_months
from claims_platform.schema import APPLICATION_DATE, APPLICATION_ID
from claims_platform.scoring.reserve import forecast_claims

GROUP = "scoring"
OWNERS = ["team:data-science", "team:actuarial"]
_DEFAULT_POLICY = DecisionPolicy()

SCORE_COLUMNS = (
    APPLICATION_ID,
    APPLICATION_DATE,
    "claim_probability",
    "risk_band",
    "decision",
    "model_name",
    "model_version",
)


def _month_key(day_key: str) -> str:
    return f"{day_key[:7]}-01"


@dg.asset(
    partitions_def=scoring_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="object_io_manager",
    ins={
        "champion_model": dg.AssetIn(
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
        "The model that scores the days of this month: the one `champion_model` chose in the month "
        "before. Daily scores depend on it, so the lineage shows which model scored which day."
    ),
)
def model_in_force(
    context: dg.AssetExecutionContext, champion_model: dict[str, dict], registry: ModelRegistry
) -> dict[str, dict]:
    """For each month of the run, the champion decided in the previous month's partition.

    A version withdrawn by a rollback is replaced by the version restored in its place (the
    rollback job re-materializes the current month). The record carries the model's artifact
    location, so nightly scoring reads the model without touching the registry.
    """
    months = context.partition_keys
    in_force = {}
    for month in months:
        previous = add_months(date.fromisoformat(month), -1).isoformat()
        if previous < scoring_months.get_first_partition_key():
            raise dg.Failure(
                f"{month[:7]} is the platform's first month: no champion can have been decided before it. "
                "Scoring starts with the month after the first trained month."
            )
        if previous not in champion_model:
            raise dg.Failure(
                f"No champion decided for {month[:7]}: materialize `champion_model` partition {previous} first."
            )
        decision = champion_model[previous]
        version, note = registry.resolve_in_force(int(decision["version"]))
        in_force[month] = {
            "model_name": decision["model_name"],
            "version": version,
            "decided_version": int(decision["version"]),
            "model_uri": registry.artifact_uri(version),
            "decided_in": previous[:7],
            "note": note,
        }
    notes = {m[:7]: r["note"] for m, r in in_force.items() if r["note"]}
    context.add_output_metadata(
        {
            "model_versions": dg.MetadataValue.json({m[:7]: r["version"] for m, r in in_force.items()}),
            **({"rollback_resolutions": dg.MetadataValue.json(notes)} if notes else {}),
        }
    )
    return in_force


class ScoringConfig(dg.Config):
    """The decision thresholds (defaults defined once, in `DecisionPolicy`)."""

    refer_at: float = Field(default=_DEFAULT_POLICY.refer_at, description="Refer at or above this probability.")
    decline_at: float = Field(default=_DEFAULT_POLICY.decline_at, description="Decline at or above this probability.")


def score_days(
    days: dict[str, pd.DataFrame], in_force: dict[str, dict], policy: DecisionPolicy
) -> dict[str, pd.DataFrame]:
    """Score each day with the model in force in its month; one predict call per model."""
    days_by_model: dict[tuple[str, int, str], list[str]] = {}
    for day in days:
        record = in_force[_month_key(day)]
        days_by_model.setdefault((record["model_name"], int(record["version"]), record["model_uri"]), []).append(day)
    scored: dict[str, pd.DataFrame] = {}
    for (model_name, version, model_uri), model_days in days_by_model.items():
        frames = [days[d] for d in model_days]
        probability = load_scorer_cached(model_uri).predict(pd.concat(frames, ignore_index=True))
        offset = 0
        for day, frame in zip(model_days, frames, strict=True):
            p = probability[offset : offset + len(frame)]
            offset += len(frame)
            scored[day] = pd.DataFrame(
                {
                    APPLICATION_ID: frame[APPLICATION_ID].to_numpy(dtype=object),
                    APPLICATION_DATE: frame[APPLICATION_DATE].to_numpy(dtype=object),
                    "claim_probability": p,
                    "risk_band": risk_band(p).astype(object),
                    "decision": policy.decide(p).astype(object),
                    "model_name": model_name,
                    "model_version": np.full(len(frame), version, dtype="int64"),
                },
                columns=list(SCORE_COLUMNS),
            )
    return {day: scored[day] for day in days}


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    ins={"model_in_force": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping())},
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas", "parquet", "mlflow"},
    description=(
        "Every valid application of the day scored by the model in force in its month: calibrated claim "
        "probability, risk band, accept / refer / decline, and the registered model name and version."
    ),
)
def application_scores(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    applications: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
    registry: ModelRegistry,
) -> dict[str, pd.DataFrame]:
    """Score the partition range's days; a backfill of an old day uses the model in force then."""
    policy = DecisionPolicy(refer_at=config.refer_at, decline_at=config.decline_at)
    missing = sorted({_month_key(d) for d in applications} - set(model_in_force))
    if missing:
        raise dg.Failure(f"No model in force for month(s) {missing}: materialize `model_in_force` for them first.")
    scored = score_days(applications, model_in_force, policy)
    everything = pd.concat(scored.values(), ignore_index=True) if scored else pd.DataFrame(columns=SCORE_COLUMNS)
    p = everything["claim_probability"].to_numpy(dtype="float64")
    quantiles = {f"p{int(q * 100)}": round(float(np.quantile(p, q)), 4) for q in (0.1, 0.5, 0.9, 0.99)} if len(p) else {}
    versions = sorted({int(v) for v in everything["model_version"]}) if len(everything) else []
    context.add_output_metadata(
        {
            # Totals over the run's days (Dagster copies them onto each partition of a backfill).
            "run_days": len(scored),
            "run_rows_scored": len(everything),
            **{f"run_decision_{d}": c for d, c in decision_counts(everything["decision"]).items()},
            "run_probability_quantiles": dg.MetadataValue.json(quantiles),
            "model_versions": dg.MetadataValue.json(versions),
            "model": dg.MetadataValue.url(registry.version_url(versions[-1]))
            if versions and registry.ui_url
            else (registry.model_uri(versions[-1]) if versions else "none"),
            "thresholds": dg.MetadataValue.json({"refer_at": policy.refer_at, "decline_at": policy.decline_at}),
        }
    )
    return scored


class ReserveConfig(dg.Config):
    """The cost side of the reserve."""

    average_claim_cost: float = Field(default=12_000.0, description="Average cost of one claim, in currency units.")


def _forecast_row(day: str, scores: pd.DataFrame, cost: float) -> dict:
    counts = decision_counts(scores["decision"])
    accepted = scores.loc[scores["decision"] == "accept", "claim_probability"].to_numpy(dtype="float64")
    everyone = scores["claim_probability"].to_numpy(dtype="float64")
    return {
        "day": day,
        **{f"{d}_count": counts[d] for d in DECISIONS},
        **forecast_claims(accepted, cost).as_dict("accepted_"),
        **forecast_claims(everyone, cost).as_dict("all_"),
        "average_claim_cost": cost,
    }


def _reserve_plot(table: pd.DataFrame) -> dg.MarkdownMetadataValue:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    x = pd.to_datetime(table["day"])
    for prefix, label in (("all_", "all applications"), ("accepted_", "accepted only")):
        ax.plot(x, table[f"{prefix}expected_claims"], label=label)
        ax.fill_between(x, table[f"{prefix}claims_low"], table[f"{prefix}claims_high"], alpha=0.2)
    ax.set_ylabel("expected claims (95% interval)")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return png_markdown(buffer.getvalue(), "expected claims per day")


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas", "parquet"},
    description=(
        "The day's decisions and the claims they imply: expected claims among accepted applicants (Σp) with "
        "a 95% Poisson-binomial interval, the reserve at the average claim cost, and the same before filtering."
    ),
)
def reserve_forecast(
    context: dg.AssetExecutionContext, config: ReserveConfig, application_scores: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """One row per day: decision counts, expected claims and reserve, accepted versus everyone."""
    rows = {day: _forecast_row(day, scores, config.average_claim_cost) for day, scores in application_scores.items()}
    table = pd.DataFrame(list(rows.values()))
    last = rows[max(rows)]
    metadata = {
        # Totals over the run's days (Dagster copies them onto each partition of a backfill).
        "run_days": len(rows),
        "run_accepted_expected_claims": round(float(table["accepted_expected_claims"].sum()), 2),
        "run_accepted_reserve": round(float(table["accepted_reserve"].sum()), 2),
        "run_all_reserve": round(float(table["all_reserve"].sum()), 2),
        "run_reserve_saved_by_filtering": round(float((table["all_reserve"] - table["accepted_reserve"]).sum()), 2),
        "last_day_forecast": dg.MetadataValue.json(last),
    }
    if len(table) > 1:
        metadata["expected_claims_plot"] = _reserve_plot(table)
    context.add_output_metadata(metadata)
    return {day: pd.DataFrame([row]) for day, row in rows.items()}
