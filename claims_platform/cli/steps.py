"""The platform's steps from the command line: each the backfill a person would launch, each telling what it made.

Every step runs only what is missing or stale, judged from Dagster's own records, so running a step
again on unchanged data runs nothing and says so:

- ``ingest``: a day whose `applications` partition does not hold what the warehouse holds now (never
  read, other row count, rows loaded after the read) — the late-data sensor's rule;
- ``train``: a month without a champion decision, or whose window holds a day ingested after it was
  decided; the chain is re-decided in order from the first such month (each decision takes its
  incumbent from the month before);
- ``models in force``: a scoring month whose `model_in_force` differs from what its month-before
  decision now says;
- ``score``: a day never scored, or ingested after it was scored (a day scored by a model that a later
  decision replaced keeps its scores, as in the platform: history is re-scored only on purpose);
- ``report``: a scored day without a drift report newer than its scores;
- ``measure``: a scored month whose outcomes are all known and that was not measured since its scores.

Each step is ONE run over its range of partitions (single-run backfills), except the monthly chain and
`model_performance`, one run per month, in order. The lines a step returns are the figures its
partitions carry (their materialization metadata and stored values), read back from the instance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from claims_platform.cli.runs import LocalPlatform, range_request
from claims_platform.core import settings
from claims_platform.core.months import add_months

# What a scoring backfill materializes of `nightly_scoring`: the ingestion is its own step.
SCORING_ASSETS = ("application_scores", "applications_drift", "reserve_forecast")
WIDTH = 14  # the step's name column in the printed lines


@dataclass
class Outcome:
    """What one step did: the partitions it ran (none: nothing was missing or stale) and its report lines."""

    step: str
    ran: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # Dagster run ids


def line(step: str, text: str) -> str:
    """One report line: the step's name in a column, then what it says."""
    return f"  {step:<{WIDTH}}{text}"


def _days_text(days: Sequence[str]) -> str:
    return f"{days[0]}..{days[-1]} ({len(days)} day{'s' if len(days) != 1 else ''})" if days else "no day"


def _months_text(months: Sequence[str]) -> str:
    return ", ".join(m[:7] for m in months)


def _runs_text(count: int) -> str:
    return f"{count} run{'s' if count != 1 else ''}"


def _blocks(keys: Sequence[str], every: Sequence[str]) -> list[tuple[str, str]]:
    """``keys`` as contiguous ranges of ``every`` (both sorted): one run per range."""
    position = {k: i for i, k in enumerate(every)}
    blocks: list[list[str]] = []
    for key in keys:
        if blocks and position[key] == position[blocks[-1][-1]] + 1:
            blocks[-1].append(key)
        else:
            blocks.append([key])
    return [(b[0], b[-1]) for b in blocks]


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def days_of_month(month: str, days: Sequence[str]) -> list[str]:
    return [d for d in days if d[:7] == month[:7]]


