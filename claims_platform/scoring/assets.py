"""Daily scoring assets: the scored applications and the reserve forecast.

Each day is scored by the model in force in its month (`model_in_force`, decided the month before)
with the decision policy that model was chosen under, so a backfill of an old day reproduces it.
"""

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform.core.figures import money, money_range, one_decimal, percent
from claims_platform.core.months import month_key
from claims_platform.core.partitions import daily_partitions
from claims_platform.core.policy import (
    DECISIONS,
    FIXED_POLICY,
    RISK_BANDS,
    DecisionPolicy,
    decision_counts,
    risk_band,
)
from claims_platform.core.schema import APPLICATION_DATE, APPLICATION_ID, COLUMN_DESCRIPTIONS
from claims_platform.core.services import names_outages
from claims_platform.models.loading import calibration_level_sd, load_scorer_cached
from claims_platform.models.registry import ModelRegistry
from claims_platform.scoring.reasons import (
    REASON_COLUMN_DESCRIPTIONS,
    REASON_COLUMNS,
    Explain,
    decision_reasons,
    reason_dtype,
)
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
    *REASON_COLUMNS,
)


# What each stored column means: the UI's column schema (the Parquet IO manager adds the dtypes).
SCORE_COLUMN_DESCRIPTIONS = {
    APPLICATION_ID: COLUMN_DESCRIPTIONS[APPLICATION_ID],
    APPLICATION_DATE: COLUMN_DESCRIPTIONS[APPLICATION_DATE],
    "claim_probability": "Calibrated probability that the policy leads to a claim, from the model in force.",
    "risk_band": "Band of claim_probability: "
    + ", ".join(f"{name} (<{edge:.0%})" for name, edge in RISK_BANDS[:-1])
    + f", {RISK_BANDS[-1][0]}.",
    "decision": "accept, refer (to an underwriter) or decline, by the decision policy the model was chosen under.",
    "model_name": "Registered model that scored the application.",
    "model_version": "Version of the registered model that scored the application (the model in force that month).",
    **REASON_COLUMN_DESCRIPTIONS,
}
FORECAST_COLUMN_DESCRIPTIONS = {
    "day": "The day forecast (the partition).",
    **{f"{d}_count": f"Applications the decision policy decided '{d}'." for d in DECISIONS},
    **{
        f"{prefix}{field}": f"{text} ({who})"
        for prefix, who in (
            ("accepted_", "accepted applicants"),
            ("all_", "every applicant, before filtering"),
        )
        for field, text in (
            ("applicants", "Applicants counted"),
            ("expected_claims", "Expected claims: the sum of the calibrated claim probabilities"),
            ("claims_low", "Low end of the 95% interval of the number of claims"),
            ("claims_high", "High end of the 95% interval of the number of claims"),
            ("reserve", "Reserve: expected claims times the average claim cost, in currency"),
            ("reserve_low", "Reserve at the low end of the claims interval, in currency"),
            ("reserve_high", "Reserve at the high end of the claims interval, in currency"),
        )
    },
    "average_claim_cost": "Average cost of one claim used for the reserve (run config), in currency.",
    "currency": "Currency of the reserve and the claim cost (run config).",
}


