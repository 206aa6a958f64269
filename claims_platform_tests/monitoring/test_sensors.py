"""Drift episodes, one alert and one retrain per episode, and months measured once their outcomes are known (pure)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from claims_platform.monitoring.sensors import (
    drift_episodes,
    monitoring_requests,
    months_due,
    retrain_request,
)


def _flags(start: str, pattern: str) -> dict[str, bool]:
    """'.' a normal day, 'D' a drifted day, ' ' a day not reported."""
    first = date.fromisoformat(start)
    return {(first + timedelta(days=i)).isoformat(): c == "D" for i, c in enumerate(pattern) if c != " "}


def test_an_episode_alerts_on_its_kth_consecutive_drifted_day():
    [episode] = drift_episodes(_flags("2026-03-01", "..DDDDD.."), k=3)
    assert (episode.start, episode.alert_day, len(episode.days)) == ("2026-03-03", "2026-03-05", 5)
    assert drift_episodes(_flags("2026-03-01", "DD.DD.DD"), k=3) == []


def test_a_gap_in_reporting_breaks_a_run_and_a_restart_is_a_new_episode():
    assert drift_episodes(_flags("2026-03-01", "DD DD"), k=3) == []
    episodes = drift_episodes(_flags("2026-03-01", "DDD.DDD"), k=3)
    assert [e.start for e in episodes] == ["2026-03-01", "2026-03-05"]
    with pytest.raises(ValueError):
        drift_episodes({}, k=0)


def test_one_request_per_episode_across_ticks_and_a_second_episode_gets_a_second():
    flags = _flags("2026-03-01", "..DDD")
    raised, cursor = monitoring_requests(flags, {}, {}, k=3)
    [(alert, request)] = raised
    assert request.run_key == "drift-episode-2026-03-03" and request.partition_key == "2026-02-01"
    assert alert.level == "warning" and "2026-03-03" in alert.title
    # The episode goes on: nothing new.
    assert monitoring_requests(_flags("2026-03-01", "..DDDDD"), {}, cursor, k=3)[0] == []
    # It ends and starts again: a new episode.
    again, _ = monitoring_requests(_flags("2026-03-01", "..DDDDD.DDD"), {}, cursor, k=3)
    assert [r.run_key for _, r in again] == ["drift-episode-2026-03-09"]


def test_an_old_episode_found_by_a_backfill_of_history_is_not_news():
    flags = {**_flags("2026-01-01", "DDD"), **_flags("2026-03-01", "....")}
    assert monitoring_requests(flags, {}, {}, k=3)[0] == []


def test_a_failed_performance_check_raises_once():
    measured_at = datetime(2026, 5, 2, 8, tzinfo=UTC).timestamp()
    performance = {"2026-03-01": ({"passed": False, "realised_kappa": 0.61}, measured_at), "2026-02-01": ({"passed": True}, measured_at)}
    raised, cursor = monitoring_requests({}, performance, {}, k=3)
    [(alert, request)] = raised
    assert alert.level == "error" and request.run_key == "performance-2026-03-01" and request.partition_key == "2026-04-01"
    assert monitoring_requests({}, performance, cursor, k=3)[0] == []


def test_a_retrain_uses_the_latest_complete_month_and_outcomes_known_by_the_end_of_the_alert_day():
    request = retrain_request("2026-03-05", "key", "why")
    assert request.partition_key == "2026-02-01"
    assert request.run_config == {"ops": {"training_set": {"config": {"label_cutoff": "2026-03-06T00:00:00+00:00"}}}}
    assert request.tags["claims/off_cycle"] == "true"


def test_a_month_is_due_once_all_its_outcomes_are_known_and_only_once():
    scored = {"2026-01-01", "2026-02-01", "2026-03-01"}
    # February's last outcome is known on 30 March (28 Feb + 30 days).
    assert months_due(date(2026, 3, 29), 30, scored, set()) == ["2026-01-01"]
    assert months_due(date(2026, 3, 30), 30, scored, set()) == ["2026-01-01", "2026-02-01"]
    assert months_due(date(2026, 3, 30), 30, scored, {"2026-01-01"}) == ["2026-02-01"]
