"""Monitoring: does the drift decision stay quiet on normal days and fire on the named scenarios; is
the performance estimated before the labels right; does the reserve's daily interval cover; what
does the drift report cost.

**Quality (1-3), pure, no Dagster.** One model trained the way ``bench_training`` trains (its
``labelled_year``: world seed 20250101, 2025, December the holdout, so M = 2025-12) with the small
budget the platform tests and ``bench_scoring`` use; its drift reference is
``reference_drawn_from(holdout, calibrated p, REFERENCE_ROWS (3,000), seed 202512)``, as ``candidate_model`` draws it.
Every later day is simulated, validated by the platform's contract (only valid rows go on, as
ingestion does), scored with the model's calibrated probabilities and measured with the default
``DriftSettings``:

1. detection: 181 i.i.d. days (2026-01-01..2026-06-30): share flagged, alerts of
   ``drift_episodes(days, EpisodeRules(alert_days=3))``, the largest score per column kind. Each scenario switched on at
   ``ONSET`` (2026-01-21, after 20 normal days) for ``SCENARIO_DAYS`` days: the scenario day on which
   the alert is raised (1 = the onset day), which columns drifted. For comparison, what Evidently's
   own choice of test would flag on the first ``EVIDENTLY_DEFAULT_DAYS`` i.i.d. days;
2. estimated (CBPE, :func:`estimate_performance`) versus realised kappa at the screen and claim rate,
   per i.i.d. month and for July 2026 under concept_shift; with the ``model_performance`` check
   (:class:`PerformanceBounds` defaults) each month would get;
3. reserve backtest: each day's ``forecast_claims`` on its accepted applicants against their claims
   (:func:`daily_backtest`, :func:`month_backtest`).

**Timing (4).** The ``bench_scoring`` world (2025-01..2026-02 simulated and ingested, one model
trained for 2025-03, ``model_in_force`` seeded for 2025-03..2026-02, the year scored by a real
in-process scoring backfill), then as subprocesses (as the daemon launches runs):
(b) one day's ``nightly_scoring`` run (ingestion, scores, forecast and the drift DECISION
``applications_drift``), the same without ``applications_drift``, the same with no reasons computed and
with every row's (``application_scores``' ``explain``: none, all; the default explains the referrals
and declines), the day's ``drift_reports`` run
(the Evidently report, requested after the nightly run by ``drift_report_sensor``), and
``bench/trivial_defs.py`` (Dagster's default executor, and in process); interleaved, medians. The
Evidently workspace then holds one snapshot (the day re-reported);
(a) a year: ``applications_drift`` over 365 days as one run, then ``applications_drift_report``
alone over the same 365 days as ONE run (single-run backfill), HTML, JSON snapshot and summary
stored in the local folder, Evidently workspace on;
(b') the day's report run again, the workspace now holding a year of snapshots (opening a local
Evidently workspace reads every snapshot, so its cost grows with the history).
The 1-minute load average is recorded before the timed parts.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20250101
IID_DAYS = (date(2026, 1, 1), date(2026, 6, 30))  # 181 days after M = 2025-12
ONSET = date(2026, 1, 21)  # after 20 normal days
SCENARIO_DAYS = 14
CONCEPT_MONTH = (date(2026, 7, 1), date(2026, 7, 31))
K = 3  # CLAIMS_DRIFT_ALERT_DAYS default
AVERAGE_CLAIM_COST = 12_000.0
SCENARIOS = ("income_shift", "mix_shift", "concept_shift", "data_quality")
NIGHTLY_DAY = "2025-06-21"
REPEATS = 3
EVIDENTLY_DEFAULT_DAYS = 90  # i.i.d. days on which Evidently's own default tests are tried, for comparison


def _progress(message: str) -> None:
    print(f"[bench_monitoring] {message}", file=sys.stderr, flush=True)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _m(name: str, value, unit: str, target: str | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target}


@dataclass
class ScoredDay:
    """A day as the platform sees it after ingestion and scoring, with the outcomes drawn for it."""

    day: date
    current: pd.DataFrame  # valid rows + claim_probability (what the drift report measures)
    claims: np.ndarray  # claim_status of each valid row
    rows_read: int
    rejected: int
    duplicate_ids: int  # rows rejected as duplicated ids (ingestion's `unique_application_ids` warns)


def _train() -> tuple[object, object, float]:
    """One model on 2025 (December the holdout); its reference and holdout kappa."""
    from bench.bench_training import labelled_year
    from claims_platform.core import schema
    from claims_platform.core.policy import DecisionPolicy
    from claims_platform.models.reference import REFERENCE_ROWS, reference_drawn_from
    from claims_platform.monitoring.drift import Reference
    from claims_platform.training.config import TrainingConfig
    from claims_platform.training.metrics import evaluate
    from claims_platform.training.split import out_of_time_split
    from claims_platform.training.train import train_model
    from claims_platform_tests.platform_world import SMALL_BUDGET

    window = labelled_year(seed=SEED)
    split = out_of_time_split(window)
    trained = train_model(split.development, TrainingConfig(**SMALL_BUDGET))
    p = trained.predict_proba(split.holdout)
    holdout_kappa = evaluate(split.holdout[schema.CLAIM_STATUS].to_numpy(), p, DecisionPolicy().refer_at)[
        "kappa"
    ]
    month = split.holdout_month  # "YYYY-MM"
    reference = Reference(
        reference_drawn_from(split.holdout, p, REFERENCE_ROWS, seed=int(month.replace("-", "")))
    )
    _progress(
        f"model trained in {trained.fit_seconds:.0f} s on {len(split.development):,} rows; holdout {month}, kappa {holdout_kappa:.3f}"
    )
    return trained, reference, holdout_kappa


def _scored_day(world, trained, day: date, scenario=None) -> ScoredDay:
    from claims_platform.core import schema
    from claims_platform.core.contract import validate_applications
    from claims_platform.monitoring.drift import PREDICTION_COLUMN
    from claims_platform.source.generator import simulate_day

    applications, outcomes = simulate_day(world, day, scenario)
    result = validate_applications(applications, day)
    valid = result.valid.reset_index(drop=True)
    p = trained.predict_proba(valid)
    claims = (
        valid[[schema.APPLICATION_ID]]
        .merge(
            outcomes[[schema.APPLICATION_ID, schema.CLAIM_STATUS]],
            on=schema.APPLICATION_ID,
            how="left",
            validate="one_to_one",
        )[schema.CLAIM_STATUS]
        .to_numpy(dtype="int64")
    )
    return ScoredDay(
        day,
        valid.assign(**{PREDICTION_COLUMN: p}),
        claims,
        result.rows_read,
        len(result.rejected),
        result.duplicate_ids,
    )


def _columns_text(scores: dict[str, list[float]], drifted: dict[str, int], days: int) -> str:
    """``column (drifted on n/N days, score lo–hi)`` for every column that drifted at least once."""
    if not drifted:
        return "none"
    parts = []
    for column, n in sorted(drifted.items(), key=lambda kv: -kv[1]):
        values = scores[column]
        parts.append(f"{column} ({n}/{days} days, score {min(values):.2f}–{max(values):.2f})")
    return "; ".join(parts)


def _evidently_defaults(reference, iid: list[ScoredDay]) -> list[dict]:
    """What Evidently's own choice of test (no method given) would say on the same i.i.d. days.

    Evidently picks p-value tests (KS, chi-squared, z) at 0.05 for a reference of up to 1,000 rows
    and distances (normed Wasserstein, Jensen-Shannon) at 0.1 above: both are measured, on the
    model's REFERENCE_ROWS-row reference and on its first 1,000 rows.
    """
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    from claims_platform.monitoring.drift import for_drift

    out = []
    for size in (1_000, reference.rows):
        tests, flagged, days_flagged = defaultdict(int), defaultdict(int), 0
        for scored in iid:
            day_flagged = False
            for name, kind in reference.kinds.items():
                ref = reference.columns[name].iloc[:size].reset_index(drop=True)
                cur = for_drift(scored.current[name], kind)
                column_type = ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical
                test = get_stattest(ref, cur, column_type, None)
                drifted = bool(test(ref, cur, column_type, None).drifted)
                tests[test.name] += 1
                flagged[test.name] += drifted
                day_flagged = day_flagged or drifted
            days_flagged += day_flagged
        label = f"Evidently's default tests, {size:,}-row reference"
        for name in sorted(tests):
            out.append(
                _m(
                    f"{label}: {name} column tests flagged, i.i.d. days",
                    round(100 * flagged[name] / tests[name], 2),
                    "%",
                    f"for comparison ({flagged[name]}/{tests[name]})",
                )
            )
        out.append(
            _m(
                f"{label}: days with a drifted column",
                round(100 * days_flagged / len(iid), 1),
                "%",
                f"for comparison ({days_flagged}/{len(iid)})",
            )
        )
        _progress(f"{label}: {dict(flagged)} of {dict(tests)}; {days_flagged}/{len(iid)} days")
    return out


def _detection(world, trained, reference, iid: list[ScoredDay]) -> list[dict]:
    from claims_platform.ingestion.verdicts import VOLUME_HISTORY_DAYS, ShareHistory, unusual_rejected_share
    from claims_platform.monitoring.drift import DriftSettings, measure_drift
    from claims_platform.monitoring.episodes import DriftDay, EpisodeRules, drift_episodes
    from claims_platform.source.scenarios import get_scenario

    settings = DriftSettings()
    flags, maxima = {}, {"numerical": (0.0, ""), "categorical": (0.0, ""), "prediction": (0.0, "")}
    for scored in iid:
        result = measure_drift(scored.current, reference, settings, rejected_rows=scored.rejected)
        flags[scored.day.isoformat()] = DriftDay(result.drifted, result.severity)
        # Each test's score as a share of its threshold (calibrated to the day's rows): 1 or more drifts.
        for column in result.columns:
            if column.score / column.threshold > maxima[column.kind][0]:
                maxima[column.kind] = (column.score / column.threshold, f"{column.column} on {scored.day}")
        if (
            result.prediction
            and result.prediction.score / result.prediction.threshold > maxima["prediction"][0]
        ):
            maxima["prediction"] = (result.prediction.score / result.prediction.threshold, f"on {scored.day}")
    flagged = sum(day.drifted for day in flags.values())
    rules = EpisodeRules(alert_days=K)
    alerts = drift_episodes(flags, rules)
    rejected_iid = sum(s.rejected for s in iid)
    out = [
        _m("i.i.d. days measured", len(iid), "days", ">= 180"),
        _m("i.i.d. days flagged as drifted", round(100 * flagged / len(iid), 2), "%", "<= 2%"),
        _m(f"i.i.d. days: alerts (k={K})", len(alerts), "alerts", "0"),
        _m("i.i.d. days: rows rejected by the contract", rejected_iid, "rows", "0"),
        _m(
            "largest numerical-column score / threshold, i.i.d. days",
            round(maxima["numerical"][0], 3),
            "ratio",
            f"normed W1; 1+ drifts ({maxima['numerical'][1]})",
        ),
        _m(
            "largest categorical-column score / threshold, i.i.d. days",
            round(maxima["categorical"][0], 3),
            "ratio",
            f"JS distance; 1+ drifts ({maxima['categorical'][1]})",
        ),
        _m(
            "largest prediction score / threshold, i.i.d. days",
            round(maxima["prediction"][0], 3),
            "ratio",
            f"normed W1; 1+ drifts ({maxima['prediction'][1]})",
        ),
    ]
    normal = {d: f for d, f in flags.items() if d < ONSET.isoformat()}
    assert len(normal) == 20, len(normal)
    expected_blind = {
        "concept_shift": "not detected by input drift: by design (features unchanged), see model_performance"
    }
    for name in SCENARIOS:
        scenario = get_scenario(name, ONSET)
        scenario_flags = dict(normal)
        scores, drifted, rows_read, rejected, thresholds = defaultdict(list), defaultdict(int), 0, 0, []
        unusual, over_share = 0, 0
        before = [s for s in iid if ONSET - timedelta(days=VOLUME_HISTORY_DAYS) <= s.day < ONSET]
        history = ShareHistory(sum(s.rows_read for s in before), sum(s.rejected for s in before))
        for day in _days(ONSET, ONSET + timedelta(days=SCENARIO_DAYS - 1)):
            scored = _scored_day(world, trained, day, scenario)
            rows_read, rejected = rows_read + scored.rows_read, rejected + scored.rejected
            unusual += unusual_rejected_share(scored.rows_read, scored.rejected, history) is not None
            over_share += scored.rejected / scored.rows_read > 0.05  # ingestion's max_rejected_share
            result = measure_drift(scored.current, reference, settings, rejected_rows=scored.rejected)
            scenario_flags[day.isoformat()] = DriftDay(result.drifted, result.severity)
            for column in result.columns:
                scores[column.column].append(column.score)
                drifted[column.column] += column.drifted
            scores["claim_probability"].append(result.prediction.score)
            thresholds.append(result.prediction.threshold)
            drifted["claim_probability"] += result.prediction.drifted
        drifted = {c: n for c, n in drifted.items() if n}
        episodes = [e for e in drift_episodes(scenario_flags, rules) if e.alert_day >= ONSET.isoformat()]
        days_flagged = sum(f.drifted for d, f in scenario_flags.items() if d >= ONSET.isoformat())
        if episodes:
            alert_on = (date.fromisoformat(episodes[0].alert_day) - ONSET).days + 1
            out.append(_m(f"{name}: scenario day of the alert", alert_on, "day", f"<= {K} (1 = onset day)"))
        else:
            out.append(
                _m(
                    f"{name}: scenario day of the alert",
                    f"no alert in {SCENARIO_DAYS} days",
                    "-",
                    expected_blind.get(name, f"<= {K}"),
                )
            )
        out.append(_m(f"{name}: scenario days flagged", f"{days_flagged}/{SCENARIO_DAYS}", "days", None))
        out.append(_m(f"{name}: drifted columns", _columns_text(scores, drifted, SCENARIO_DAYS), "-", None))
        prediction = scores["claim_probability"]
        out.append(
            _m(
                f"{name}: prediction drift score",
                f"{min(prediction):.3f}–{max(prediction):.3f}",
                "normed W1",
                f"drifts at {min(thresholds):.3f}–{max(thresholds):.3f} (by the day's rows)",
            )
        )
        if name == "data_quality":
            out.append(
                _m(
                    f"{name}: rows rejected by the contract",
                    round(100 * rejected / rows_read, 2),
                    "%",
                    f"~3% broken + duplicates (the scenario's rate); a day drifts above {settings.max_rejected_share:.0%}",
                )
            )
            out.append(
                _m(
                    f"{name}: days flagged by ingestion's rejected_share_vs_history",
                    f"{unusual}/{SCENARIO_DAYS}",
                    "days",
                    "a warning and an alert from the onset day, before the drift alert",
                )
            )
            out.append(
                _m(
                    f"{name}: days above ingestion's max_rejected_share (5%)",
                    f"{over_share}/{SCENARIO_DAYS}",
                    "days",
                    None,
                )
            )
        _progress(
            f"{name}: alert {'day ' + str(alert_on) if episodes else 'none'}; drifted {sorted(drifted)}"
        )
    return out


def _month_figures(days: list[ScoredDay], refer_at: float, holdout_kappa: float) -> dict:
    """Estimated vs realised performance, the reserve backtest and the performance check of one month."""
    from claims_platform.core import schema
    from claims_platform.core.policy import ACCEPT, DecisionPolicy
    from claims_platform.monitoring.backtest import (
        PerformanceBounds,
        accepted_outcomes,
        daily_backtest,
        month_backtest,
    )
    from claims_platform.monitoring.estimation import estimate_performance
    from claims_platform.scoring.reserve import forecast_claims
    from claims_platform.training.metrics import evaluate

    policy = DecisionPolicy()
    p = np.concatenate([d.current["claim_probability"].to_numpy() for d in days])
    y = np.concatenate([d.claims for d in days])
    estimate = estimate_performance(p, refer_at, seed=days[0].day.toordinal())
    realised = evaluate(y, p, refer_at)
    scores, forecast, outcomes = [], [], []
    for d in days:
        prob = d.current["claim_probability"].to_numpy()
        decision = policy.decide(prob)
        ids = d.current[schema.APPLICATION_ID].to_numpy()
        scores.append(
            pd.DataFrame(
                {
                    schema.APPLICATION_ID: ids,
                    schema.APPLICATION_DATE: d.day.isoformat(),
                    "claim_probability": prob,
                    "decision": decision,
                }
            )
        )
        forecast.append(
            {
                "day": d.day.isoformat(),
                **forecast_claims(prob[decision == ACCEPT], AVERAGE_CLAIM_COST).as_dict("accepted_"),
            }
        )
        outcomes.append(pd.DataFrame({schema.APPLICATION_ID: ids, schema.CLAIM_STATUS: d.claims}))
    scores_frame, outcomes_frame = (
        pd.concat(scores, ignore_index=True),
        pd.concat(outcomes, ignore_index=True),
    )
    daily = daily_backtest(pd.DataFrame(forecast), scores_frame, outcomes_frame)
    accepted = accepted_outcomes(scores_frame, outcomes_frame).dropna(subset=[schema.CLAIM_STATUS])
    month = month_backtest(daily, accepted["claim_probability"].to_numpy())
    failures = PerformanceBounds().failures(realised["kappa"], holdout_kappa, month.actual_to_expected)
    return {
        "estimate": estimate,
        "realised": realised,
        "daily": daily,
        "month": month,
        "failures": failures,
    }


def _performance(iid: list[ScoredDay], concept: list[ScoredDay], holdout_kappa: float) -> list[dict]:
    from claims_platform.core.policy import DecisionPolicy

    refer_at = DecisionPolicy().refer_at
    by_month = defaultdict(list)
    for scored in iid:
        by_month[scored.day.strftime("%Y-%m")].append(scored)
    out = [_m("model holdout kappa (2025-12)", round(holdout_kappa, 4), "kappa", None)]
    gaps, inside, days_inside, days_total, passed = [], 0, 0, 0, 0
    months = {**by_month, f"{CONCEPT_MONTH[0]:%Y-%m} concept_shift": concept}
    for label, days in months.items():
        figures = _month_figures(days, refer_at, holdout_kappa)
        est, real, month = figures["estimate"], figures["realised"], figures["month"]
        gap = est.kappa - real["kappa"]
        is_concept = "concept" in label
        out += [
            _m(
                f"{label}: kappa estimated",
                round(est.kappa, 4),
                "kappa",
                f"95% range {est.kappa_low:.3f}–{est.kappa_high:.3f}",
            ),
            _m(
                f"{label}: kappa realised",
                round(real["kappa"], 4),
                "kappa",
                "estimate cannot see a concept shift" if is_concept else "within 0.02 of the estimate",
            ),
            _m(
                f"{label}: claim rate estimated / realised",
                f"{est.expected_claim_rate:.4f} / {real['claim_rate']:.4f}",
                "-",
                f"95% range {est.claim_rate_low:.4f}–{est.claim_rate_high:.4f}",
            ),
            _m(
                f"{label}: daily reserve interval coverage",
                round(100 * month.coverage, 1),
                "%",
                f"{month.days_inside}/{month.days} days" + ("" if is_concept else "; 90–99% over all months"),
            ),
            _m(
                f"{label}: accepted claims actual / expected",
                round(month.actual_to_expected, 3),
                "ratio",
                f"{month.actual_claims} vs {month.expected_claims:.0f} (95% {month.claims_low}–{month.claims_high}); band 0.85–1.15",
            ),
            _m(
                f"{label}: model_performance check",
                "passed" if not figures["failures"] else "FAILED: " + "; ".join(figures["failures"]),
                "-",
                "fails by design" if is_concept else "passes",
            ),
        ]
        if not is_concept:
            gaps.append(abs(gap))
            inside += est.kappa_low <= real["kappa"] <= est.kappa_high
            days_inside, days_total = days_inside + month.days_inside, days_total + month.days
            passed += not figures["failures"]
        _progress(
            f"{label}: kappa est {est.kappa:.3f} real {real['kappa']:.3f}; coverage {month.coverage:.0%}; "
            f"A/E {month.actual_to_expected:.2f}; {figures['failures'] or 'passed'}"
        )
    n = len(by_month)
    out += [
        _m(
            f"largest gap between estimated and realised kappa, {n} i.i.d. months",
            round(max(gaps), 4),
            "kappa",
            "<= 0.02",
        ),
        _m("realised kappa inside the estimate's 95% range", f"{inside}/{n}", "months", None),
        _m(
            f"daily reserve interval coverage, {n} i.i.d. months",
            round(100 * days_inside / days_total, 1),
            "%",
            f"90–99% ({days_inside}/{days_total} days)",
        ),
        _m("i.i.d. months passing the model_performance check", f"{passed}/{n}", "months", f"{n}/{n}"),
    ]
    return out


def quality() -> list[dict]:
    """Measurements 1-3 (detection, estimated vs realised, reserve backtest)."""
    from claims_platform.source.generator import World
    from claims_platform.source.scenarios import get_scenario

    started = time.perf_counter()
    trained, reference, holdout_kappa = _train()
    world = World.from_seed(SEED)
    iid = [_scored_day(world, trained, day) for day in _days(*IID_DAYS)]
    concept_scenario = get_scenario("concept_shift", CONCEPT_MONTH[0])
    concept = [_scored_day(world, trained, day, concept_scenario) for day in _days(*CONCEPT_MONTH)]
    _progress(f"{len(iid)} i.i.d. days and {len(concept)} concept-shift days scored")
    out = _detection(world, trained, reference, iid)
    out += _evidently_defaults(reference, iid[:EVIDENTLY_DEFAULT_DAYS])
    out += _performance(iid, concept, holdout_kappa)
    out.append(_m("quality part wall time", round(time.perf_counter() - started, 1), "s", None))
    return out


# ------------------------------------------------------------------------------------------ timing


def _job_selection(world, job: str) -> str:
    """The asset keys a job materializes, for ``dagster asset materialize --select``."""
    return ",".join(
        sorted(k.to_user_string() for k in world.defs.resolve_job_def(job).asset_layer.selected_asset_keys)
    )


def _explain(rows: str) -> str:
    """Run config of the nightly run explaining ``rows`` (application_scores' ``explain``)."""
    return json.dumps({"ops": {"application_scores": {"config": {"explain": rows}}}})


def timing() -> list[dict]:
    """Measurement 4: a year of drift reports as one run; a nightly run with and without the drift step."""
    from bench.bench_scoring import (
        NIGHTLY_SELECTION,
        SCORED,
        _scores_range,
        _seed_model_in_force,
        _subprocess_seconds,
    )
    from claims_platform.models.assets import model_in_force_record
    from claims_platform_tests.platform_world import PlatformWorld

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        world = PlatformWorld(home)
        world.simulate(date(2025, 1, 1), date.fromisoformat(SCORED[1]))
        assert world.run_range("daily_ingestion", "2025-01-01", SCORED[1]).success
        decision = world.train("2025-03-01").output_for_node("champion_decision")
        record = model_in_force_record(decision, "2025-03-01")
        _seed_model_in_force(world, {**record, "reason": "seeded by the benchmark"})
        scoring_s = _scores_range(world, *SCORED)
        _progress(
            f"world built and the year scored in {time.perf_counter() - started:.0f} s (scoring {scoring_s:.0f} s)"
        )

        evidently = home / "evidently"
        env = {
            **os.environ,
            "CLAIMS_HOME": str(home),
            "DAGSTER_HOME": str(Path(tmp) / "dagster_home"),
            "CLAIMS_EVIDENTLY_WORKSPACE": str(evidently),
            "DO_NOT_TRACK": "1",
        }
        Path(env["DAGSTER_HOME"]).mkdir()
        dagster = str(Path(sys.executable).parent / "dagster")
        materialize = [dagster, "asset", "materialize", "-m", "claims_platform.definitions", "--select"]
        nightly_selection = _job_selection(world, "nightly_scoring")
        report_selection = _job_selection(world, "drift_reports")
        assert set(nightly_selection.split(",")) == set(NIGHTLY_SELECTION.split(",")) | {
            "applications_drift"
        }, nightly_selection

        # (b) one nightly run with and without the drift decision, the day's report run, the trivial run;
        #     the Evidently workspace holds one snapshot (the day re-reported), as in a platform's first nights.
        runs = {
            "nightly": [*materialize, nightly_selection, "--partition", NIGHTLY_DAY],
            "nightly_without_drift": [*materialize, NIGHTLY_SELECTION, "--partition", NIGHTLY_DAY],
            # Reasons (TreeSHAP) off, and for every row: what the default (referrals and declines) costs.
            "nightly_without_reasons": [
                *materialize,
                nightly_selection,
                "--partition",
                NIGHTLY_DAY,
                "--config-json",
                _explain("none"),
            ],
            "nightly_reasons_for_all": [
                *materialize,
                nightly_selection,
                "--partition",
                NIGHTLY_DAY,
                "--config-json",
                _explain("all"),
            ],
            "report": [*materialize, report_selection, "--partition", NIGHTLY_DAY],
            "trivial": [
                dagster,
                "asset",
                "materialize",
                "-m",
                "bench.trivial_defs",
                "--select",
                "trivial",
                "--partition",
                NIGHTLY_DAY,
            ],
        }
        in_process_env = {**env, "BENCH_TRIVIAL_IN_PROCESS": "1"}
        _subprocess_seconds(
            runs["nightly"], env
        )  # warm: file caches; the day's decision exists for its report
        _subprocess_seconds(runs["report"], env)
        load_nightly = _load()
        times = defaultdict(list)
        for _ in range(REPEATS):
            for name, args in runs.items():
                times[name].append(_subprocess_seconds(args, env))
            times["trivial_in_process"].append(_subprocess_seconds(runs["trivial"], in_process_env))
        load_after_nightly = _load()

        # (a) a year: the decisions (nightly_scoring's drift step) then the reports, each ONE run.
        load_year = _load()
        year_range = ["--partition-range", f"{SCORED[0]}...{SCORED[1]}"]
        decisions_s = _subprocess_seconds([*materialize, "applications_drift", *year_range], env)
        year_s = _subprocess_seconds([*materialize, report_selection, *year_range], env)
        folder = home / "storage" / "applications_drift_report"
        complete = [
            d
            for d in folder.iterdir()
            if all((d / f).exists() for f in ("report.html", "snapshot.json.gz", "summary.json"))
        ]
        drifted = sum(bool(json.loads((d / "summary.json").read_text()).get("drifted")) for d in complete)
        index = evidently / "claims_platform_index.json"
        snapshots = len(json.loads(index.read_text())["days"]) if index.exists() else 0
        html_mb = statistics.median((d / "report.html").stat().st_size for d in complete) / 1e6
        # A day's stored report as the issue counts it: the HTML and the JSON snapshot together.
        day_kb = [
            sum((d / f).stat().st_size for f in ("report.html", "snapshot.json.gz")) / 1e3 for d in complete
        ]
        # Every stored file of the year: the days' folders and the library they share (_shared/, once).
        total_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
        workspace_mb = sum(f.stat().st_size for f in evidently.rglob("*") if f.is_file()) / 1e6
        _progress(
            f"365 decisions in {decisions_s:.0f} s, 365 reports in {year_s:.0f} s (load {load_year}); "
            f"{len(complete)} stored, {snapshots} snapshots"
        )

        # (b') the day's report run again, now that the workspace holds a year of snapshots.
        load_full = _load()
        times["report_year_workspace"] = [_subprocess_seconds(runs["report"], env) for _ in range(3)]
        median = {k: statistics.median(v) for k, v in times.items()}
        spread = {k: f"{min(v):.2f}–{max(v):.2f} s over {len(v)}" for k, v in times.items()}
        _progress(
            f"medians {median} (load {load_nightly} before, {load_after_nightly} after; {load_full} before the last)"
        )
        out += [
            _m(
                "load average before the nightly runs",
                load_nightly,
                "-",
                f"1-minute, 2 cores ({load_after_nightly} after)",
            ),
            _m(
                "nightly_scoring run, drift decision included (subprocess, median)",
                round(median["nightly"], 2),
                "s",
                spread["nightly"],
            ),
            _m(
                "the same without applications_drift (median)",
                round(median["nightly_without_drift"], 2),
                "s",
                spread["nightly_without_drift"],
            ),
            _m(
                "trivial one-asset run, Dagster's default executor (median)",
                round(median["trivial"], 2),
                "s",
                spread["trivial"],
            ),
            _m(
                "trivial one-asset run, in-process executor (median)",
                round(median["trivial_in_process"], 2),
                "s",
                spread["trivial_in_process"],
            ),
            _m(
                "the same without reasons (explain: none; median)",
                round(median["nightly_without_reasons"], 2),
                "s",
                spread["nightly_without_reasons"],
            ),
            _m(
                "nightly with reasons for referrals and declines (the default) / without reasons",
                round(median["nightly"] / median["nightly_without_reasons"], 2),
                "x",
                "<= 1.2",
            ),
            _m(
                "nightly with reasons for every row (explain: all) / without reasons",
                round(median["nightly_reasons_for_all"] / median["nightly_without_reasons"], 2),
                "x",
                f"info; {spread['nightly_reasons_for_all']}",
            ),
            _m(
                "nightly with drift decision / without",
                round(median["nightly"] / median["nightly_without_drift"], 2),
                "x",
                "<= 1.3",
            ),
            _m(
                "nightly with drift decision / trivial",
                round(median["nightly"] / median["trivial"], 2),
                "x",
                "<= 1.3",
            ),
            _m(
                "nightly with drift decision / trivial in-process",
                round(median["nightly"] / median["trivial_in_process"], 2),
                "x",
                "<= 1.3",
            ),
            _m(
                "the day's drift_reports run, off the critical path (median)",
                round(median["report"], 2),
                "s",
                spread["report"] + "; workspace of 1 snapshot",
            ),
            _m("load average before the year", load_year, "-", "1-minute, 2 cores"),
            _m(
                "365 days of applications_drift (decisions) as one run (subprocess)",
                round(decisions_s, 1),
                "s",
                None,
            ),
            _m(
                "365 days of applications_drift_report as one run (subprocess)",
                round(year_s, 1),
                "s",
                "<= 120 s on 2 cores",
            ),
            _m(
                "day folders with report.html + snapshot.json.gz + summary.json", len(complete), "days", "365"
            ),
            _m("snapshots in the Evidently workspace", snapshots, "snapshots", "365"),
            _m("report.html, one day (median)", round(html_mb, 3), "MB", "was 3.69 MB (the library inlined)"),
            _m(
                "a day's stored report, HTML + JSON snapshot: largest day of the year",
                round(max(day_kb), 1),
                "KB",
                f"<= 300 KB; median {statistics.median(day_kb):.1f} KB",
            ),
            _m(
                "stored report files, a year (the days and their shared library)",
                round(total_mb, 1),
                "MB",
                "was 1,379 MB",
            ),
            _m("Evidently workspace, a year", round(workspace_mb), "MB", None),
            _m("days drifted in that year (model trained for 2025-03)", drifted, "days", None),
            _m(
                "load average before the report runs on a year's workspace",
                load_full,
                "-",
                "1-minute, 2 cores",
            ),
            _m(
                "the day's drift_reports run, workspace of 365 snapshots (median)",
                round(median["report_year_workspace"], 2),
                "s",
                spread["report_year_workspace"],
            ),
            _m("load average after the timing", _load(), "-", "1-minute, 2 cores"),
        ]
    return out


def run() -> list[dict]:
    """All monitoring measurements (quality first: it is independent of the machine's load)."""
    load = _load()
    out = [_m("load average at start", load, "-", "1-minute, 2 cores")]
    out += quality()
    out += timing()
    return out


if __name__ == "__main__":
    part = sys.argv[1] if len(sys.argv) > 1 else "all"
    for measurement in {"quality": quality, "timing": timing}.get(part, run)():
        print(measurement)