def _declared_schema(descriptions: dict[str, str], dtype_of) -> dg.TableSchema:
    """The columns an asset declares (shown before its first materialization; the IO manager's schema
    of each stored partition takes their descriptions)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, dtype_of(name), description=text) for name, text in descriptions.items()
        ]
    )


def _score_dtype(name: str) -> str:
    if name in REASON_COLUMN_DESCRIPTIONS:
        return reason_dtype(name)
    return {"claim_probability": "float64", "model_version": "int64"}.get(name, "object")


def _forecast_dtype(name: str) -> str:
    if name in ("day", "currency"):
        return "object"
    return "int64" if name.endswith(("_count", "applicants", "claims_low", "claims_high")) else "float64"


class NoModelInForce(Exception):
    """A month has no model to score it with (the platform's first months, or only ineligible candidates)."""


def score_days(
    days: dict[str, pd.DataFrame], in_force: dict[str, dict], explain: Explain = "refer_and_decline"
) -> dict[str, pd.DataFrame]:
    """Score each day with the model in force in its month and its policy (one predict call per model),
    with the reasons of the decisions ``explain`` covers (:mod:`claims_platform.scoring.reasons`)."""
    days_by_model: dict[tuple, list[str]] = {}
    for day in days:
        record = in_force[month_key(day)]
        if record["version"] is None:
            raise NoModelInForce(
                f"No model in force for {day[:7]} ({day}): {record['reason']}. The first model is trained once two "
                "months of outcomes are known; then run `monthly_training` for the month before the day's month."
            )
        policy = DecisionPolicy.from_dict(record["policy"])
        days_by_model.setdefault(
            (record["model_name"], int(record["version"]), record["model_uri"], policy), []
        ).append(day)
    scored: dict[str, pd.DataFrame] = {}
    for (model_name, version, model_uri, policy), model_days in days_by_model.items():
        frames = [days[d] for d in model_days]
        rows = pd.concat(frames, ignore_index=True)
        scorer = load_scorer_cached(model_uri)
        probability = scorer.predict(rows)
        decision = policy.decide(probability)
        reasons = decision_reasons(scorer, rows, decision, explain)
        offset = 0
        for day, frame in zip(model_days, frames, strict=True):
            part = slice(offset, offset + len(frame))
            offset += len(frame)
            p = probability[part]
            scored[day] = pd.DataFrame(
                {
                    APPLICATION_ID: frame[APPLICATION_ID].to_numpy(dtype=object),
                    APPLICATION_DATE: frame[APPLICATION_DATE].to_numpy(dtype=object),
                    "claim_probability": p,
                    "risk_band": risk_band(p).astype(object),
                    "decision": decision[part].astype(object),
                    "model_name": model_name,
                    "model_version": np.full(len(frame), version, dtype="int64"),
                    **{column: reasons[column].to_numpy()[part] for column in REASON_COLUMNS},
                },
                columns=list(SCORE_COLUMNS),
            )
    return {day: scored[day] for day in days}


class ScoringConfig(dg.Config):
    """Which decisions carry their reasons."""

    explain: str = Field(
        default="refer_and_decline",
        pattern=r"^(refer_and_decline|all|none)$",
        description=(
            "Rows whose reasons are computed (exact TreeSHAP, about 100x a prediction's cost per row): "
            "'refer_and_decline' (the decisions that must be explained), 'all' or 'none'."
        ),
    )


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    ins={"model_in_force": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping())},
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas", "parquet", "mlflow"},
    metadata={"dagster/column_schema": _declared_schema(SCORE_COLUMN_DESCRIPTIONS, _score_dtype)},
    description=(
        "Every valid application of the day scored by the model in force in its month, with the decision policy it "
        "was chosen under: calibrated claim probability, risk band, accept / refer / decline, model name and version, "
        "and for referrals and declines the features that raised the probability the most, with their contributions."
    ),
)
@names_outages
def application_scores(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    applications: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
    registry: ModelRegistry,
) -> dict[str, pd.DataFrame]:
    """Score the partition range's days; a backfill of an old day uses the model in force then."""
    missing = sorted({month_key(d) for d in applications} - set(model_in_force))
    if missing:
        raise dg.Failure(
            f"No model in force for month(s) {missing}: materialize `model_in_force` for them first."
        )
    try:
        scored = score_days(applications, model_in_force, config.explain)
    except NoModelInForce as error:
        raise dg.Failure(str(error)) from error
    for day, frame in scored.items():
        # Each day's own figures on its own partition, also in a single-run backfill.
        record = model_in_force[month_key(day)]
        version = int(frame["model_version"].iloc[0]) if len(frame) else record["version"]
        policy = DecisionPolicy.from_dict(record["policy"])
        context.add_asset_metadata(_scores_metadata(frame, version, registry, policy), partition_key=day)
    return scored


def _scores_metadata(
    frame: pd.DataFrame, version: int | None, registry: ModelRegistry, policy: DecisionPolicy
) -> dict:
    """One day's scored applications as its partition shows them (counts plotted by the UI, shares as %), and what
    its decisions are expected to cost per application against the former fixed thresholds on the same days."""
    counts = decision_counts(frame["decision"])
    rows = len(frame)
    p = frame["claim_probability"].to_numpy(dtype="float64")
    fixed = DecisionPolicy(FIXED_POLICY.refer_at, FIXED_POLICY.decline_at, policy.costs)
    return {
        "rows_scored": rows,
        **{f"decision_{d}": c for d, c in counts.items()},
        "accepted_share": percent(counts["accept"] / rows if rows else None),
        "refer_share": percent(counts["refer"] / rows if rows else None),
        "mean_claim_probability": percent(float(frame["claim_probability"].mean()) if rows else None),
        # Claims and reviews less the margin earned, expected at the calibrated probabilities (negative: a net margin).
        "expected_cost_per_application": round(policy.expected_cost(p), 2),
        "fixed_thresholds_cost_per_application": round(fixed.expected_cost(p), 2),
        "thresholds": f"accept below {policy.refer_at:.1%}, refer below {policy.decline_at:.1%}, decline above",
        "model_version": version,
        "model": registry.version_reference(version),
    }


