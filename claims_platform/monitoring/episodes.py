"""Drift as an on-call engineer hears of it: one episode, one alert, at most one retrain (pure, no Dagster).

Each scored day has a drift decision (:mod:`claims_platform.monitoring.drift`): drifted or not, and its
SEVERITY, the largest of its tests' score / threshold (1 or more: the day drifted). Episodes are read
from the sequence of days:

- **Start.** ``alert_days`` drifted days in a row (3 by default: a strong change alerts on its third
  day), or the EWMA of the days' severities reaching ``ewma_alert``. The EWMA is what detects a change
  that sits AT the threshold, whose days flip between drifted and not like a coin: each day's severity
  counts at most 1 (so one extreme day cannot start an episode alone), the weight of a new day is
  ``ewma_weight``, it starts at ``ewma_start`` (a normal day's severity), and a change whose days score
  about the threshold lifts it over ``ewma_alert`` in five days (median; six for nine in ten), steadily,
  where the daily flags would have started and broken runs at random. The thresholds are calibrated so
  that an i.i.d. day's severity has about the same distribution at any volume (median 0.62, 99th
  percentile 0.84–1.01, measured on 2 worlds at 20 to 5,000 rows a day): over 1,200,000 simulated
  i.i.d. days drawn from those twelve distributions, the EWMA reached 0.88 on 6 (about one false
  episode in 500 years of a model's days).
- **Continue.** An episode goes on through quiet days (hysteresis): it ends only after ``quiet_days``
  days in a row that are neither drifted nor with the EWMA at its alert level. A drift that grows over a
  month, with a quiet day here and there, is ONE episode: one alert, at most one retrain.
- A day not reported is not a drifted day and moves no EWMA.
- **Does it matter?** An episode asks for a retrain from its first drifted day whose drift can move
  decisions (``matters_from``, :mod:`~claims_platform.monitoring.relevance`); until then it is a warning.
  A drift in columns the model barely uses that later reaches its predictions is ONE episode, upgraded
  once.

The retrain an alert asks for is :func:`retrain_target`: deduplicated by (month, label cutoff) whichever
alert asked, and never with a cutoff later than the present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from claims_platform.months import add_months


@dataclass(frozen=True)
class EpisodeRules:
    """When drift starts an episode and when the episode is over."""

    alert_days: int = 3  # drifted days in a row that start an episode (CLAIMS_DRIFT_ALERT_DAYS)
    quiet_days: int = 7  # days in a row without drift that end one (CLAIMS_DRIFT_QUIET_DAYS)
    ewma_weight: float = 0.3  # weight of a new day in the EWMA of the severity
    ewma_alert: float = 0.88  # the EWMA at or above this starts an episode (and keeps one going)
    ewma_start: float = 0.62  # the EWMA before the first day: about a normal day's severity

    def __post_init__(self) -> None:
        if self.alert_days < 1 or self.quiet_days < 1:
            raise ValueError(f"alert_days and quiet_days must be at least 1, got {self.alert_days}, {self.quiet_days}")
        if not 0 < self.ewma_weight <= 1 or not 0 < self.ewma_alert <= 1:
            raise ValueError(f"ewma_weight and ewma_alert must be in (0, 1], got {self.ewma_weight}, {self.ewma_alert}")


@dataclass(frozen=True)
class DriftDay:
    """A day's drift decision: whether it drifted, its severity, and whether the drift matters to the model
    (:mod:`~claims_platform.monitoring.relevance`; None when unknown, an old record: it is taken to matter)."""

    drifted: bool
    severity: float | None = None
    matters: bool | None = None
    reasons: tuple[str, ...] = ()

    @property
    def worth_a_retrain(self) -> bool:
        """A drifted day whose drift can move decisions (or whose record predates the question)."""
        return self.drifted and self.matters is not False


@dataclass(frozen=True)
class DriftEpisode:
    """A drift episode: from ``start`` (its first drifted day) it alerts on ``alert_day``."""

    start: str
    alert_day: str
    trigger: str  # "consecutive" (alert_days drifted days in a row) or "ewma" (a steady change at the threshold)
    days: tuple[str, ...] = field(default=())  # its drifted days
    ended: str | None = None  # the last day of the quiet stretch that ended it; None while it goes on
    matters_from: str | None = None  # its first drifted day whose drift matters; None: a warning so far


def _calendar(days: Mapping[str, DriftDay]) -> list[str]:
    first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def drift_episodes(days: Mapping[str, DriftDay], rules: EpisodeRules = EpisodeRules()) -> list[DriftEpisode]:
    """The episodes of ``days`` (ISO day -> decision), in order (see the module's docstring)."""
    if not days:
        return []
    episodes: list[DriftEpisode] = []
    run: list[str] = []  # drifted days in a row
    ewma = rules.ewma_start
    open_: dict | None = None  # the episode going on: start, alert_day, trigger, days, quiet
    for day in _calendar(days):
        today = days.get(day)
        if today is None:  # not reported: breaks a run of drifted days, is no quiet day, moves no EWMA
            run = []
            continue
        drifted = today.drifted
        severity = today.severity if today.severity is not None else (1.0 if drifted else 0.0)
        ewma = rules.ewma_weight * min(float(severity), 1.0) + (1 - rules.ewma_weight) * ewma
        run = [*run, day] if drifted else []
        elevated = ewma >= rules.ewma_alert
        if open_ is None:
            if len(run) >= rules.alert_days or elevated:
                trigger = "consecutive" if len(run) >= rules.alert_days else "ewma"
                start = run[0] if run else day
                open_ = {"start": start, "alert_day": day, "trigger": trigger, "days": list(run), "quiet": 0}
                open_["matters_from"] = next((d for d in run if days[d].worth_a_retrain), None)
            continue
        if drifted:
            open_["days"].append(day)
        if open_["matters_from"] is None and today.worth_a_retrain:
            open_["matters_from"] = day
        open_["quiet"] = 0 if (drifted or elevated) else open_["quiet"] + 1
        if open_["quiet"] >= rules.quiet_days:
            episodes.append(_episode(open_, ended=day))
            open_, run = None, []
    if open_ is not None:
        episodes.append(_episode(open_, ended=None))
    return episodes


def _episode(state: dict, ended: str | None) -> DriftEpisode:
    return DriftEpisode(state["start"], state["alert_day"], state["trigger"], tuple(state["days"]), ended, state["matters_from"])


@dataclass(frozen=True)
class RetrainTarget:
    """The off-cycle training an alert asks for: a month's partition and the label cutoff."""

    month: str  # the partition key, YYYY-MM-01
    label_cutoff: datetime  # UTC; outcomes known before it are used

    @property
    def run_key(self) -> str:
        """One run per (month, cutoff), whichever alert asked for it (the daemon skips a key it has seen)."""
        return f"retrain-{self.month[:7]}-{self.label_cutoff:%Y%m%dT%H%M}"


def retrain_target(alert_day: str, today: date, latest_decided: str | None = None) -> RetrainTarget:
    """The month to train again and the label cutoff, for an alert raised about ``alert_day``.

    The month is the last one complete on the alert day (its training then learns from the most recent
    labelled month there is), but never later than the latest month the champion chain has decided
    (``latest_decided``): a platform fed with last year's export retrains within last year. The cutoff
    is the end of the alert day, but never later than the start of ``today``: a label cutoff is never
    in the future.
    """
    day = date.fromisoformat(alert_day)
    month = add_months(day.replace(day=1), -1).isoformat()
    if latest_decided is not None and latest_decided < month:
        month = latest_decided
    end_of_alert_day = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    start_of_today = datetime.combine(today, time(), tzinfo=UTC)
    earliest = datetime.combine(add_months(date.fromisoformat(month), 1), time(), tzinfo=UTC)  # the regular cutoff
    return RetrainTarget(month, max(min(end_of_alert_day, start_of_today), earliest))
