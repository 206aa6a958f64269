"""A bad run config is refused when the run is planned — before it exists — naming the op, field and rule."""

import dagster as dg
import pytest
from dagster._core.execution.api import create_execution_plan

from claims_platform.assembly.config_validation import config_problems
from claims_platform.definitions import defs
from claims_platform.ingestion.assets import IngestionConfig


@pytest.mark.parametrize(
    ("job", "op", "config", "message"),
    [
        (
            "nightly_scoring",
            "ingest_applications",
            {"min_rows": 500, "max_rows": 100},
            "min_rows (500) must not be above max_rows (100)",
        ),
        (
            "nightly_scoring",
            "ingest_applications",
            {"max_rejected_share": 1.5},
            "max_rejected_share: Input should be less than or equal to 1",
        ),
        (
            "nightly_scoring",
            "reserve_forecast",
            {"average_claim_cost": -5.0},
            "average_claim_cost: Input should be greater than 0",
        ),
        (
            "monthly_training",
            "training_set",
            {"min_month_coverage": 0.0},
            "min_month_coverage: Input should be greater than 0",
        ),
        (
            "monthly_training",
            "training_set",
            {"label_cutoff": "next tuesday"},
            "label_cutoff: not an ISO instant",
        ),
        ("monthly_training", "champion_decision", {"review_accuracy": 0.3}, "review_accuracy"),
    ],
)
def test_a_bad_value_is_refused_when_the_run_is_planned(job, op, config, message):
    job_def = defs.resolve_job_def(job)
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        create_execution_plan(job_def, run_config={"ops": {op: {"config": config}}})
    assert message in str(refused.value) and f"run config of {op} refused" in str(refused.value)


def test_a_good_config_plans_and_problems_are_listed_one_per_field():
    create_execution_plan(
        defs.resolve_job_def("nightly_scoring"),
        run_config={"ops": {"ingest_applications": {"config": {"min_rows": 10, "max_rows": 5000}}}},
    )
    problems = config_problems(IngestionConfig, {"min_share_of_typical": 2.0, "max_rows": 0})
    assert [p.split(":")[0] for p in problems] == ["min_share_of_typical", "max_rows"]
