"""The model card is written from what was measured: each figure in it is the record's, its limits follow
from the same figures, and its comparison section appears once a decision has judged the version."""

from __future__ import annotations

from claims_platform.core.policy import DecisionPolicy
from claims_platform.models.model_card import CardFacts, card_html, card_markdown, card_sections, card_title


def _group(column, group, applications, auc, gap=0.0, flag=""):
    return {
        "column": column, "group": group, "applications": applications,
        "decline_rate": 0.14, "decline_low": 0.13, "decline_high": 0.15,
        "claim_rate": 0.15, "claim_low": 0.14, "claim_high": 0.16,
        "mean_probability": 0.15, "expected_low": 0.145, "expected_high": 0.155,
        "auc": auc, "calibration_vs_rest": gap, "flag": flag,
    }  # fmt: skip


RECORD = {
    "model_name": "claims_classifier", "version": 4, "training_month": "2025-05", "holdout_month": "2025-04",
    "holdout_rows": 36_000, "policy": DecisionPolicy().as_dict(), "calibration": "isotonic",
    "calibration_level_sd": 0.004, "reference_rows": 3000, "gate": {"passed": True, "failures": []},
    "holdout_metrics": {
        "kappa": 0.8, "kappa_low": 0.79, "kappa_high": 0.81, "roc_auc": 0.96, "brier": 0.03, "log_loss": 0.12,
        "ece": 0.002, "claim_rate": 0.15, "mean_probability": 0.15, "accepted_actual_claims": 600.0,
        "accepted_expected_claims": 610.0, "accepted_claims_sd": 20.0,
    },
    "importance": {"method": "mean |TreeSHAP| on the holdout (log-odds)", "rows": 2000,
                   "shares": {"previous_claim_rate": 0.3, "age": 0.01, "income": 0.69}},
    "fairness": {
        "tolerance": {"calibration": 0.02, "decline_rate": 0.05},
        "flags": ["location Q: claims +4.0% against expected, compared with the rest"],
        "groups": [_group("gender", "0", 18_000, 0.96, -0.009), _group("gender", "1", 18_000, 0.96, 0.009),
                   _group("location", "Q", 150, None, 0.04, "claims +4.0% against expected, compared with the rest")],
    },
}  # fmt: skip
LINEAGE = {
    "training_set_window_first_day": "2024-06-01", "training_set_window_last_day": "2025-05-31",
    "training_set_label_cutoff": "2025-06-01T00:00:00", "training_set_training_rows": "400000",
    "training_set_fingerprint": "abc123",
}  # fmt: skip
SPEC = {
    "features": ["age", "income", "previous_claim_rate"],
    "protected": {"gender": "excluded", "age": "monitored"},
}
DECISION = {
    "training_month": "2025-05", "outcome": "promoted", "reason": "the candidate is better",
    "incumbent": {"version": 3}, "holdout": {"rows": 36_000},
    "comparison": {"metric": "value per application", "candidate": 1810.5, "incumbent": 1800.1, "difference": 10.4,
                   "low": 2.0, "high": 18.0, "confidence": 0.95},
    "importance": {"top": [{"feature": "income", "rank": 1, "share": 0.69, "incumbent_rank": 2, "moved": 1}]},
}  # fmt: skip


def _card(decision=None) -> str:
    facts = CardFacts(
        RECORD, LINEAGE, SPEC, (0.955, 0.965), decision, {"MLflow run": "http://mlflow/#/runs/1"}
    )
    return card_markdown(card_sections(facts), card_title(RECORD))


def test_the_card_carries_the_measured_figures_and_the_limits_they_imply():
    card = _card()
    assert card.startswith("# Model card: claims_classifier version 4\n")
    assert "| kappa at the policy's screen | 0.800 | 0.790–0.810 |" in card
    assert "| AUC | 0.960 | 0.955–0.965 |" in card
    assert "600 / 610.0 = 0.984 | 0.919–1.048 |" in card  # (600 ± 1.96·20) / 610
    assert "2024-06-01 to 2025-05-31; label cutoff 2025-06-01T00:00:00" in card and "400,000" in card
    assert "Excluded (never a feature" in card and "`gender`" in card
    limits = card.split("## Known limits")[1].split("## ")[0]
    assert "1 group(s): location Q" in limits  # no AUC for it: too small
    assert "gender 0 -0.9 points, gender 1 +0.9 points" in limits
    assert "Flagged on the holdout: location Q" in limits
    assert "Not judged yet" in card.split("## Comparison with the champion")[1]


def test_the_decision_writes_the_comparison_and_how_the_ranking_moved():
    section = _card(DECISION).split("## Comparison with the champion")[1]
    assert "**promoted**; the candidate is better." in section
    assert "Judged against version 3 on the same holdout (36,000 rows), by value per application" in section
    assert "| 1 | income | 69.0% | 2 | +1 |" in section


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    record = {**RECORD, "model_name": "<claims>"}
    facts = CardFacts(
        record, LINEAGE, SPEC, (0.955, 0.965), DECISION, {"MLflow run": "http://mlflow/#/runs/1"}
    )
    page = card_html(card_sections(facts), card_title(record), {"calibration": b"\x89PNG..."})
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert "&lt;claims&gt;" in page and "<claims>" not in page
    assert 'src="data:image/png;base64,' in page and '<a href="http://mlflow/#/runs/1">' in page
