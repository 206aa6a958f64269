"""End to end on embedded defaults: the champion chain from the platform's first month, scoring, rollback.

One world for the module (the tests run in file order and build on each other, as the months do):
January–July 2025 simulated and ingested; the monthly training run for every month from January.
January and February cannot train (too few labelled months): their decisions say "no model".
March's candidate is the first champion; April's and May's are promoted (an eager margin, so the
lineage grows); June's decision applies a gate no model can pass: "ineligible, champion kept".
"""

import gzip
import json
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from claims_platform.core.policy import DECISIONS, DecisionPolicy
from claims_platform.models.registry import CHAMPION, PREVIOUS_CHAMPION
from claims_platform_tests.platform_world import EAGER_PROMOTION, QUIET, SMALL_BUDGET, PlatformWorld
from claims_platform_tests.webhook import serve_webhook

pytestmark = (
    pytest.mark.slow
)  # whole months trained and decided through Dagster: `make test`, not `make test-fast`

MONTHS = ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01"]
STRICT_GATE = {"min_auc": 0.9999}


@pytest.fixture(scope="module")
def webhook():
    with serve_webhook() as hook:
        yield hook


@pytest.fixture(scope="module")
def world(tmp_path_factory, webhook) -> PlatformWorld:
    world = PlatformWorld(tmp_path_factory.mktemp("platform"), webhook_url=webhook.url)
    world.simulate(date(2025, 1, 1), date(2025, 7, 5))
    assert world.run_range("daily_ingestion", "2025-01-01", "2025-07-05").success
    world.runs = {month: world.train(month, decision=EAGER_PROMOTION) for month in MONTHS}
    world.alerts_before_june = len(webhook.received)
    world.runs["2025-06-01"] = world.train("2025-06-01", decision=STRICT_GATE)
    assert all(run.success for run in world.runs.values())
    return world


def _decision(result) -> dict:
    return result.output_for_node("champion_decision")


def _in_force(world, month: str) -> dict:
    return world.materialize_in_force(month, month).output_for_node("model_in_force")[month]


def test_the_chain_decides_every_month_from_the_first(world):
    outcomes = {m[:7]: _decision(world.runs[m])["outcome"] for m in sorted(world.runs)}
    assert outcomes == {
        "2025-01": "no model",
        "2025-02": "no model",
        "2025-03": "first champion",
        "2025-04": "promoted",
        "2025-05": "promoted",
        "2025-06": "ineligible",
    }
    february = _decision(world.runs["2025-02-01"])
    assert february["champion"] is None and "training failed" in february["reason"]
    assert "at least 2" in world.runs["2025-02-01"].output_for_node("candidate_model")["failure"]
    # Each decision starts from the one before: May's incumbent was April's champion.
    may = _decision(world.runs["2025-05-01"])
    assert may["incumbent"]["version"] == _decision(world.runs["2025-04-01"])["champion"]["version"]
    assert [ref["version"] for ref in may["state"]["lineage"]] == [1, 2, 3]
    # Candidate and incumbent judged on the same holdout at the one decision policy, with an interval.
    comparison = may["comparison"]
    assert comparison["rows"] == may["holdout"]["rows"] > 1000
    assert comparison["low"] <= comparison["difference"] <= comparison["high"]
    assert comparison["metric"] == "value per application" and may["kappa_comparison"]["metric"] == "kappa"
    # How the features' ranking moved from the incumbent's: both ranked by mean |TreeSHAP| on their holdouts.
    moves = may["importance"]
    assert moves["method"] == moves["incumbent_method"] and moves["method"].startswith("mean |TreeSHAP|")
    assert [m["rank"] for m in moves["top"]] == list(range(1, 11))
    assert all(m["incumbent_rank"] is not None for m in moves["top"][:3])
    assert (
        may["policy"] == DecisionPolicy().as_dict()
    )  # the thresholds of least expected cost, with their costs
    assert (
        world.registry.alias_version(CHAMPION) == 3 and world.registry.alias_version(PREVIOUS_CHAMPION) == 2
    )


