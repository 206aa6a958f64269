"""Load a registered model's scorer from its files, with the runtime code shipped inside it, once per process.

Nightly scoring and the champion decision read a version's artifacts directly: no MLflow import
(it costs a run process about a second) and no per-value signature enforcement on rows that already
passed the platform's data contract. The computation is the model's OWN runtime file (artifact
``runtime``), imported by path under a name unique to its content — exactly as the model's pyfunc
wrapper does — never today's ``claims_platform.training.runtime``: a backfill of an old day scores with
the code that model was validated with.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from claims_platform.core.services import names_outages
from claims_platform.models.importance import GAIN_METHOD, IMPORTANCE_ARTIFACT, gain_shares

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

RUNTIME_ARTIFACT = "runtime"  # the artifact key of the shipped runtime file (also in pyfunc.py)
REFERENCE_ARTIFACT = "reference"  # the drift reference sample (also in packaging.py)
RUNTIME_MODULE_PREFIX = "claims_model_runtime_"


class ShippedScorer(Protocol):
    """What every shipped runtime's ``scorer_from_artifacts`` returns."""

    def predict(self, frame: pd.DataFrame, check: bool = False) -> np.ndarray: ...


class MissingRuntimeError(LookupError):
    """The model at a URI ships no runtime file (registered before models carried their own code)."""


class MissingReferenceError(LookupError):
    """The model at a URI ships no drift reference sample (registered before models carried one)."""


def runtime_module_name(source: bytes) -> str:
    """The module name of a runtime file: ``claims_model_runtime_`` + the first 12 hex of its sha256."""
    return RUNTIME_MODULE_PREFIX + hashlib.sha256(source).hexdigest()[:12]


def import_runtime(path: str | Path) -> ModuleType:
    """The runtime file at local ``path`` as a module named after its content (:func:`runtime_module_name`).

    The same file imported twice is one module; two different files never share one, whatever
    ``sys.path`` or ``sys.modules`` hold. The pyfunc wrapper (``pyfunc.import_runtime``) names
    modules the same way, so the two loaders share a version's module in one process.
    """
    name = runtime_module_name(Path(path).read_bytes())
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _local_runtime_copy(source: bytes) -> Path:
    """A local file holding ``source``, content-addressed under the temp folder (written once, atomically)."""
    folder = Path(tempfile.gettempdir()) / "claims_model_runtimes"
    folder.mkdir(exist_ok=True)
    path = folder / f"{runtime_module_name(source)}.py"
    if not path.exists() or path.read_bytes() != source:
        handle, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
        with os.fdopen(handle, "wb") as out:
            out.write(source)
        os.replace(partial, path)
    return path


def is_local_uri(model_uri: str) -> bool:
    """Whether ``model_uri`` is a folder on this machine (a path or ``file://``), read in place."""
    from urllib.parse import urlparse

    return urlparse(model_uri).scheme.lower() in ("", "file")


@contextmanager
def local_model_folder(model_uri: str) -> Iterator[str]:
    """A local folder holding the model at ``model_uri``, for the duration of the block.

    One way for every store: a local folder is read in place; anything else (``s3://`` on AWS or an
    S3-compatible endpoint, ``mlflow-artifacts:/`` through the tracking server, ...) is downloaded by
    MLflow's own artifact repository into a temporary folder, removed afterwards. The S3 endpoint is
    the platform's one setting (``CLAIMS_S3_ENDPOINT_URL``), the tracking server ``MLFLOW_TRACKING_URI``.
    """
    if is_local_uri(model_uri):
        from urllib.parse import unquote, urlparse

        yield unquote(urlparse(model_uri).path) if model_uri.startswith("file:") else model_uri.rstrip("/")
        return
    from mlflow.artifacts import download_artifacts

    from claims_platform.core import settings

    settings.configure_service_clients()
    with tempfile.TemporaryDirectory(prefix="claims_model_") as folder:
        yield download_artifacts(
            artifact_uri=model_uri.rstrip("/"),
            dst_path=folder,
            tracking_uri=os.environ.get(settings.ENV_MLFLOW_TRACKING_URI) or None,
        )


def _artifact_files(folder: str, needed: str, missing: Exception) -> dict[str, Path]:
    """Each pyfunc artifact of the model in local ``folder`` (key -> its file); ``missing`` is raised
    when the model ships no ``needed`` artifact."""
    import yaml

    root = Path(folder)
    meta = yaml.safe_load((root / "MLmodel").read_text(encoding="utf-8"))
    artifacts = meta["flavors"]["python_function"].get("artifacts") or {}
    if needed not in artifacts:
        raise missing
    return {key: root / value["path"] for key, value in artifacts.items()}


