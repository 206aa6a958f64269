"""Rolling the champion back: withdraw the champion of the latest decision and restore the one before it.

A rollback is a new decision for the LATEST decided month, made by the `rollback_champion` job with a
reason and a requester in its run config; the chain (and everything that reads it: the next month's
decision, the model in force) sees it. Nothing is re-judged.
"""

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from claims_platform.core.months import shift_month_key
from claims_platform.core.partitions import monthly_partitions
from claims_platform.core.settings import LANE_TAG, MONTHLY_LANE

ROLLBACK_TAG = "claims/action"
APPLICATION_SCORES = dg.AssetKey("application_scores")


class RollbackRequest(dg.Config):
    """Withdraw the current champion and restore the one before it."""

    reason: str = Field(min_length=3, description="Why the champion is withdrawn (audited).")
    requested_by: str = Field(min_length=1, description="Who asks for it (audited).")


# A rollback is a new decision for the LATEST decided month: it withdraws that decision's champion
# and restores the one before it, so the chain (and everything that reads it: the next month's
# decision, the model in force) sees it. Its run config must carry the reason and the requester:
#   ops: {champion_decision: {config: {rollback: {reason: "...", requested_by: "..."}}}}
rollback_champion = dg.define_asset_job(
    "rollback_champion",
    selection=dg.AssetSelection.assets("champion_decision"),
    partitions_def=monthly_partitions,
    tags={ROLLBACK_TAG: "rollback", LANE_TAG: MONTHLY_LANE},
    description=(
        "Withdraw the current champion and restore the one before it (one step back per run). Launch it for the "
        "latest decided month with `rollback: {reason, requested_by}` in the config of champion_decision."
    ),
)


def days_scored_by(instance: dg.DagsterInstance, version: int, since_month: str) -> list[str]:
    """Days whose latest scores were made by ``version`` (from each day's own materialization)."""
    first = date.fromisoformat(shift_month_key(since_month, 1))
    days = pd.date_range(first, datetime.now(UTC).date(), freq="D").strftime("%Y-%m-%d").tolist()
    if not days:
        return []
    latest: dict[str, Any] = {}
    cursor = None
    while True:  # newest first, a page at a time (the event log serves at most 10,000 records per call)
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=APPLICATION_SCORES, asset_partitions=days),
            limit=5000,
            cursor=cursor,
        )
        for record in page.records:
            latest.setdefault(
                record.partition_key, record.asset_materialization.metadata.get("model_version")
            )
        if not page.has_more:
            break
        cursor = page.cursor
    return sorted(day for day, v in latest.items() if v is not None and int(v.value) == version)


def rolled_back(
    recorded: dict[str, Any] | None,
    request: RollbackRequest,
    *,
    month: str,
    latest_decided: str,
    scored_by: Callable[[int, str], list[str]],
    launched_by: str,
    run_id: str,
    now: str,
) -> dict[str, Any]:
    """The latest decision (``recorded``, of ``month``) with its champion withdrawn and the one before it
    restored, nothing re-judged; ``scored_by(version, since_month)`` lists the days the withdrawn one scored."""
    from claims_platform.models.champion import ChainState, RollbackRefused, roll_back

    if recorded is None or latest_decided > month:
        raise dg.Failure(
            f"Roll back the latest decision ({latest_decided[:7]}), not {month[:7]}: a rollback withdraws the champion "
            f"of the decision in force. Launch `rollback_champion` for partition {latest_decided}."
        )
    state = ChainState.from_dict(recorded["state"])
    withdrawn = state.champion
    try:
        state, withdrawal = roll_back(
            state, reason=request.reason, requested_by=request.requested_by, month=month, at=now
        )
    except RollbackRefused as refused:
        raise dg.Failure(str(refused)) from refused
    scored = scored_by(withdrawal.version, withdrawn.promoted_in or month)
    rollback = {
        **asdict(withdrawal),
        "days_scored_by_withdrawn": len(scored),
        "first_day_scored": scored[0] if scored else None,
        "last_day_scored": scored[-1] if scored else None,
    }
    champion, previous_champion = state.champion, state.previous_champion
    return {
        **recorded,
        "outcome": "rolled back",
        "reason": f"v{withdrawal.version} withdrawn, v{withdrawal.restored} restored: {request.reason}",
        "champion": asdict(champion),
        "previous_champion": previous_champion.version if previous_champion else None,
        "state": state.as_dict(),
        "rollbacks": [*recorded.get("rollbacks", []), rollback],
        "launched_by": launched_by,
        "dagster_run_id": run_id,
        "decided_at": now,
    }
