"""Drift episodes as an on-call engineer expects them, one retrain per (month, label cutoff), never a cutoff in the
future, and months measured once their outcomes are known (pure)."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from claims_platform.assembly.monitoring_sensors import monitoring_requests, months_due, retrain_request
from claims_platform.monitoring.episodes import DriftDay, EpisodeRules, drift_episodes, retrain_target
from claims_platform.monitoring.level import DayLevel, LevelRules, level_shifts

RULES = EpisodeRules(alert_days=3, quiet_days=4)
TODAY = date(2026, 3, 25)


def _days(start: str, pattern: str, severity: dict[str, float] | None = None) -> dict[str, DriftDay]:
    """'.' a normal day (severity 0.6, about the median of an i.i.d. day's), 'D' a drifted day (1.5) as an old
    record (whether it matters unknown: taken to), 'M' a drifted day that matters, 'w' one that does not (drift
    the model barely uses), 'n' a near miss (0.95), ' ' a day not reported."""
    shares = {".": 0.6, "D": 1.5, "M": 1.5, "w": 1.5, "n": 0.95, **(severity or {})}
    matters = {"M": True, "w": False}
    first = date.fromisoformat(start)
    return {
        (first + timedelta(days=i)).isoformat(): DriftDay(
            c in "DMw",
            shares[c],
            matters.get(c),
            ("the predicted probabilities drifted",) if c == "M" else (),
        )
        for i, c in enumerate(pattern)
        if c != " "
    }


def test_an_episode_alerts_on_its_kth_consecutive_drifted_day():
    [episode] = drift_episodes(_days("2026-03-01", "..DDDDD...."), RULES)
    assert (episode.start, episode.alert_day, episode.trigger, len(episode.days)) == (
        "2026-03-03",
        "2026-03-05",
        "consecutive",
        5,
    )
    assert episode.ended == "2026-03-11"  # four quiet days after the last drifted one
    assert drift_episodes(_days("2026-03-01", "..........."), RULES) == []


def test_a_quiet_day_inside_a_lasting_drift_does_not_end_it_one_alert_for_the_whole():
    # A drift growing over a month, flagged on most days with a quiet one here and there: ONE episode.
    [episode] = drift_episodes(_days("2026-03-01", "...DDD.DDDD.DD.DDDDD.DDD......"), RULES)
    assert episode.start == "2026-03-04" and episode.alert_day == "2026-03-06" and len(episode.days) == 17
    # Quiet for quiet_days, then drifting again: a second episode.
    episodes = drift_episodes(_days("2026-03-01", "DDD.....DDD"), RULES)
    assert [e.start for e in episodes] == ["2026-03-01", "2026-03-09"]


def test_a_change_sitting_at_the_threshold_is_detected_steadily_by_the_ewma():
    # Days at about the threshold flip between drifted and near misses: never three drifted in a row.
    flipping = "..........DnDnnDnDnDnnDnDnD"
    [episode] = drift_episodes(_days("2026-03-01", flipping), RULES)
    assert episode.trigger == "ewma" and episode.alert_day <= "2026-03-15"  # within five days of the change
    # On normal days with the occasional drifted one the EWMA stays low: no episode.
    assert drift_episodes(_days("2026-03-01", "....D.......D.....D....D..."), RULES) == []
    # One extreme day counts at most as one drifted day.
    assert drift_episodes(_days("2026-03-01", ".....D.....", {"D": 50.0}), RULES) == []


def test_a_gap_in_reporting_is_neither_drift_nor_quiet():
    # The gap breaks the run of drifted days (no 3 in a row) but moves no EWMA: four drifted days of five alert.
    [episode] = drift_episodes(_days("2026-03-01", "DD DD"), RULES)
    assert episode.trigger == "ewma" and episode.alert_day == "2026-03-05"
    assert drift_episodes(_days("2026-03-01", "DD D"), RULES) == []
    # Inside an episode, days not reported do not count as quiet.
    [episode] = drift_episodes(_days("2026-03-01", "DDD     .DD"), RULES)
    assert episode.ended is None and len(episode.days) == 5
    with pytest.raises(ValueError):
        EpisodeRules(alert_days=0)


def test_one_alert_per_episode_across_ticks_and_a_new_episode_gets_a_new_one():
    alerts, requests, cursor = monitoring_requests(_days("2026-03-01", "..DDD"), {}, {}, RULES, TODAY)
    [alert], [request] = alerts, requests
    assert alert.level == "error" and "2026-03-03" in alert.title
    assert request.partition_key == "2026-02-01" and request.run_key == "retrain-2026-02-20260306T0000"
    # The episode goes on through a quiet day: nothing new.
    assert monitoring_requests(_days("2026-03-01", "..DDD.DD"), {}, cursor, RULES, TODAY)[:2] == ([], [])
    # It ends (four quiet days) and drift comes back: a new episode.
    alerts, _, _ = monitoring_requests(_days("2026-03-01", "..DDD....DDD"), {}, cursor, RULES, TODAY)
    assert [a.fields["episode"] for a in alerts] == ["2026-03-10"]


def test_drift_the_model_barely_uses_warns_without_a_retrain_and_is_upgraded_once_when_it_comes_to_matter():
    alerts, requests, cursor = monitoring_requests(_days("2026-03-01", "..www"), {}, {}, RULES, TODAY)
    [alert] = alerts
    assert requests == [] and alert.level == "warning" and "barely uses" in alert.title
    # The same episode goes on: still nothing new.
    assert monitoring_requests(_days("2026-03-01", "..wwww.w"), {}, cursor, RULES, TODAY)[:2] == ([], [])
    # One day whose drift reaches the predictions can be chance: still nothing new.
    assert monitoring_requests(_days("2026-03-01", "..wwww.wM"), {}, cursor, RULES, TODAY)[:2] == ([], [])
    # A second: ONE upgraded alert with ONE retrain, for the same episode.
    alerts, requests, cursor = monitoring_requests(
        _days("2026-03-01", "..wwww.wMwM"), {}, cursor, RULES, TODAY
    )
    [alert], [request] = alerts, requests
    assert (
        alert.level == "error"
        and alert.fields["episode"] == "2026-03-03"
        and alert.fields["matters from"] == "2026-03-11"
    )
    assert "predicted probabilities drifted" in alert.text
    assert request.run_key == "retrain-2026-02-20260312T0000"  # cut at the end of the day it came to matter
    assert monitoring_requests(_days("2026-03-01", "..wwww.wMwMMM"), {}, cursor, RULES, TODAY)[:2] == ([], [])
    # A cursor kept from before drift was weighed had its episodes' retrains asked already: no second one.
    assert monitoring_requests(_days("2026-03-01", "..DDDD"), {}, {"drift": ["2026-03-03"]}, RULES, TODAY)[
        :2
    ] == ([], [])
    # An episode that matters from its start: one alert, with its retrain, at once.
    alerts, requests, _ = monitoring_requests(_days("2026-03-01", "..MwM"), {}, {}, RULES, TODAY)
    assert [a.level for a in alerts] == ["error"] and len(requests) == 1
    [episode] = drift_episodes(_days("2026-03-01", "..MwM"), RULES)
    assert episode.matters_from == "2026-03-05"
    assert (
        drift_episodes(_days("2026-03-01", "..MwM"), EpisodeRules(alert_days=3, matter_days=1))[
            0
        ].matters_from
        == "2026-03-03"
    )


def test_an_alert_whose_first_day_that_matters_is_today_waits_a_day_for_its_level():
    # The third drifted day alerts, and it is the first whose drift reaches the predictions: the morning
    # after it, nothing yet (one such day can be chance)...
    assert monitoring_requests(_days("2026-03-01", "..wwM"), {}, {}, RULES, TODAY)[:2] == ([], [])
    [episode] = drift_episodes(_days("2026-03-01", "..wwM"), RULES)
    assert episode.awaiting and episode.matters_from is None
    # ... and the morning after the next day, ONE alert: an error with its retrain when that day matters too,
    alerts, requests, cursor = monitoring_requests(_days("2026-03-01", "..wwMM"), {}, {}, RULES, TODAY)
    assert [a.level for a in alerts] == ["error"] and len(requests) == 1
    assert monitoring_requests(_days("2026-03-01", "..wwMMM"), {}, cursor, RULES, TODAY)[:2] == ([], [])
    # a warning when it does not (never a warning then an error for the same first days).
    alerts, requests, _ = monitoring_requests(_days("2026-03-01", "..wwM."), {}, {}, RULES, TODAY)
    assert [a.level for a in alerts] == ["warning"] and requests == []
    # An episode that does not reach the predictions on its alert day warns at once.
    assert [a.level for a in monitoring_requests(_days("2026-03-01", "..Mww"), {}, {}, RULES, TODAY)[0]] == [
        "warning"
    ]


def test_an_old_episode_found_by_a_backfill_of_history_is_not_news():
    days = {**_days("2026-01-01", "DDD"), **_days("2026-03-01", "....")}
    assert monitoring_requests(days, {}, {}, RULES, TODAY)[:2] == ([], [])


def test_two_failed_months_ask_for_one_retrain_with_a_cutoff_not_in_the_future():
    measured_at = datetime(2026, 12, 7, 11, tzinfo=UTC).timestamp()
    performance = {
        "2026-09-01": ({"passed": False}, measured_at),
        "2026-10-01": ({"passed": False}, measured_at),
        "2026-08-01": ({"passed": True}, measured_at),
    }
    alerts, requests, cursor = monitoring_requests(
        {}, performance, {}, RULES, date(2026, 12, 7), "2026-11-01"
    )
    assert [a.fields["month"] for a in alerts] == ["2026-09", "2026-10"]  # an alert each
    [request] = requests  # ... and ONE retrain: same month, same cutoff
    assert request.partition_key == "2026-11-01"
    assert request.tags["claims/label_cutoff"] == "2026-12-07T00:00:00+00:00"  # today's start, not tomorrow's
    assert "2026-09" in request.tags["claims/reason"] and "2026-10" in request.tags["claims/reason"]
    assert monitoring_requests({}, performance, cursor, RULES, date(2026, 12, 7), "2026-11-01")[:2] == (
        [],
        [],
    )


def test_a_drift_alert_and_a_failed_month_that_want_the_same_retrain_get_one():
    measured_at = datetime(2026, 3, 6, 9, tzinfo=UTC).timestamp()
    _, requests, _ = monitoring_requests(
        _days("2026-03-01", "..DDD"),
        {"2026-01-01": ({"passed": False}, measured_at)},
        {},
        RULES,
        date(2026, 3, 6),
    )
    [request] = requests
    assert request.partition_key == "2026-02-01" and "drift episode" in request.tags["claims/reason"]


def test_a_retrain_uses_the_latest_complete_month_within_the_decided_chain_and_no_future_cutoff():
    target = retrain_target("2026-03-05", today=date(2026, 3, 20))
    assert target.month == "2026-02-01" and target.label_cutoff == datetime(2026, 3, 6, tzinfo=UTC)
    # Alerted today: the cutoff is the start of today, never the end (the future).
    assert retrain_target("2026-03-20", today=date(2026, 3, 20)).label_cutoff == datetime(
        2026, 3, 20, tzinfo=UTC
    )
    # A platform on last year's export: the retrain stays in the months its chain decided.
    old = retrain_target("2026-12-07", today=date(2026, 12, 7), latest_decided="2025-05-01")
    assert old.month == "2025-05-01" and old.label_cutoff == datetime(2026, 12, 7, tzinfo=UTC)
    # Never before the month's own cutoff (the first instant of the next month).
    assert retrain_target("2026-03-01", today=date(2026, 3, 1)).label_cutoff == datetime(
        2026, 3, 1, tzinfo=UTC
    )
    request = retrain_request(target, ["why"])
    assert request.run_config == {
        "ops": {"training_set": {"config": {"label_cutoff": "2026-03-06T00:00:00+00:00"}}}
    }
    assert request.tags["claims/off_cycle"] == "true" and request.run_key == target.run_key


def test_a_month_is_due_once_all_its_outcomes_are_known_and_only_once():
    scored = {"2026-01-01", "2026-02-01", "2026-03-01"}
    # February's last outcome is known on 30 March (28 Feb + 30 days).
    assert months_due(date(2026, 3, 29), 30, scored, set()) == ["2026-01-01"]
    assert months_due(date(2026, 3, 30), 30, scored, set()) == ["2026-01-01", "2026-02-01"]
    assert months_due(date(2026, 3, 30), 30, scored, {"2026-01-01"}) == ["2026-02-01"]


def _small_days(start: str, means: list[float], model: str = "3", rows: int = 50) -> dict[str, DriftDay]:
    """Days of ``rows`` rows that no daily test flags, with these mean probabilities against a reference of
    mean 0.15, sd 0.29 and 1,500 rows (a 50-a-day model's)."""
    first = date.fromisoformat(start)
    return {
        (first + timedelta(days=i)).isoformat(): DriftDay(
            False, 0.6, None, (), DayLevel(rows, mean, 0.15, 0.29, 1_500, model)
        )
        for i, mean in enumerate(means)
    }


def test_a_shift_in_risk_hidden_in_every_small_day_shows_in_the_week_one_alert_one_retrain():
    # Days of 50 rows whose mean probability is 0.23 (the reference's 0.15): 1.95 standard errors a day, as
    # chance gives one day in forty.
    riskier = _small_days("2026-03-01", [0.15] * 10 + [0.23] * 20)
    z = level_shifts({d: v.level for d, v in riskier.items()})
    # The week to its first riskier day: mean (6 × 0.15 + 0.23) / 7 over 0.29 · √(1/350 + 1/1500).
    assert z["2026-03-11"] == pytest.approx(0.0114 / (0.29 * (1 / 350 + 1 / 1500) ** 0.5), abs=0.01)
    assert z["2026-03-15"] < LevelRules().z <= z["2026-03-16"]  # 3.32, then 3.98: the 6th riskier day
    [episode] = drift_episodes(riskier, RULES)
    assert (episode.trigger, episode.start, episode.alert_day, episode.matters_from) == (
        "level",
        *["2026-03-16"] * 3,
    )
    alerts, requests, cursor = monitoring_requests(riskier, {}, {}, RULES, TODAY)
    [alert], [_] = alerts, requests
    assert alert.level == "error" and "mean predicted probability of the last 7 days" in alert.text
    # The week stays shifted: the same episode, no other alert.
    more = _small_days("2026-03-01", [0.15] * 10 + [0.23] * 25)
    assert monitoring_requests(more, {}, cursor, RULES, TODAY)[:2] == ([], [])
    # A week as likely as the reference: nothing.
    assert (
        drift_episodes(_small_days("2026-03-01", [0.15, 0.17, 0.13, 0.16, 0.14, 0.18, 0.12] * 4), RULES) == []
    )


def test_the_level_pools_only_days_of_the_same_model():
    shifted = _small_days("2026-03-01", [0.23] * 7)
    assert (
        max(abs(z) for z in level_shifts({d: v.level for d, v in shifted.items()}).values()) > LevelRules().z
    )
    # A new model each day: every window holds one day, nothing pools.
    apart = {d: DriftDay(False, 0.6, None, (), replace(v.level, model=d)) for d, v in shifted.items()}
    assert drift_episodes(apart, RULES) == []
    # A record from before the level was kept pools nothing.
    assert drift_episodes({d: replace(v, level=None) for d, v in shifted.items()}, RULES) == []


def test_a_shift_that_sits_about_the_alarm_stays_one_episode():
    # The week's z goes over the alarm (4.9), then hovers at 3.2 for two weeks: one episode, still open.
    means = [0.15] * 7 + [0.235] * 7 + [0.205] * 14
    days = _small_days("2026-03-01", means)
    z = level_shifts({d: v.level for d, v in days.items()})
    assert all(LevelRules().clear_z <= z[d] < LevelRules().z for d in sorted(z)[-8:])
    [episode] = drift_episodes(days, RULES)
    assert episode.trigger == "level" and episode.ended is None
    # Back to the reference's level: it ends after quiet_days.
    [episode] = drift_episodes(_small_days("2026-03-01", means + [0.15] * 14), RULES)
    assert episode.ended is not None


def test_one_day_that_matters_is_enough_when_the_weeks_level_corroborates_it():
    # Three drifted days, one of which matters, while the week's mean probability sits 2+ standard errors
    # above the reference's (but under the alarm): ONE error alert at once, not a warning upgraded later.
    days = _small_days("2026-03-01", [0.15] * 7 + [0.235] * 3)
    z = level_shifts({d: v.level for d, v in days.items()})
    assert LevelRules().clear_z <= z["2026-03-10"] < LevelRules().z
    flagged = {
        d: replace(
            v,
            drifted=True,
            severity=1.5,
            matters=d == "2026-03-10",
            reasons=("the predicted probabilities drifted",),
        )
        for d, v in days.items()
        if d >= "2026-03-08"
    }
    corroborated = {**days, **flagged}
    alerts, requests, _ = monitoring_requests(corroborated, {}, {}, RULES, TODAY)
    assert [a.level for a in alerts] == ["error"] and len(requests) == 1
    # The same days with the week's level at the reference's: one day can be chance; the alert waits for
    # the next day, and with that day quiet it is a warning.
    level = {d: replace(v, level=replace(v.level, mean=0.15)) for d, v in corroborated.items()}
    assert monitoring_requests(level, {}, {}, RULES, TODAY)[:2] == ([], [])
    quiet = replace(level["2026-03-07"], level=replace(level["2026-03-07"].level, mean=0.15))
    next_day = {**level, "2026-03-11": quiet}
    assert [a.level for a in monitoring_requests(next_day, {}, {}, RULES, TODAY)[0]] == ["warning"]