def test_the_first_model_is_tracked_in_mlflow_with_its_lineage(world):
    candidate = world.runs["2025-03-01"].output_for_node("candidate_model")
    assert candidate["version"] == 1 and candidate["holdout_month"] == "2025-02"
    assert candidate["holdout_metrics"]["roc_auc"] > 0.9 and candidate["gate"]["passed"]
    # gender is excluded from the model, and reported by group on the holdout with the monitored columns.
    groups = {(g["column"], g["group"]) for g in candidate["fairness"]["groups"]}
    assert {("gender", "0"), ("gender", "1"), ("age", "18–34"), ("location", "A")} <= groups
    checks = world.runs["2025-03-01"].get_asset_check_evaluations()
    assert [c.passed for c in checks if c.check_name == "fairness_within_tolerance"] == [True]
    # Its model card, in MLflow with the version's files: what was measured, and the decision that judged it.
    from claims_platform.models.cards import read_model_card

    card = read_model_card(world.registry, 1)
    assert (
        "## Holdout performance" in card
        and "first champion" in card.split("## Comparison with the champion")[1]
    )
    assert "<img" in read_model_card(world.registry, 1, as_html=True)
    run = world.registry.client().get_run(candidate["mlflow_run_id"])
    assert run.data.tags["dagster_partition"] == "2025-03-01"
    assert run.data.tags["mlflow.runName"] == "claims_model 2025-03"
    assert run.data.tags["training_set_label_cutoff"] == "2025-04-01T00:00:00"
    assert run.info.status == "FINISHED"
    # Later months warm-start from the incumbent's hyperparameters.
    april = world.runs["2025-04-01"].output_for_node("candidate_model")
    assert april["warm_start"] == {"from_version": 1, "used": True}
    failed = world.runs["2025-01-01"].output_for_node("candidate_model")
    assert (
        world.registry.client()
        .search_runs([run.info.experiment_id], filter_string="tags.dagster_partition = '2025-01-01'")[0]
        .info.status
        == "FAILED"
        and failed["status"] == "failed"
    )


def test_an_ineligible_candidate_keeps_the_champion_and_next_month_still_scores(world, webhook):
    june = _decision(world.runs["2025-06-01"])
    assert june["outcome"] == "ineligible" and june["champion"]["version"] == 3
    assert "holdout AUC" in june["reason"] and "champion v3 kept" in june["reason"]
    # One alert for June's decision, at warning level.
    june_alerts = webhook.received[world.alerts_before_june :]
    assert [(a["level"], a["title"]) for a in june_alerts] == [
        ("warning", "Champion decision 2025-06: ineligible")
    ]
    assert _in_force(world, "2025-07-01")["version"] == 3
    result = world.run_range("nightly_scoring", "2025-07-01", "2025-07-03")
    assert result.success
    assert set(result.output_for_node("application_scores")["2025-07-02"]["model_version"]) == {3}


