"""What keeping ``gender`` out of the model costs, on the same holdout (issue: protected characteristics).

One labelled year of the bench world (December the holdout), two models with the same budget and seed:
the default declaration (``gender`` excluded) and ``gender`` as a feature (``monitored``). Both are
judged on the same holdout rows at the default decision policy: kappa (p >= refer_at), AUC, the value
per application of the policy's decisions (paired bootstrap of the difference, as promotion judges it),
and the decline and referral rates by gender, which the excluded model cannot set by gender directly.
The budget is the monitoring bench's (2 trials, 150 rounds): the comparison is of the features, and
a full budget would take ~5 minutes a model.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

SEED = 20250101


def _progress(message: str) -> None:
    print(f"[bench_protected] {message}", file=sys.stderr, flush=True)


def _m(name: str, value, unit: str, target: str | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target}


def run() -> list[dict]:
    from bench.bench_training import labelled_year
    from claims_platform.core import schema
    from claims_platform.core.policy import DecisionPolicy
    from claims_platform.core.protected import DEFAULT_PROTECTED, MONITORED
    from claims_platform.models.champion import paired_kappa_comparison, paired_value_comparison
    from claims_platform.models.importance import gain_shares
    from claims_platform.training.config import TrainingConfig
    from claims_platform.training.metrics import evaluate
    from claims_platform.training.split import out_of_time_split
    from claims_platform.training.train import train_model
    from claims_platform_tests.platform_world import SMALL_BUDGET

    load = round(os.getloadavg()[0], 2)
    parts = out_of_time_split(labelled_year(seed=SEED))
    y = parts.holdout[schema.CLAIM_STATUS].to_numpy()
    gender = parts.holdout["gender"].to_numpy()
    policy = DecisionPolicy()
    declarations = {
        "excluded": DEFAULT_PROTECTED,
        "a feature": {**DEFAULT_PROTECTED, "gender": MONITORED},
    }
    p, metrics, decisions, shares = {}, {}, {}, {}
    for name, declared in declarations.items():
        started = time.perf_counter()
        config = TrainingConfig(**SMALL_BUDGET, protected=tuple(sorted(declared.items())))
        trained = train_model(parts.development, config)
        p[name] = trained.predict_proba(parts.holdout)
        metrics[name] = evaluate(y, p[name], policy.refer_at)
        decisions[name] = policy.decide(p[name])
        shares[name] = gain_shares(trained.booster, trained.spec["features"]).get("gender", 0.0)
        _progress(
            f"gender {name}: {len(trained.spec['features'])} features, trained in {time.perf_counter() - started:.0f} s, "
            f"kappa {metrics[name]['kappa']:.4f}, AUC {metrics[name]['roc_auc']:.4f}"
        )
    value = paired_value_comparison(policy, y, p["excluded"], p["a feature"])
    kappa = paired_kappa_comparison(y, p["excluded"] >= policy.refer_at, p["a feature"] >= policy.refer_at)

    def rates(name: str) -> str:
        parts_text = []
        for level in (0, 1):
            rows = gender == level
            decided = decisions[name][rows]
            parts_text.append(
                f"gender {level}: decline {np.mean(decided == 'decline'):.1%}, refer {np.mean(decided == 'refer'):.1%}, "
                f"claims {y[rows].mean():.1%} ({rows.sum():,} rows)"
            )
        return "; ".join(parts_text)

    return [
        _m("load average before", load, "-", "1-minute, 2 cores"),
        _m("holdout rows (2025-12, the same for both models)", len(y), "rows", None),
        _m(
            "kappa, gender excluded",
            round(metrics["excluded"]["kappa"], 4),
            "-",
            f"with gender: {metrics['a feature']['kappa']:.4f}",
        ),
        _m(
            "kappa, excluded minus with gender (paired bootstrap)",
            round(kappa.difference, 4),
            "-",
            f"95% interval {kappa.low:+.4f} to {kappa.high:+.4f}",
        ),
        _m(
            "AUC, gender excluded",
            round(metrics["excluded"]["roc_auc"], 4),
            "-",
            f"with gender: {metrics['a feature']['roc_auc']:.4f}",
        ),
        _m(
            "value per application, excluded minus with gender (paired bootstrap)",
            round(value.difference, 2),
            "GBP",
            f"95% interval {value.low:+.2f} to {value.high:+.2f}; expected cost is its negative "
            f"(excluded {value.candidate:.2f}, with gender {value.incumbent:.2f} per application)",
        ),
        _m(
            "gender's share of the model's gain when it is a feature",
            round(100 * shares["a feature"], 2),
            "%",
            None,
        ),
        _m("decisions by gender, gender excluded", rates("excluded"), "-", None),
        _m("decisions by gender, gender a feature", rates("a feature"), "-", None),
    ]
