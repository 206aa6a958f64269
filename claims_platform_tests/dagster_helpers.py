"""Helpers for materializing assets in tests the way single-run backfills run them."""

from __future__ import annotations

import dagster as dg

from claims_platform.adapters.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG


def range_tags(first_key: str, last_key: str) -> dict[str, str]:
    """The tags that make one run cover a partition range (what a single-run backfill sets)."""
    return {PARTITION_RANGE_START_TAG: first_key, PARTITION_RANGE_END_TAG: last_key}


def materialize_range(
    assets, first_key: str, last_key: str, *, resources, instance=None, run_config=None, raise_on_error=True
):
    """Materialize ``assets`` over a partition range as ONE run, as a single-run backfill does."""
    return dg.materialize(
        assets,
        resources=resources,
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags=range_tags(first_key, last_key),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def check_results(result) -> dict[str, dg.AssetCheckEvaluation]:
    """The run's asset check evaluations by check name."""
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