def test_a_month_without_a_model_fails_scoring_with_what_to_do(world):
    assert _in_force(world, "2025-02-01")["version"] is None
    result = world.run_range("nightly_scoring", "2025-02-10", "2025-02-10", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.message
    assert "No model in force for 2025-02" in message and "run `monthly_training`" in message


def test_a_day_is_scored_by_the_model_in_force_in_its_month_across_a_month_boundary(world):
    world.materialize_in_force("2025-04-01", "2025-05-01")
    result = world.run_range("nightly_scoring", "2025-04-29", "2025-05-02")
    assert result.success
    scores = result.output_for_node("application_scores")
    # April's days: the model chosen in March's partition, even though April's decision came later.
    assert set(scores["2025-04-30"]["model_version"]) == {1}
    assert set(scores["2025-05-01"]["model_version"]) == {2}
    valid = result.output_for_node("ingest_applications", "applications")
    for day, frame in scores.items():
        assert len(frame) == len(valid[day])
        assert frame["claim_probability"].between(0, 1).all()
        assert set(frame["decision"]) <= set(DECISIONS)
    # Each day's page shows its own figures, also in a single-run backfill.
    for materialization in result.asset_materializations_for_node("application_scores"):
        day = materialization.partition
        assert materialization.metadata["rows_scored"].value == len(scores[day])
        assert materialization.metadata["model_version"].value == (1 if day < "2025-05-01" else 2)
    again = world.run_range("nightly_scoring", "2025-04-30", "2025-04-30").output_for_node(
        "application_scores"
    )
    pd.testing.assert_frame_equal(again["2025-04-30"], scores["2025-04-30"])

    forecast = result.output_for_node("reserve_forecast")["2025-04-30"].iloc[0]
    day = scores["2025-04-30"]
    accepted = day.loc[day["decision"] == "accept", "claim_probability"]
    assert forecast["accepted_expected_claims"] == pytest.approx(accepted.sum())
    assert (
        forecast["accepted_claims_low"]
        <= forecast["accepted_expected_claims"]
        <= forecast["accepted_claims_high"]
    )
    assert forecast["accept_count"] + forecast["refer_count"] + forecast["decline_count"] == len(day)


def test_redeciding_an_old_month_reproduces_it_and_leaves_the_aliases(world):
    first = _decision(world.runs["2025-04-01"])
    # No config: the month is re-judged with the rules recorded with it (the eager margin).
    again = world.decide("2025-04-01")
    assert again.success
    redone = _decision(again)
    assert redone["digest"] == first["digest"]
    for key in (
        "outcome",
        "reason",
        "champion",
        "state",
        "comparison",
        "candidate",
        "incumbent",
        "rules",
        "policy",
    ):
        assert redone[key] == first[key], key
    assert redone["aliases"] == "not moved: 2025-06 is the latest decision"
    assert world.registry.alias_version(CHAMPION) == 3


def test_record_only_changes_neither_the_decision_nor_the_aliases_nor_the_model_in_force(world):
    may = _decision(world.runs["2025-05-01"])
    result = world.decide("2025-05-01", promote=False)
    decision = _decision(result)
    # May's real decision (a promotion) stays as it was; what a re-judging says is added beside it.
    assert decision["record_only"]["outcome"] == "record-only: promoted"
    for key in ("outcome", "reason", "champion", "state", "policy", "digest"):
        assert decision[key] == may[key], key
    assert decision["aliases"].startswith("not moved")
    assert world.registry.alias_version(CHAMPION) == 3
    assert _in_force(world, "2025-06-01")["version"] == 3


def test_rollback_walks_back_one_decision_at_a_time_audited_with_the_requester(world, webhook):
    refused = world.decide("2025-06-01", job="rollback_champion")
    assert not refused.success  # no reason, no requester: refused before anything moves
    assert world.registry.alias_version(CHAMPION) == 3
    not_latest = world.decide(
        "2025-05-01", job="rollback_champion", rollback={"reason": "x" * 5, "requested_by": "ann"}
    )
    assert not not_latest.success

    # Only the rollback in the config: nothing is re-judged (June's strict gate is not needed again).
    first = world.decide(
        "2025-06-01", job="rollback_champion", rollback={"reason": "calibration drift", "requested_by": "ann"}
    )
    decision = _decision(first)
    assert decision["outcome"] == "rolled back" and decision["champion"]["version"] == 2
    assert decision["launched_by"] == "requested by ann"
    rollback = decision["rollbacks"][-1]
    assert (rollback["version"], rollback["restored"], rollback["requested_by"]) == (3, 2, "ann")
    # v3 scored July 1–3 (an earlier test): said, not silently re-scored.
    assert (rollback["days_scored_by_withdrawn"], rollback["first_day_scored"]) == (3, "2025-07-01")
    assert webhook.received[-1]["title"] == "Champion rolled back: v3 withdrawn, v2 restored"
    assert (world.registry.alias_version(CHAMPION), world.registry.alias_version(PREVIOUS_CHAMPION)) == (2, 1)
    assert _in_force(world, "2025-07-01")["version"] == 2

    second = world.decide(
        "2025-06-01", job="rollback_champion", rollback={"reason": "still wrong", "requested_by": "bob"}
    )
    decision = _decision(second)
    assert decision["champion"]["version"] == 1
    assert [(r["version"], r["requested_by"]) for r in decision["rollbacks"]] == [(3, "ann"), (2, "bob")]
    assert [w["version"] for w in decision["state"]["withdrawn"]] == [3, 2]
    assert (
        world.registry.alias_version(CHAMPION) == 1
        and world.registry.alias_version(PREVIOUS_CHAMPION) is None
    )
    assert _in_force(world, "2025-07-01")["version"] == 1
    scored = world.run_range("nightly_scoring", "2025-07-04", "2025-07-04").output_for_node(
        "application_scores"
    )
    assert set(scored["2025-07-04"]["model_version"]) == {1}
    assert np.isfinite(scored["2025-07-04"]["claim_probability"]).all()

    # Re-deciding June (its recorded strict gate) keeps both rollbacks; a third has nothing left to restore.
    redecided = _decision(world.decide("2025-06-01"))
    assert redecided["champion"]["version"] == 1 and redecided["outcome"] == "rolled back"
    assert redecided["digest"] == decision["digest"]
    third = world.decide(
        "2025-06-01", job="rollback_champion", rollback={"reason": "again", "requested_by": "cy"}
    )
    assert not third.success and world.registry.alias_version(CHAMPION) == 1


# ------------------------------------------------------------------------------------------ monitoring
# May is scored by April's decision; its outcomes are known from 2025-06-30 (31 May + 30 days).


def _reports_after(world, nightly_result):
    """The `drift_reports` run `drift_report_sensor` requests after a successful nightly run, executed."""
    from claims_platform.assembly.monitoring_sensors import report_request

    request = report_request(world.instance.get_run_by_id(nightly_result.run_id))
    job = world.defs.resolve_job_def("drift_reports")
    return job.execute_in_process(
        instance=world.instance,
        tags=request.tags,
        partition_key=request.partition_key,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )


def test_may_is_scored_and_reported_day_by_day_without_drift(world):
    import json
    from html.parser import HTMLParser

    from evidently.core.report import Snapshot

    world.materialize_in_force("2025-05-01", "2025-05-01")
    result = world.run_range("nightly_scoring", "2025-05-01", "2025-05-31")
    assert result.success
    # The decision, each day's own figures on its own partition, in a one-run backfill.
    events = world.instance.fetch_materializations(dg.AssetKey("applications_drift"), limit=200).records
    by_day = {
        r.partition_key: r.asset_materialization.metadata
        for r in events
        if r.partition_key.startswith("2025-05")
    }
    assert len(by_day) == 31 and not any(meta["drifted"].value for meta in by_day.values())
    rows = {day: meta["rows"].value for day, meta in by_day.items()}
    assert len(set(rows.values())) > 5  # the days' own row counts, not one total
    assert 0.3 < by_day["2025-05-07"]["estimated_kappa"].value < 1
    [check] = [
        c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "applications_drift_within_threshold"
    ]
    assert check.passed

    # The Evidently reports of the same days follow in their own run, as the sensor requests it.
    reports = _reports_after(world, result)
    assert reports.success
    storage = world.home / "storage" / "applications_drift_report"
    for day in ("2025-05-01", "2025-05-31"):
        folder = storage / day
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["day"] == day and summary["drifted"] is False and summary["drifted_columns"] == {}
        parser = HTMLParser()
        parser.feed((folder / "report.html").read_text())  # parses as HTML
        assert "<html" in (folder / "report.html").read_text()[:2000].lower()
        snapshot = Snapshot.loads(gzip.decompress((folder / "snapshot.json.gz").read_bytes()).decode())
        assert snapshot.metric_results  # Evidently reads its own snapshot back
        # A day's report is small: Evidently's script bundle is stored once, beside the days' folders.
        assert sum((folder / name).stat().st_size for name in ("report.html", "snapshot.json.gz")) < 300_000
        assert [p.suffix for p in sorted((storage / "_shared").iterdir())] == [".js", ".woff2"]
    events = world.instance.fetch_materializations(
        dg.AssetKey("applications_drift_report"), limit=200
    ).records
    report_meta = {
        r.partition_key: r.asset_materialization.metadata
        for r in events
        if r.partition_key.startswith("2025-05")
    }
    assert len(report_meta) == 31
    assert report_meta["2025-05-07"]["report"].value.endswith(
        "applications_drift_report/2025-05-07/report.html"
    )
    assert (
        report_meta["2025-05-07"]["evidently_drifted_columns"].value == 0
    )  # Evidently agrees with the decision
    # Evidently's workspace holds one snapshot per day (a day re-reported replaces its snapshot).
    index = json.loads((world.home / "evidently" / "claims_platform_index.json").read_text())
    assert {d for d in index["days"] if d.startswith("2025-05")} == {f"2025-05-{d:02d}" for d in range(1, 32)}
    files = {f.stem for f in (world.home / "evidently" / index["project_id"] / "snapshots").glob("*.json")}
    assert files == set(index["days"].values())


def test_model_performance_refuses_before_the_outcomes_are_known(world, monkeypatch):
    from datetime import UTC, datetime

    import claims_platform.monitoring.performance_assets as monitoring

    monkeypatch.setattr(monitoring, "now", lambda: datetime(2025, 6, 15, 12, tzinfo=UTC))
    result = world.defs.resolve_job_def("measure_model_performance").execute_in_process(
        instance=world.instance,
        partition_key="2025-05-01",
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "outcomes of 2025-05 are not all known yet" in failure and "2025-06-30" in failure


def test_model_performance_measures_may_against_its_estimate_and_backtests_the_reserve(world):
    import json

    result = world.defs.resolve_job_def("measure_model_performance").execute_in_process(
        instance=world.instance,
        partition_key="2025-05-01",
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    assert result.success
    summary = json.loads(
        (world.home / "storage" / "model_performance" / "2025-05-01" / "summary.json").read_text()
    )
    assert summary["scored"] == summary["with_outcome"] > 30_000
    realised, estimated = summary["realised"]["kappa"], summary["estimated"]["estimated_kappa"]
    assert (
        summary["estimated"]["estimated_kappa_low"] - 0.02
        <= realised
        <= summary["estimated"]["estimated_kappa_high"] + 0.02
    )
    assert abs(realised - estimated) < 0.05
    backtest = summary["backtest"]
    assert backtest["backtest_days"] == 31 and backtest["backtest_coverage"] >= 0.8
    assert 0.85 <= backtest["backtest_actual_to_expected"] <= 1.15
    assert summary["passed"] and summary["holdout_kappa"] > 0.3
    assert (
        "<html"
        in (world.home / "storage" / "model_performance" / "2025-05-01" / "report.html")
        .read_text()[:2000]
        .lower()
    )
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "performance_within_bounds"]
    assert check.passed
    # Outcomes by protected group once they are known: gender's groups too, though the model does not use it.
    fairness = summary["fairness"]
    by_group = {(g["column"], g["group"]): g for g in fairness["groups"]}
    assert (
        sum(g["applications"] for (column, _), g in by_group.items() if column == "gender")
        == summary["with_outcome"]
    )
    assert (
        by_group[("gender", "1")]["claim_low"]
        <= by_group[("gender", "1")]["claim_rate"]
        <= by_group[("gender", "1")]["claim_high"]
    )
    [fair] = [c for c in result.get_asset_check_evaluations() if c.check_name == "fairness_within_tolerance"]
    assert fair.passed and fairness["flags"] == []


def _sensor_tick(world, cursor=None):
    from claims_platform.assembly.monitoring_sensors import monitoring_alert_sensor

    context = dg.build_sensor_context(
        instance=world.instance, cursor=cursor, resources={"alerts": world.resources["alerts"]}
    )
    return monitoring_alert_sensor(context)


def _retrain(world, request, **candidate_config):
    """The monthly training run a retrain request asks for, with the small test budget."""
    return world.defs.resolve_job_def("monthly_training").execute_in_process(
        instance=world.instance,
        partition_key=request.partition_key,
        tags=request.tags,
        run_config={
            **QUIET,
            "ops": {
                **request.run_config["ops"],
                "candidate_model": {"config": {**SMALL_BUDGET, **candidate_config}},
            },
        },
    )


def test_drift_the_model_barely_uses_warns_and_one_that_moves_predictions_retrains_once_per_episode(
    world, webhook
):
    from claims_platform.source.scenarios import get_scenario

    # Income rises by 35% from 6 July: July is scored by the model in force then (v1 after the rollbacks).
    shift = get_scenario("income_shift", date(2025, 7, 6))
    world.simulate(date(2025, 7, 6), date(2025, 7, 10), scenario=shift)
    assert world.run_range("daily_ingestion", "2025-07-06", "2025-07-10").success
    nightly = world.run_range("nightly_scoring", "2025-07-06", "2025-07-10")
    assert nightly.success
    reports = _reports_after(world, nightly)
    events = world.instance.fetch_materializations(dg.AssetKey("applications_drift_report"), limit=5).records
    assert {
        r.partition_key: r.asset_materialization.metadata["evidently_drifted_columns"].value for r in events
    } == {
        f"2025-07-{d:02d}": 2 for d in range(6, 11)
    }  # income and income level, by Evidently's own count too
    assert reports.success
    day = (
        world.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("applications_drift"), asset_partitions=["2025-07-08"]
            ),
            limit=1,
        )
        .records[0]
        .asset_materialization.metadata
    )
    assert day["drift_level"].value == "warning"  # income carries a few percent of the model's gain
    assert set(day["drifted_column_importance"].value) == {"income", "income level"}
    # Weighed by the importance the model in force (v1, March's candidate) recorded: mean |TreeSHAP|.
    v1 = world.runs["2025-03-01"].output_for_node("candidate_model")["importance"]
    assert v1["method"].startswith("mean |TreeSHAP|")
    assert day["drifted_column_importance"].value["income"] == pytest.approx(v1["shares"]["income"], abs=5e-4)
    # Income is a column the model barely uses: one alert at warning level, no retrain.
    first = _sensor_tick(world)
    assert first.run_requests == []
    assert (
        webhook.received[-1]["title"]
        == "Applications drift the model barely uses: an episode from 2025-07-06"
    )
    assert webhook.received[-1]["level"] == "warning"
    alerts = len(webhook.received)
    # The next tick, and the episode going on: nothing new.
    assert _sensor_tick(world, first.cursor).run_requests == [] and len(webhook.received) == alerts

    # One normal day, then riskier applicants: the predictions drift. The same episode (it ends only after a
    # week of quiet days) comes to matter: ONE upgrade of its alert, with ONE retrain, and nothing after.
    world.simulate(date(2025, 7, 11), date(2025, 7, 11))
    world.simulate(
        date(2025, 7, 12), date(2025, 7, 14), scenario=get_scenario("risk_shift", date(2025, 7, 12))
    )
    assert world.run_range("daily_ingestion", "2025-07-11", "2025-07-14").success
    assert world.run_range("nightly_scoring", "2025-07-11", "2025-07-14").success
    second = _sensor_tick(world, first.cursor)
    [request] = second.run_requests
    assert request.partition_key == "2025-06-01" and request.run_key.startswith("retrain-2025-06-202507")
    assert request.run_config["ops"]["training_set"]["config"]["label_cutoff"] <= "2025-07-15T00:00:00+00:00"
    assert (
        webhook.received[-1]["title"]
        == "Applications drift that can move decisions: an episode from 2025-07-06"
    )
    assert webhook.received[-1]["level"] == "error" and len(webhook.received) == alerts + 1
    assert "predicted probabilities drifted" in json.dumps(webhook.received[-1])
    assert _sensor_tick(world, second.cursor).run_requests == [] and len(webhook.received) == alerts + 1

    # The off-cycle retrain runs like any monthly training; its label cutoff is recorded.
    retrain = _retrain(world, request)
    assert retrain.success
    cut = (
        world.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("training_set"), asset_partitions=["2025-06-01"]),
            limit=1,
        )
        .records[0]
        .asset_materialization.metadata
    )
    assert cut["label_cutoff_source"].value == "run config (off-cycle)"
    assert retrain.output_for_node("champion_decision")["training_month"] == "2025-06"
    world.retrain = (request, retrain)


