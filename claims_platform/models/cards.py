"""Where a version's model card lives: written to the MLflow run that trained it (the version's files),
linked from Dagster, read back by ``claims-platform model-card`` (the card itself: :mod:`.model_card`)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from claims_platform.core import links
from claims_platform.models.model_card import (
    CARD_HTML,
    CARD_MARKDOWN,
    CardFacts,
    card_html,
    card_markdown,
    card_sections,
    card_title,
)
from claims_platform.models.registry import ModelRegistry

CALIBRATION_PLOT = "plots/calibration.png"


class ModelCardMissing(LookupError):
    """The version has no model card (it was registered before versions carried one)."""


def card_facts(
    record: Mapping[str, Any], decision: Mapping[str, Any] | None, urls: Mapping[str, str]
) -> CardFacts:
    """The card's facts from a candidate's record (its ``card_facts`` entry) and the decision that judged it."""
    stored = record["card_facts"]
    spec = {"features": stored["features"], "protected": stored["protected"]}
    return CardFacts(record, stored["lineage"], spec, tuple(stored["auc_interval"]), decision, urls)


def write_model_card(
    registry: ModelRegistry,
    record: Mapping[str, Any],
    *,
    decision: Mapping[str, Any] | None = None,
    calibration_png: bytes | None = None,
) -> str:
    """Write the version's card (Markdown and HTML) to the run that trained it; the link to open it.

    ``calibration_png`` is the curve the candidate plotted; when not given (the decision rewriting a card),
    it is read back from the run's ``plots/calibration.png``.
    """
    client, run_id = registry.client(), record["mlflow_run_id"]
    experiment_id = client.get_run(run_id).info.experiment_id
    urls = {
        "MLflow run": registry.run_url(run_id, experiment_id),
        "Dagster run that trained it": links.dagster_run_url(record["trained_by_dagster_run_id"]),
    }
    if calibration_png is None:
        calibration_png = _run_file(client, run_id, CALIBRATION_PLOT)
    sections = card_sections(card_facts(record, decision, urls))
    title = card_title(record)
    client.log_text(run_id, card_markdown(sections, title), CARD_MARKDOWN)
    images = {"calibration": calibration_png} if calibration_png else {}
    client.log_text(run_id, card_html(sections, title, images), CARD_HTML)
    return card_url(registry, run_id, experiment_id)


def card_url(registry: ModelRegistry, run_id: str, experiment_id: str) -> str:
    """The card's page in the MLflow UI: the run's artifact view, opened on the HTML card."""
    return f"{registry.run_url(run_id, experiment_id)}/artifacts/{CARD_HTML}"


def read_model_card(registry: ModelRegistry, version: int, *, as_html: bool = False) -> str:
    """The card of ``version`` as written (Markdown, or the HTML page)."""
    run_id = registry.client().get_model_version(registry.model_name, str(version)).run_id
    text = _run_file(registry.client(), run_id, CARD_HTML if as_html else CARD_MARKDOWN)
    if text is None:
        raise ModelCardMissing(
            f"version {version} of {registry.model_name} has no model card (registered before versions carried one); "
            "retrain its month to write one"
        )
    return text.decode("utf-8")


def _run_file(client, run_id: str, path: str) -> bytes | None:
    """A file of the run's artifacts, or None when the run has none at ``path``."""
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="claims_card_") as folder:
        try:
            local = client.download_artifacts(run_id, path, folder)
        except (MlflowException, OSError):
            return None
        return Path(local).read_bytes()