class ReserveConfig(dg.Config):
    """The cost side of the reserve."""

    average_claim_cost: float | None = Field(
        default=None,
        gt=0,
        description="Average cost of one claim, in `currency` (default: the claim cost of the decision policy in force).",
    )
    currency: str = Field(
        default="GBP",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of the claim cost's currency: the reserve is shown in it (e.g. £307,091 for GBP).",
    )


def _forecast_row(
    day: str, scores: pd.DataFrame, cost: float, currency: str = "GBP", level_sd: float = 0.0
) -> dict:
    counts = decision_counts(scores["decision"])
    accepted = scores.loc[scores["decision"] == "accept", "claim_probability"].to_numpy(dtype="float64")
    everyone = scores["claim_probability"].to_numpy(dtype="float64")
    return {
        "day": day,
        **{f"{d}_count": counts[d] for d in DECISIONS},
        **forecast_claims(accepted, cost, level_sd).as_dict("accepted_"),
        **forecast_claims(everyone, cost, level_sd).as_dict("all_"),
        "average_claim_cost": cost,
        "currency": currency,
    }


def forecast_metadata(row: dict) -> dict:
    """One day's forecast as its partition shows it: counts and expected claims as numbers (the UI's
    Plots view graphs them by partition), the reserve rounded in its currency, intervals as text."""
    currency = row["currency"]
    return {
        "applications": sum(row[f"{d}_count"] for d in DECISIONS),
        **{f"decision_{d}": row[f"{d}_count"] for d in DECISIONS},
        "expected_claims": one_decimal(row["accepted_expected_claims"]),
        "expected_claims_95": f"{row['accepted_claims_low']}–{row['accepted_claims_high']} claims",
        "reserve": money(row["accepted_reserve"], currency),
        "reserve_95": money_range(row["accepted_reserve_low"], row["accepted_reserve_high"], currency),
        "expected_claims_before_filtering": one_decimal(row["all_expected_claims"]),
        "reserve_before_filtering": money(row["all_reserve"], currency),
        "reserve_saved_by_filtering": money(row["all_reserve"] - row["accepted_reserve"], currency),
        "average_claim_cost": money(row["average_claim_cost"], currency),
    }


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    owners=OWNERS,
    ins={"model_in_force": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping())},
    kinds={"pandas", "parquet"},
    metadata={"dagster/column_schema": _declared_schema(FORECAST_COLUMN_DESCRIPTIONS, _forecast_dtype)},
    description=(
        "The day's decisions and the claims they imply: expected claims among accepted applicants (Σp) with "
        "a 95% interval (Poisson-binomial, and the model's own calibration uncertainty where it matters), the "
        "reserve at the average claim cost, and the same before filtering."
    ),
)
@names_outages
def reserve_forecast(
    context: dg.AssetExecutionContext,
    config: ReserveConfig,
    application_scores: dict[str, pd.DataFrame],
    model_in_force: dict[str, dict],
) -> dict[str, pd.DataFrame]:
    """One row per day: decision counts, expected claims and reserve, accepted versus everyone; the interval
    carries the model's own calibration uncertainty beside the Bernoulli noise."""
    currency = config.currency
    level_sd = {
        month: calibration_level_sd(record.get("model_uri")) for month, record in model_in_force.items()
    }
    cost = {
        month: config.average_claim_cost or DecisionPolicy.from_dict(record["policy"]).costs.claim_cost
        for month, record in model_in_force.items()
    }
    rows = {
        day: _forecast_row(day, scores, cost[month_key(day)], currency, level_sd.get(month_key(day), 0.0))
        for day, scores in application_scores.items()
    }
    for day, row in rows.items():
        # Each day's own forecast on its own partition, also in a single-run backfill.
        context.add_asset_metadata(forecast_metadata(row), partition_key=day)
    if len(rows) > 1:
        # Totals over the run's days: Dagster copies them onto every partition, so named as the run's.
        accepted = sum(r["accepted_reserve"] for r in rows.values())
        everyone = sum(r["all_reserve"] for r in rows.values())
        context.add_output_metadata(
            {
                "run_days": len(rows),
                "run_expected_claims": f"{sum(r['accepted_expected_claims'] for r in rows.values()):,.1f}",
                "run_reserve": money(accepted, currency),
                "run_reserve_saved_by_filtering": money(everyone - accepted, currency),
            }
        )
    return {day: pd.DataFrame([row]) for day, row in rows.items()}