def test_a_retrain_on_an_unchanged_training_set_reuses_the_months_candidate(world):
    """Nothing newly labelled since the month's last training: its model again, no copy registered."""
    request, retrain = world.retrain
    before = retrain.output_for_node("candidate_model")
    client = world.registry.client()
    versions = len(client.search_model_versions(f"name = '{world.registry.model_name}'"))

    again = _retrain(world, request)
    assert again.success
    reused = again.output_for_node("candidate_model")
    assert reused["version"] == before["version"] and reused["mlflow_run_id"] == before["mlflow_run_id"]
    assert (
        reused["holdout_metrics"] == before["holdout_metrics"]
        and reused["training_key"] == before["training_key"]
    )
    assert reused["reused"]["by_dagster_run_id"] == again.run_id
    assert reused["reused"]["trained_by_dagster_run_id"] == before["trained_by_dagster_run_id"]
    assert len(client.search_model_versions(f"name = '{world.registry.model_name}'")) == versions
    # The decision judges the same model as before, with the same result.
    assert (
        again.output_for_node("champion_decision")["outcome"]
        == retrain.output_for_node("champion_decision")["outcome"]
    )
    [event] = [
        e for e in again.get_asset_materialization_events() if e.asset_key == dg.AssetKey("candidate_model")
    ]
    metadata = event.materialization.metadata
    assert metadata["reused"].value.startswith(f"v{before['version']}: training set ")
    assert metadata["model_version"].value == before["version"] and "plot_roc_curve" in metadata
    [check] = [c for c in again.get_asset_check_evaluations() if c.check_name == "candidate_quality"]
    assert check.passed and check.description.endswith(f"(v{before['version']} reused)")
    # This Dagster run's own MLflow run says that nothing was trained, and which version it stands for.
    [mlflow_run] = client.search_runs(
        [client.get_run(before["mlflow_run_id"]).info.experiment_id],
        filter_string=f"tags.dagster_run_id = '{again.run_id}'",
    )
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.data.tags["reused_model_version"] == str(
        before["version"]
    )
    assert "nothing trained" in mlflow_run.data.tags["mlflow.note.content"]

    # Told not to reuse, the same month trains and registers a new version: the same model, by determinism.
    forced = _retrain(world, request, reuse_unchanged=False)
    assert forced.success
    trained = forced.output_for_node("candidate_model")
    assert trained["version"] == versions + 1 and "reused" not in trained
    assert trained["holdout_metrics"] == before["holdout_metrics"] and trained["params"] == before["params"]

    # Another budget is another model: trained, not reused.
    other = _retrain(world, request, max_boost_rounds=120)
    assert other.success and other.output_for_node("candidate_model")["version"] == versions + 2


