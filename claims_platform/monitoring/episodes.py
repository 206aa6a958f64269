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
  that an i.i.d. day's severity has about the same distribution at any volume (median 0.61–0.69, 99th
  percentile 0.84–0.99, measured on 2 worlds at 20 to 5,000 rows a day): over 1,200,000 simulated
  i.i.d. days drawn from those ten distributions, the EWMA reached 0.88 on 2 (about one false episode
  in 1,600 years of a model's days).
- **Continue.** An episode goes on through quiet days (hysteresis): it ends only after ``quiet_days``
  days in a row that are neither drifted nor with the EWMA at its alert level. A drift that grows over a
  month, with a quiet day here and there, is ONE episode: one alert, at most one retrain.
- **The predictions' level over a week** (:mod:`~claims_platform.monitoring.level`) starts an episode
  too, and keeps one going, when the mean predicted probability of the last ``level.days`` days has
  shifted from the reference's by more than chance at ``level.alarm_rate`` (and keeps it going while that
  shift stays above ``level.clear_z``): at 50 rows a day a shift in risk hides in every single day and
  shows in the week.
- A day not reported is not a drifted day and moves no EWMA.
- **Does it matter?** An episode asks for a retrain once its drift can move decisions (``matters_from``,
  :mod:`~claims_platform.monitoring.relevance`): from its ``matter_days``-th drifted day that matters
  (two by default: each of a day's rules has its own chance of a false alarm, and one day of thirty at
  50 rows a day did upgrade a month-long income drift the model barely uses), or from a day that
  matters whose week's level is outside its 95% band (corroborated: at 300 rows a day a shift in risk
  otherwise warned on day 3 and was upgraded days later, two alerts), or from its first day whose
  week's level has shifted (a week's evidence already). Until then it is a warning. A drift in
  columns the model barely uses that later reaches its predictions is ONE episode, upgraded once.

The retrain an alert asks for is :func:`retrain_target`: deduplicated by (month, label cutoff) whichever
alert asked, and never with a cutoff later than the present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from claims_platform.core.months import add_months
from claims_platform.monitoring.level import DayLevel, LevelRules, level_shifts


@dataclass(frozen=True)
class EpisodeRules:
    """When drift starts an episode and when the episode is over."""

    alert_days: int = 3  # drifted days in a row that start an episode (CLAIMS_DRIFT_ALERT_DAYS)
    quiet_days: int = 7  # days in a row without drift that end one (CLAIMS_DRIFT_QUIET_DAYS)
    ewma_weight: float = 0.3  # weight of a new day in the EWMA of the severity
    ewma_alert: float = 0.88  # the EWMA at or above this starts an episode (and keeps one going)
    ewma_start: float = 0.62  # the EWMA before the first day: about a normal day's severity
    matter_days: int = 2  # drifted days that matter before the episode asks for a retrain
    level: LevelRules = LevelRules()  # the predictions' level pooled over a rolling window

    def __post_init__(self) -> None:
        if self.alert_days < 1 or self.quiet_days < 1 or self.matter_days < 1:
            raise ValueError(
                f"alert_days, quiet_days and matter_days must be at least 1, got {self.alert_days}, {self.quiet_days}, "
                f"{self.matter_days}"
            )
        if not 0 < self.ewma_weight <= 1 or not 0 < self.ewma_alert <= 1:
            raise ValueError(
                f"ewma_weight and ewma_alert must be in (0, 1], got {self.ewma_weight}, {self.ewma_alert}"
            )


@dataclass(frozen=True)
class DriftDay:
    """A day's drift decision: whether it drifted, its severity, and whether the drift matters to the model
    (:mod:`~claims_platform.monitoring.relevance`; None when unknown, an old record: it is taken to matter),
    and its mean predicted probability (None: a record from before the level was kept)."""

    drifted: bool
    severity: float | None = None
    matters: bool | None = None
    reasons: tuple[str, ...] = ()
    level: DayLevel | None = None

    @property
    def worth_a_retrain(self) -> bool:
        """A drifted day whose drift can move decisions (or whose record predates the question)."""
        return self.drifted and self.matters is not False


@dataclass(frozen=True)
class DriftEpisode:
    """A drift episode: from ``start`` (its first drifted day) it alerts on ``alert_day``."""

    start: str
    alert_day: str
    # "consecutive" (alert_days drifted days in a row), "level" (the week's predictions shifted) or "ewma"
    # (a steady change at the threshold)
    trigger: str
    days: tuple[str, ...] = field(default=())  # its drifted days
    ended: str | None = None  # the last day of the quiet stretch that ended it; None while it goes on
    matters_from: str | None = None  # the day from which its drift matters; None: a warning so far
    reasons: tuple[str, ...] = ()  # why it matters (the days' reasons, or the week's level)
    # Its alert day is the first day whose drift matters: whether the episode matters is known the day
    # after (a second such day, or the week's level), so its alert waits a day rather than warn and then
    # come back as an error.
    awaiting: bool = False