@names_outages
def load_reference(model_uri: str) -> pd.DataFrame:
    """The drift reference sample shipped with the model at ``model_uri`` (features and ``claim_probability``)."""
    import pandas as pd

    missing = MissingReferenceError(
        f"The model at {model_uri} ships no drift reference sample (it was registered before models "
        "carried one): retrain the month (a `monthly_training` run) to monitor drift against it."
    )
    with local_model_folder(model_uri) as folder:
        return pd.read_parquet(_artifact_files(folder, REFERENCE_ARTIFACT, missing)[REFERENCE_ARTIFACT])


@lru_cache(maxsize=8)
def load_reference_cached(model_uri: str) -> pd.DataFrame:
    """:func:`load_reference`, once per process per URI (a version's files never change; do not mutate it)."""
    return load_reference(model_uri)


@names_outages
def load_scorer(model_uri: str) -> ShippedScorer:
    """The model stored at ``model_uri`` (its artifact location: a folder, ``file://``, ``s3://`` or
    ``mlflow-artifacts:/`` URI; see :func:`local_model_folder`).

    Reads the pyfunc flavor's artifact paths from the model's ``MLmodel`` file, imports the shipped
    runtime file (from a content-addressed local copy when the model was downloaded), and lets it
    build its own scorer from the other artifacts. Raises :class:`MissingRuntimeError` for a model
    that ships no runtime: it would have to run today's code, which is what this loader exists to prevent.
    """
    missing = MissingRuntimeError(
        f"The model at {model_uri} ships no {RUNTIME_ARTIFACT!r} artifact (it was registered before "
        "models carried their own code); register it again, or retrain, to score with it."
    )
    with local_model_folder(model_uri) as folder:
        files = _artifact_files(folder, RUNTIME_ARTIFACT, missing)
        if is_local_uri(model_uri):
            runtime = import_runtime(files[RUNTIME_ARTIFACT])
        else:  # the download is temporary: import a copy that stays
            runtime = import_runtime(_local_runtime_copy(files[RUNTIME_ARTIFACT].read_bytes()))
        return runtime.scorer_from_artifacts(lambda key: files[key].read_text(encoding="utf-8"))


@lru_cache(maxsize=32)
def load_scorer_cached(model_uri: str) -> ShippedScorer:
    """:func:`load_scorer`, once per process per URI (a version's files never change)."""
    return load_scorer(model_uri)


def calibration_level_sd(model_uri: str | None) -> float:
    """How well a model's calibration level is known (its calibrator's ``level_sd``); 0.0 for a model
    registered before it was recorded, or no model."""
    if not model_uri:
        return 0.0
    return float(load_scorer_cached(model_uri).calibrator.get("level_sd", 0.0))


@names_outages
def load_importance(model_uri: str) -> dict | None:
    """The importance shipped with the model at ``model_uri`` (``importance.json``: method, rows, mean_abs,
    shares), or None for a model registered before models shipped one."""
    import json

    with local_model_folder(model_uri) as folder:
        try:
            files = _artifact_files(folder, IMPORTANCE_ARTIFACT, KeyError(IMPORTANCE_ARTIFACT))
        except KeyError:
            return None
        return json.loads(files[IMPORTANCE_ARTIFACT].read_text(encoding="utf-8"))


def importance_cached(model_uri: str) -> dict[str, float]:
    """Each feature's share of the model's importance, once per process per URI: the mean |TreeSHAP| shares
    it ships (:func:`load_importance`); for a model registered before it shipped them, its share of the
    booster's gain; empty for a shipped scorer that exposes no booster and feature list."""
    return dict(importance_with_method(model_uri)[1])


@lru_cache(maxsize=8)
def importance_with_method(model_uri: str) -> tuple[str, dict[str, float]]:
    """``(method, shares)`` of :func:`importance_cached` (the method says which importance it is)."""
    shipped = load_importance(model_uri)
    if shipped is not None:
        return shipped["method"], dict(shipped["shares"])
    scorer = load_scorer_cached(model_uri)
    booster, spec = getattr(scorer, "booster", None), getattr(scorer, "spec", None)
    if booster is None or not spec or "features" not in spec:
        return GAIN_METHOD, {}
    return GAIN_METHOD, gain_shares(booster, spec["features"])
