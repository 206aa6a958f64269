"""The training key: what a candidate's model depends on, and when a month's last candidate is reused."""

import pytest

from claims_platform.training.config import TrainingConfig
from claims_platform.training.reuse import code_digest, reusable, reused_record, training_key

BASE = {
    "fingerprint": "70ca9e79b9eb6bf5",
    "budget": TrainingConfig(n_trials=6, warm_start_trials=2, tuning_rows=30_000),
    "warm_start": {"learning_rate": 0.05, "num_leaves": 31},
    "model_name": "claims_classifier",
    "code": "0123456789abcdef",
}
TRAINED = {"status": "trained", "version": 4, "training_key": training_key(**BASE), "mlflow_run_id": "abc"}


def test_the_key_is_stable_and_ignores_the_time_guard():
    assert training_key(**BASE) == training_key(
        **{**BASE, "warm_start": dict(reversed(BASE["warm_start"].items()))}
    )
    guarded = TrainingConfig(n_trials=6, warm_start_trials=2, tuning_rows=30_000, max_tuning_seconds=5.0)
    assert training_key(**{**BASE, "budget": guarded}) == training_key(**BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"fingerprint": "70ca9e79b9eb6bf6"},
        {"budget": TrainingConfig(n_trials=7, warm_start_trials=2, tuning_rows=30_000)},
        {"budget": TrainingConfig(n_trials=6, warm_start_trials=2, tuning_rows=30_000, seed=1)},
        {"warm_start": None},
        {"warm_start": {"learning_rate": 0.06, "num_leaves": 31}},
        {"model_name": "claims_classifier_eu"},
        {"code": "fedcba9876543210"},
        {
            "budget": TrainingConfig(
                n_trials=6, warm_start_trials=2, tuning_rows=30_000, protected=(("gender", "monitored"),)
            )
        },
    ],
    ids=[
        "training set",
        "budget",
        "recipe",
        "cold start",
        "warm start",
        "model name",
        "code",
        "protected columns",
    ],
)
def test_anything_the_model_depends_on_changes_the_key(change):
    assert training_key(**{**BASE, **change}) != training_key(**BASE)


def test_only_a_trained_candidate_with_the_same_key_is_reused():
    key = training_key(**BASE)
    assert reusable(TRAINED, key) is TRAINED
    assert reusable(TRAINED, training_key(**{**BASE, "fingerprint": "0"})) is None
    assert reusable({**TRAINED, "status": "failed", "version": None}, key) is None
    assert (
        reusable({k: v for k, v in TRAINED.items() if k != "training_key"}, key) is None
    )  # recorded before keys
    assert reusable(None, key) is None


def test_a_reused_record_names_the_run_that_trained_the_model_even_when_reused_twice():
    first = reused_record(TRAINED, dagster_run_id="run-2", earlier_run_id="run-1")
    assert first["version"] == 4 and first["reused"]["trained_by_dagster_run_id"] == "run-1"
    second = reused_record(first, dagster_run_id="run-3", earlier_run_id="run-2")
    assert second["reused"] == {**first["reused"], "by_dagster_run_id": "run-3"}
    assert second["trained_by_dagster_run_id"] == "run-1"


def test_an_edited_source_file_changes_the_code_digest(tmp_path, monkeypatch):
    import claims_platform.training.reuse as reuse

    (tmp_path / "training").mkdir()
    recipe = tmp_path / "training" / "train.py"
    recipe.write_text("N_TRIALS = 16\n")
    monkeypatch.setattr(reuse, "PACKAGE_DIR", tmp_path)
    digests = []
    for text in ("N_TRIALS = 16\n", "N_TRIALS = 17\n", "N_TRIALS = 16\n"):
        recipe.write_text(text)
        code_digest.cache_clear()
        digests.append(code_digest())
    code_digest.cache_clear()
    assert digests[0] != digests[1] and digests[0] == digests[2]
