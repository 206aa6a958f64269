"""Daily scoring assets: the scored applications and the reserve forecast.

Each day is scored by the model in force in its month (`model_in_force`, decided the month before)
with the decision policy that model was chosen under, so a backfill of an old day reproduces it.
"""


import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform.metadata import figure_markdown
from claims_platform.models.loading import load_scorer_cached
from claims_platform.models.policy import DECISIONS, DecisionPolicy, decision_counts, risk_band
from claims_platform.models.registry import ModelRegistry
from claims_platform.months import month_key
from claims_platform.partitions import daily_partitions
from claims_platform.schema import APPLICATION_DATE, APPLICATION_ID
from claims_platform.scoring.reserve import forecast_claims

GROUP = "scoring"
OWNERS = ["team:data-science", "team:actuarial"]

SCORE_COLUMNS = (
    APPLICATION_ID,
    APPLICATION_DATE,
    "claim_probability",
    "risk_band",
    "decision",
    "model_name",
    "model_version",
)


class NoModelInForce(Exception):
    """A month has no model to score it with (the platform's first months, or only ineligible candidates)."""


def score_days(days: dict[str, pd.DataFrame], in_force: dict[str, dict]) -> dict[str, pd.DataFrame]:
    """Score each day with the model in force in its month and its policy; one predict call per model."""
    days_by_model: dict[tuple, list[str]] = {}
    for day in days:
        record = in_force[month_key(day)]
        if record["version"] is None:
            raise NoModelInForce(
                f"No model in force for {day[:7]} ({day}): {record['reason']}. The first model is trained once two "
                "months of outcomes are known; then run `monthly_training` for the month before the day's month."
            )
        policy = (record["policy"]["refer_at"], record["policy"]["decline_at"])
        days_by_model.setdefault((record["model_name"], int(record["version"]), record["model_uri"], policy), []).append(day)
    scored: dict[str, pd.DataFrame] = {}
    for (model_name, version, model_uri, (refer_at, decline_at)), model_days in days_by_model.items():
        policy = DecisionPolicy(refer_at=refer_at, decline_at=decline_at)
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
        "Every valid application of the day scored by the model in force in its month, with the decision policy it "
        "was chosen under: calibrated claim probability, risk band, accept / refer / decline, model name and version."
    ),
)
def application_scores(
    context: dg.AssetExecutionContext,
    applications: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
    registry: ModelRegistry,
) -> dict[str, pd.DataFrame]:
    """Score the partition range's days; a backfill of an old day uses the model in force then."""
    missing = sorted({month_key(d) for d in applications} - set(model_in_force))
    if missing:
        raise dg.Failure(f"No model in force for month(s) {missing}: materialize `model_in_force` for them first.")
    try:
        scored = score_days(applications, model_in_force)
    except NoModelInForce as error:
        raise dg.Failure(str(error)) from error
    for day, frame in scored.items():
        # Each day's own figures on its own partition, also in a single-run backfill.
        version = int(frame["model_version"].iloc[0]) if len(frame) else model_in_force[month_key(day)]["version"]
        context.add_asset_metadata(
            {
                "rows_scored": len(frame),
                **{f"decision_{d}": c for d, c in decision_counts(frame["decision"]).items()},
                "model_version": version,
                "model": registry.version_reference(version),
            },
            partition_key=day,
        )
    return scored


class ReserveConfig(dg.Config):
    """The cost side of the reserve."""

    average_claim_cost: float = Field(default=12_000.0, gt=0, description="Average cost of one claim, in currency units.")


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
    return figure_markdown(fig, "expected claims per day")


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