def test_referrals_and_declines_carry_the_reasons_the_registered_model_gives(world):
    import mlflow

    from claims_platform.core import schema
    from claims_platform.training import runtime

    result = world.run_range("nightly_scoring", "2025-07-02", "2025-07-02")
    scores = result.output_for_node("application_scores")["2025-07-02"]
    applications = result.output_for_node("ingest_applications", "applications")["2025-07-02"]
    adverse = scores[scores["decision"] != "accept"]
    assert len(adverse) > 10
    assert (
        adverse[runtime.REASON_TEXT].notna().all() and adverse[runtime.REASON_FEATURE.format(1)].notna().all()
    )
    assert scores.loc[scores["decision"] == "accept", runtime.REASON_TEXT].isna().all()
    # The same rows through the registered model (the code `mlflow models serve` runs), asked for reasons.
    mlflow.set_tracking_uri(world.tracking_uri)
    model = mlflow.pyfunc.load_model(_in_force(world, "2025-07-01")["model_uri"])
    rows = applications.set_index(schema.APPLICATION_ID).loc[
        adverse[schema.APPLICATION_ID], list(schema.FEATURES)
    ]
    served = model.predict(rows.reset_index(drop=True).astype(object), params={"reasons": True})
    assert served[runtime.REASON_TEXT].tolist() == adverse[runtime.REASON_TEXT].tolist()
    np.testing.assert_allclose(
        served[runtime.REASON_CONTRIBUTION.format(1)],
        adverse[runtime.REASON_CONTRIBUTION.format(1)],
        rtol=1e-12,
    )