def _calendar(days: Mapping[str, DriftDay]) -> list[str]:
    first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def drift_episodes(days: Mapping[str, DriftDay], rules: EpisodeRules = EpisodeRules()) -> list[DriftEpisode]:
    """The episodes of ``days`` (ISO day -> decision), in order (see the module's docstring)."""
    if not days:
        return []
    shifts = level_shifts({day: decision.level for day, decision in days.items()}, rules.level)
    episodes: list[DriftEpisode] = []
    run: list[str] = []  # drifted days in a row
    ewma = rules.ewma_start
    open_: dict | None = None  # the episode going on
    for day in _calendar(days):
        today = days.get(day)
        if today is None:  # not reported: breaks a run of drifted days, is no quiet day, moves no EWMA
            run = []
            continue
        drifted = today.drifted
        severity = today.severity if today.severity is not None else (1.0 if drifted else 0.0)
        ewma = rules.ewma_weight * min(float(severity), 1.0) + (1 - rules.ewma_weight) * ewma
        run = [*run, day] if drifted else []
        shifted = abs(shifts.get(day, 0.0)) >= rules.level.z
        if open_ is None:
            if len(run) >= rules.alert_days or shifted or ewma >= rules.ewma_alert:
                trigger = "consecutive" if len(run) >= rules.alert_days else "level" if shifted else "ewma"
                open_ = {"start": run[0] if run else day, "alert_day": day, "trigger": trigger, "days": list(run),
                         "quiet": 0, "mattering": [], "matters_from": None, "reasons": (), "level": shifted}  # fmt: skip
                for earlier in run[:-1]:
                    _weigh(open_, earlier, days[earlier], False, rules, shifts)
                _weigh(open_, day, today, shifted, rules, shifts)
                open_["awaiting"] = (
                    open_["matters_from"] is None and len(open_["mattering"]) == 1 and today.worth_a_retrain
                )
            continue
        if drifted:
            open_["days"].append(day)
        _weigh(open_, day, today, shifted, rules, shifts)
        open_["level"] = open_["level"] or shifted
        # The level's hysteresis, in an episode the level has shifted in: it holds while |z| >= clear_z.
        holding = open_["level"] and abs(shifts.get(day, 0.0)) >= rules.level.clear_z
        open_["quiet"] = 0 if (drifted or holding or ewma >= rules.ewma_alert) else open_["quiet"] + 1
        if open_["quiet"] >= rules.quiet_days:
            episodes.append(_episode(open_, ended=day))
            open_, run = None, []
    if open_ is not None:
        episodes.append(_episode(open_, ended=None))
    return episodes


def _weigh(
    state: dict, day: str, today: DriftDay, shifted: bool, rules: EpisodeRules, shifts: Mapping[str, float]
) -> None:
    """Whether the episode's drift matters from ``day`` on: its week's level shifted, or it is the
    ``matter_days``-th drifted day that matters, or a day that matters whose week's level is outside its
    95% band (``level.clear_z``: corroborated). ``state["mattering"]`` keeps their reasons."""
    if state["matters_from"] is not None:
        return
    if shifted:
        level = today.level
        state["matters_from"] = day
        state["reasons"] = (
            f"the mean predicted probability of the last {rules.level.days} days moved from the reference's "
            f"{level.reference_mean:.3f} by {shifts[day]:+.1f} standard errors (beyond chance at {rules.level.alarm_rate:g})",
        )
        return
    if today.worth_a_retrain:
        state["mattering"].append(today.reasons)
        corroborated = abs(shifts.get(day, 0.0)) >= rules.level.clear_z
        if len(state["mattering"]) >= rules.matter_days or corroborated:
            state["matters_from"] = day
            state["reasons"] = tuple(dict.fromkeys(r for reasons in state["mattering"] for r in reasons))


def _episode(state: dict, ended: str | None) -> DriftEpisode:
    return DriftEpisode(
        state["start"],
        state["alert_day"],
        state["trigger"],
        tuple(state["days"]),
        ended,
        state["matters_from"],
        state["reasons"],
        state.get("awaiting", False),
    )


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
    earliest = datetime.combine(
        add_months(date.fromisoformat(month), 1), time(), tzinfo=UTC
    )  # the regular cutoff
    return RetrainTarget(month, max(min(end_of_alert_day, start_of_today), earliest))
