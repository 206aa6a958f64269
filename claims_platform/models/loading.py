"""Load a registered model's scorer from its files, once per process.

Nightly scoring and the champion decision read a version's artifacts directly (no MLflow import,
no per-value schema enforcement on rows that already passed the data contract).
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=32)
def load_scorer_cached(model_uri: str):
    """The model stored at ``model_uri`` ready to score (loaded once per process: versions are immutable)."""
    from claims_platform.models.runtime import load_scorer

    return load_scorer(model_uri)
