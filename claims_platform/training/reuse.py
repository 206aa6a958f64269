"""Training a month again on exactly what it was trained on before reuses the earlier candidate.

Training is deterministic (docs/models.md): the same training set, budget, warm start and code give
the same model. An off-cycle retrain whose later label cutoff brought no newly labelled month — the
drift alert's usual case, a few days into a month whose outcomes are not known yet — would spend a
training on a copy of the month's last version and register it as a new one. `candidate_model`
reuses that candidate instead, when its **training key** is this run's:

- the training set's fingerprint (its content: rows, columns, values),
- the budget (trials, rows, boosting rounds; not the time guard, which decides no model) and the
  recipe's fixed settings (``TrainingConfig``),
- the warm start's hyperparameters,
- the registered model's name,
- the code: a digest of the package's source files and the versions of the libraries that fit and
  calibrate (so an edited, uncommitted recipe is not mistaken for the committed one).

Only a trained candidate is reused, and only while its version is still in the registry; run config
``reuse_unchanged: false`` trains anyway. No I/O here but reading the package's own sources;
the asset reads the instance and MLflow.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from claims_platform.training.config import TrainingConfig

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# What fits, tunes and calibrates a model: a new version of any of these may give another model.
FITTING_LIBRARIES = ("lightgbm", "optuna", "scikit-learn", "numpy", "pandas", "scipy")


@functools.cache
def code_digest() -> str:
    """A digest of the package's source files and the fitting libraries' versions (once per process)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for name in FITTING_LIBRARIES:
        try:
            digest.update(f"{name}=={version(name)}\0".encode())
        except PackageNotFoundError:
            digest.update(f"{name} missing\0".encode())
    return digest.hexdigest()[:16]


def training_key(
    *,
    fingerprint: str,
    budget: TrainingConfig,
    warm_start: Mapping[str, Any] | None,
    model_name: str,
    code: str,
) -> str:
    """What a candidate's model depends on, as one digest (equal keys: the same model)."""
    recipe = {k: v for k, v in asdict(budget).items() if k != "max_tuning_seconds"}  # a guard, not a budget
    facts = {
        "fingerprint": fingerprint,
        "budget": recipe,
        "warm_start": warm_start,
        "model_name": model_name,
        "code": code,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def reusable(earlier: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    """``earlier`` (the month's last candidate record) if it can stand for a candidate with ``key``.

    It must have been trained (a failure is never reused: it may have been the time guard or an
    outage) and recorded with the same training key.
    """
    if not earlier or earlier.get("status") != "trained" or earlier.get("version") is None:
        return None
    return earlier if earlier.get("training_key") == key else None


def reused_record(earlier: Mapping[str, Any], *, dagster_run_id: str, earlier_run_id: str) -> dict[str, Any]:
    """The record of a candidate that reuses ``earlier``: the same model, saying where it was trained."""
    record = {k: v for k, v in earlier.items() if k != "reused"}
    record["reused"] = {
        "by_dagster_run_id": dagster_run_id,
        "trained_by_dagster_run_id": earlier.get("trained_by_dagster_run_id") or earlier_run_id,
        "reason": "training set, budget, warm start and code unchanged",
    }
    record["trained_by_dagster_run_id"] = record["reused"]["trained_by_dagster_run_id"]
    return record


def reused_outcome(model_name: str, version: int, fingerprint: str, trained_by: str) -> str:
    """An MLflow run's outcome when it reused an earlier candidate (its description's last paragraph)."""
    return (
        f"nothing trained: the training set (fingerprint `{fingerprint}`), budget, warm start and code are those "
        f"Dagster run {trained_by[:8]} trained `{model_name}` version {version} on, so training would give the same "
        f"model. Version {version} is this month's candidate again; the champion decision compares it with the incumbent."
    )