class Steps:
    """The steps, run through ``platform`` (the code location, its instance) on ``warehouse_url``'s data."""

    def __init__(
        self,
        platform: LocalPlatform,
        *,
        warehouse_url: str,
        progress: Callable[[str], None],
        training: dict | None = None,
        today: date | None = None,
    ):
        self.platform = platform
        self.instance = platform.instance
        self.warehouse_url = warehouse_url
        self.progress = progress
        self.training = training or {}
        self.today = today or datetime.now(UTC).date()

    # -- what the instance holds -------------------------------------------------------------------

    def latest(self, asset: str, partitions: Sequence[str]):
        """Partition -> its latest materialization (metadata, timestamp), for those that have one."""
        import dagster as dg

        from claims_platform.core.instance_records import latest_materializations

        return latest_materializations(self.instance, dg.AssetKey(asset), list(partitions))

    def _run(self, job: str, first: str, last: str, **kwargs) -> str:
        run = self.platform.run(job, range_request(first, last, **kwargs))
        return run.run_id

    def _run_partition(self, job: str, partition: str, run_config: dict | None = None) -> str:
        from dagster import RunRequest

        return self.platform.run(job, RunRequest(partition_key=partition, run_config=run_config or {})).run_id

    # -- ingest ----------------------------------------------------------------------------------------

    def ingest(self, days: Sequence[str]) -> Outcome:
        """Ingest the days whose `applications` do not hold what the warehouse holds; report every day's counts."""
        from claims_platform.scoring.jobs import DayState, day_states
        from claims_platform.source.warehouse import Warehouse

        outcome = Outcome("ingest")
        warehouse = Warehouse(self.warehouse_url)
        try:
            loaded = warehouse.loaded_days(date.fromisoformat(days[0]), date.fromisoformat(days[-1]))
        finally:
            warehouse.dispose()
        states = {s.day: s for s in day_states(self.instance, loaded)}
        ingested = self.latest("applications", days)
        stale = []
        for day in days:
            state = states.get(day)
            if state is None:  # no row in the warehouse: stale only if a read found some
                state = DayState(
                    day,
                    0,
                    "",
                    int(ingested[day].metadata.get("rows_read", 0)) if day in ingested else None,
                    None,
                    None,
                    None,
                )
            if state.needs_ingestion():
                stale.append(day)
        if stale:
            self.progress(f"ingesting {_days_text(stale)} as one backfill run of daily_ingestion")
            outcome.runs.append(self._run("daily_ingestion", stale[0], stale[-1]))
            outcome.ran = stale
        outcome.lines = self._ingest_lines(days, outcome)
        return outcome

    def _ingest_lines(self, days: Sequence[str], outcome: Outcome) -> list[str]:
        from collections import Counter

        from claims_platform.ingestion.assets import QUARANTINED_KEY, RULES_BROKEN

        applications = self.latest("applications", days)
        rejected = self.latest("rejected_applications", days)
        read = sum(int(m.metadata.get("rows_read", 0)) for m in applications.values())
        valid = sum(int(m.metadata.get("valid_rows", 0)) for m in applications.values())
        refused = sum(int(m.metadata.get("rejected_rows", 0)) for m in rejected.values())
        quarantined = [d for d, m in sorted(applications.items()) if m.metadata.get(QUARANTINED_KEY)]
        if not outcome.ran:
            ran = "nothing to ingest: every day holds what the warehouse holds"
        else:
            ran = (
                f"{'all' if len(outcome.ran) == len(days) else _days_text(outcome.ran)} ingested now, one run"
            )
        lines = [
            line(
                "ingest",
                f"{_days_text(list(days))}: {read:,} rows read, {valid:,} valid, {read - valid:,} rejected ({ran})",
            )
        ]
        if quarantined:
            lines.append(
                line(
                    "",
                    f"quarantined (every row rejected, see rejected_applications): {', '.join(quarantined[:10])}",
                )
            )
        if refused:
            rules: Counter[str] = Counter()
            for materialized in rejected.values():
                rules.update(materialized.metadata.get(RULES_BROKEN) or {})
            top = "; ".join(f"{rule} ({count:,})" for rule, count in rules.most_common(3))
            lines.append(line("", f"top reasons: {top}"))
        return lines

    # -- train -----------------------------------------------------------------------------------------

    def train(self, months: Sequence[str], days: Sequence[str]) -> Outcome:
        """Decide the months that have no decision or whose window changed since, in order from the first of them."""
        from claims_platform.training.dataset import training_window

        outcome = Outcome("train")
        if not months:
            outcome.lines = [line("train", "no month can train: see the import's plan")]
            return outcome
        decided = self.latest("champion_decision", months)
        applications = self.latest("applications", days)
        stale = []
        for month in months:
            if month not in decided:
                stale.append(month)
                continue
            window = training_window(date.fromisoformat(month), settings.TRAINING_WINDOW_MONTHS)
            newer = [
                d for d, m in applications.items()
                if window.first_day.isoformat() <= d <= window.last_day.isoformat() and m.timestamp > decided[month].timestamp
            ]  # fmt: skip
            if newer:
                stale.append(month)
        to_run = [m for m in months if stale and m >= stale[0]]
        run_config = {"ops": {"candidate_model": {"config": self.training}}} if self.training else None
        for i, month in enumerate(to_run, start=1):
            self.progress(f"training and deciding {month[:7]} ({i}/{len(to_run)}), a run of monthly_training")
            outcome.runs.append(self._run_partition("monthly_training", month, run_config))
        outcome.ran = to_run
        if not to_run:
            outcome.lines.append(
                line(
                    "train",
                    f"nothing to train: {_months_text(months)} decided, their windows unchanged since",
                )
            )
        outcome.lines += [self.decision_line(month) for month in months]
        return outcome

    def decision(self, month: str) -> dict | None:
        decided = self.latest("champion_decision", [month])
        return self.platform.stored("champion_decision", month) if month in decided else None

    def decision_line(self, month: str) -> str:
        """The month's champion decision and its candidate's holdout kappa (95% interval), AUC, Brier, ECE."""
        decision = self.decision(month)
        if decision is None:
            return line("train", f"{month[:7]}: not decided")
        candidate = self.platform.stored("candidate_model", month)
        champion = decision["champion"]
        outcome = decision["outcome"] + (f" (v{champion['version']})" if champion else "")
        if candidate.get("status") != "trained":
            quality = f"candidate ineligible: {clip(str(candidate.get('failure')), 100)}"
        else:
            m = candidate["holdout_metrics"]
            interval = f" (95% {m['kappa_low']:.3f}–{m['kappa_high']:.3f})" if "kappa_low" in m else ""
            reused = ", reused" if candidate.get("reused") else ""
            failed = candidate.get("gate", {}).get("failures") or []
            quality = (
                f"v{candidate['version']}{reused}: holdout {candidate['holdout_month']} kappa {m['kappa']:.3f}{interval}, "
                f"AUC {m['roc_auc']:.3f}, Brier {m['brier']:.4f}, ECE {m['ece']:.4f}"
                + (f"; failed the quality gate: {'; '.join(failed)}" if failed else "")
            )
        comparison = decision.get("comparison")
        versus = ""
        if comparison:
            digits = 2 if comparison.get("metric") == "value per application" else 4
            versus = (
                f"; vs champion, {comparison.get('metric', 'kappa')}: {comparison['difference']:+.{digits}f} "
                f"({comparison['confidence']:.0%} {comparison['low']:+.{digits}f}..{comparison['high']:+.{digits}f})"
            )
        return line("train", f"{month[:7]}: {outcome} — {quality}{versus}")

    # -- models in force ------------------------------------------------------------------------------

    def put_in_force(self, scoring_months: Sequence[str]) -> tuple[Outcome, dict[str, dict]]:
        """`model_in_force` of each scoring month, re-made where the decision before it says otherwise now.

        Returns the outcome and each month's record (months whose month before has no decision are left out).
        """
        from claims_platform.core.months import shift_month_key
        from claims_platform.models.assets import model_in_force_record

        outcome = Outcome("in force")
        wanted: dict[str, dict] = {}
        for month in scoring_months:
            decision = self.decision(shift_month_key(month, -1))
            if decision is not None:
                wanted[month] = model_in_force_record(decision, shift_month_key(month, -1))
        present = self.latest("model_in_force", list(wanted))
        stale = [
            m for m in wanted if m not in present or self.platform.stored("model_in_force", m) != wanted[m]
        ]
        for first, last in _blocks(stale, list(wanted)):
            self.progress(
                f"putting the decided models in force for {first[:7]}..{last[:7]} (model_in_force, one run)"
            )
            outcome.runs.append(
                self._run("__ASSET_JOB", first, last, asset_selection=[_key("model_in_force")])
            )
        outcome.ran = stale
        return outcome, wanted

    # -- score -----------------------------------------------------------------------------------------

    def score(self, days: Sequence[str], in_force: dict[str, dict]) -> Outcome:
        """Score the days of months with a model in force that were never scored or were ingested since; report
        decisions and reserve per month."""
        outcome = Outcome("score")
        scoreable = [d for d in days if (in_force.get(f"{d[:7]}-01") or {}).get("version") is not None]
        applications = self.latest("applications", scoreable)
        scores = self.latest("application_scores", scoreable)
        # A day scored before a later decision put another model in force keeps its scores (the platform never
        # re-scores history on its own: a rollback's alert says which days to backfill).
        stale = [
            d for d in scoreable
            if d not in scores or (d in applications and applications[d].timestamp > scores[d].timestamp)
        ]  # fmt: skip
        for first, last in _blocks(stale, scoreable):
            self.progress(
                f"scoring {first}..{last} with the model in force each month (nightly_scoring, one run)"
            )
            outcome.runs.append(
                self._run("nightly_scoring", first, last, asset_selection=[_key(a) for a in SCORING_ASSETS])
            )
        outcome.ran = stale
        unscored = sorted({d[:7] for d in days} - {d[:7] for d in scoreable})
        if unscored:
            outcome.lines.append(
                line("score", f"{', '.join(unscored)}: no model in force (no champion decided before)")
            )
        if not stale and scoreable:
            outcome.lines.append(
                line("score", f"nothing to score: {_days_text(scoreable)} scored by the model in force")
            )
        outcome.lines += self._score_lines(scoreable)
        return outcome

    def _score_lines(self, days: Sequence[str]) -> list[str]:
        import numpy as np

        from claims_platform.core.figures import money
        from claims_platform.scoring.reserve import forecast_claims

        if not days:
            return []
        scores = self.platform.stored_range("application_scores", days[0], days[-1])
        forecasts = self.platform.stored_range("reserve_forecast", days[0], days[-1])
        lines = []
        for month in sorted({d[:7] for d in days}):
            month_days = [d for d in days if d[:7] == month]
            frames = [scores[d] for d in month_days if d in scores]
            rows = forecasts[month_days[-1]].iloc[0]
            cost, currency = float(rows["average_claim_cost"]), str(rows["currency"])
            decisions = {
                d: sum(int((f["decision"] == d).sum()) for f in frames)
                for d in ("accept", "refer", "decline")
            }
            accepted = [f.loc[f["decision"] == "accept", "claim_probability"].to_numpy() for f in frames]
            forecast = forecast_claims(np.concatenate(accepted) if accepted else np.zeros(0), cost)
            versions = sorted({int(v) for f in frames for v in f["model_version"].dropna().unique()})
            lines.append(
                line(
                    "score",
                    f"{month}: {len(month_days)} days, {sum(decisions.values()):,} applications by "
                    f"v{', v'.join(map(str, versions))}: {decisions['accept']:,} accepted, {decisions['refer']:,} referred, "
                    f"{decisions['decline']:,} declined; expected claims among accepted {forecast.expected_claims:,.1f} "
                    f"(95% {forecast.claims_low:,}–{forecast.claims_high:,}) → reserve {money(forecast.reserve, currency)}",
                )
            )
        return lines

    # -- report ----------------------------------------------------------------------------------------

    def report(self, days: Sequence[str]) -> Outcome:
        """Evidently's drift reports of scored days that have none newer than their scores; report drift days
        and the drift episodes the monitoring sensor alerts on."""
        outcome = Outcome("drift")
        scores = self.latest("application_scores", days)
        scored = [d for d in days if d in scores]
        reports = self.latest("applications_drift_report", scored)
        stale = [d for d in scored if d not in reports or reports[d].timestamp < scores[d].timestamp]
        for first, last in _blocks(stale, scored):
            self.progress(f"reporting drift for {first}..{last} (drift_reports: Evidently, one run)")
            outcome.runs.append(self._run("drift_reports", first, last))
        outcome.ran = stale
        outcome.lines = self._drift_lines(scored, outcome)
        return outcome

    def _drift_lines(self, scored: Sequence[str], outcome: Outcome) -> list[str]:
        from claims_platform.assembly.monitoring_sensors import ALERT_WINDOW_DAYS, episode_rules
        from claims_platform.core.redaction import redact_url
        from claims_platform.monitoring.episodes import DriftDay, drift_episodes

        if not scored:
            return [line("drift", "no scored day to report")]
        drift = self.latest("applications_drift", scored)
        days = {
            d: DriftDay(bool(m.metadata.get("drifted")), m.metadata.get("drift_severity"))
            for d, m in drift.items()
        }
        drifted = [d for d in scored if d in days and days[d].drifted]
        ran = f"{len(outcome.ran)} report(s) made now" if outcome.ran else "every report up to date"
        first = (
            f"; first {drifted[0]}: {', '.join(drift[drifted[0]].metadata.get('drifted_columns') or [])}"
            if drifted
            else ""
        )
        lines = [line("drift", f"{_days_text(list(scored))} reported, {len(drifted)} drifted{first} ({ran})")]
        newest = date.fromisoformat(max(days)) if days else None
        for episode in drift_episodes(days, episode_rules()):
            # The sensor's own rule: an episode whose alert day is long before the newest report is history.
            recent = newest is not None and date.fromisoformat(episode.alert_day) >= newest - timedelta(
                days=ALERT_WINDOW_DAYS
            )
            what = (
                "monitoring_alert_sensor raises it once the daemon runs (make dev): one alert, one off-cycle retrain"
                if recent
                else f"history: over {ALERT_WINDOW_DAYS} days before the newest report, monitoring_alert_sensor does not alert"
            )
            last = episode.days[-1] if episode.days else episode.alert_day
            span = f"{episode.start}..{last}" if episode.ended else f"from {episode.start}, going on"
            lines.append(
                line(
                    "alert",
                    f"drift episode {span} ({len(episode.days)} drifted days, alert on {episode.alert_day}): {what}",
                )
            )
        shown = drifted[0] if drifted else scored[-1]
        lines.append(
            line(
                "report",
                f"{redact_url(settings.default_storage_url())}/applications_drift_report/{shown}/report.html",
            )
        )
        return lines

    # -- measure ---------------------------------------------------------------------------------------

    def measure(self, months: Sequence[str], days: Sequence[str]) -> Outcome:
        """Measure each scored month whose outcomes are all known, unless measured since its scores."""
        from claims_platform.monitoring.backtest import outcomes_known_from

        outcome = Outcome("measure")
        scores = self.latest("application_scores", days)
        scored_months = [m for m in months if any(d[:7] == m[:7] for d in scores)]
        due = [m for m in scored_months if outcomes_known_from(m, settings.LABEL_LAG_DAYS) <= self.today]
        measured = self.latest("model_performance", due)
        stale = [
            m for m in due
            if m not in measured
            or max(scores[d].timestamp for d in days_of_month(m, list(scores))) > measured[m].timestamp
        ]  # fmt: skip
        for month in stale:
            self.progress(f"measuring {month[:7]} (measure_model_performance)")
            outcome.runs.append(self._run_partition("measure_model_performance", month))
        outcome.ran = stale
        if due and not stale:
            outcome.lines.append(
                line("measure", f"nothing to measure: {_months_text(due)} measured since their scores")
            )
        outcome.lines += [self.performance_line(m) for m in due]
        for month in scored_months:
            if month not in due:
                known = outcomes_known_from(month, settings.LABEL_LAG_DAYS)
                outcome.lines.append(
                    line(
                        "measure",
                        f"{month[:7]}: outcomes all known from {known}; measured then (model_performance_sensor)",
                    )
                )
        return outcome

    def performance_line(self, month: str) -> str:
        """The month's measured performance against its estimate, and its reserve backtest (metadata of `model_performance`)."""
        meta = self.latest("model_performance", [month])[month].metadata
        verdict = "check passed" if meta.get("passed") else "check FAILED"
        return line(
            "measure",
            f"{month[:7]}: kappa {meta['realised_kappa']} realised vs {meta['estimated_kappa']} estimated "
            f"({meta['estimated_kappa_95']}), AUC {meta['realised_roc_auc']}; accepted claims {meta['backtest_actual_claims']} vs "
            f"{meta['backtest_expected_claims']} forecast (ratio {meta['backtest_actual_to_expected']}), "
            f"{meta['backtest_daily_coverage']} inside their 95% interval — {verdict}",
        )


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name)


def scoring_months_of(plan_days: Sequence[str], decided_months: Sequence[str]) -> list[str]:
    """The months of ``plan_days`` that follow a decided month (their model is that month's champion)."""
    decided = set(decided_months)
    months = sorted({f"{d[:7]}-01" for d in plan_days})
    return [m for m in months if add_months(date.fromisoformat(m), -1).isoformat() in decided]
