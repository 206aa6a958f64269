"""The registered pyfunc wrapper, logged with the model ("models from code").

MLflow copies this file into the model and runs it, under a module name of its own, in whatever
process calls ``mlflow.pyfunc.load_model`` or ``mlflow models serve``. The model's computation is
NOT imported from anywhere on ``sys.path``: the runtime file saved with the model (artifact
``runtime``) is imported BY PATH under a name unique to its content, so a version always runs the
code it was registered with — beside other versions in one process, and where today's
``claims_platform`` is installed. Hence this file imports nothing from ``claims_platform``: stdlib,
mlflow, pandas and numpy only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

RUNTIME_ARTIFACT = "runtime"  # the artifact key of the shipped runtime file (also in loading.py)
REASONS_PARAM = "reasons"  # params {"reasons": true}, or a CSV column `reasons`: each row's reasons too
RUNTIME_MODULE_PREFIX = "claims_model_runtime_"


def import_runtime(path: str | Path) -> ModuleType:
    """The runtime file at ``path`` as a module named after its content (``claims_model_runtime_<sha>``).

    The same file imported twice is one module; two different files never share one, whatever
    ``sys.path`` holds. Same scheme as ``claims_platform.models.loading.import_runtime``, which
    this file cannot import.
    """
    source = Path(path).read_bytes()
    name = RUNTIME_MODULE_PREFIX + hashlib.sha256(source).hexdigest()[:12]
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


class ClaimsModel(mlflow.pyfunc.PythonModel):
    """The registered pyfunc: rows in the warehouse's column format in, calibrated claim probabilities out."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Import the model's own runtime file and build its scorer from the other artifacts."""
        self.runtime = import_runtime(context.artifacts[RUNTIME_ARTIFACT])

        def read(key: str) -> str:
            return Path(context.artifacts[key]).read_text(encoding="utf-8")

        self.scorer = self.runtime.scorer_from_artifacts(read)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.Series | pd.DataFrame:
        """``claim_probability`` per input row (same index), calibrated, in (0, 1).

        Rows are held to the model's data contract first: any that break it fail the whole request
        with an ``INVALID_PARAMETER_VALUE`` error (HTTP 400 from ``mlflow models serve``) naming
        row, column and rule — never a silent score.

        Asked for reasons (``params={"reasons": True}``; over CSV, which carries no params, a column
        ``reasons`` true on any row), a frame instead: ``claim_probability`` and each row's features that
        raised it the most with their contributions and the reason in words, as the platform stores them.
        """
        explain = _asked_for_reasons(model_input, params)
        try:
            if explain and hasattr(self.scorer, "explain"):
                return self.scorer.explain(
                    model_input.drop(columns=[REASONS_PARAM], errors="ignore"), check=True
                )
            p = self.scorer.predict(model_input, check=True)
        except self.runtime.ContractViolation as err:
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None
        return pd.Series(
            np.asarray(p, dtype=np.float64), index=model_input.index, name=self.runtime.PROBABILITY_COLUMN
        )


def _asked_for_reasons(model_input: pd.DataFrame, params: dict[str, Any] | None) -> bool:
    """Whether the request asks for reasons: the ``reasons`` param, or a true ``reasons`` column (CSV)."""
    if params and params.get(REASONS_PARAM):
        return True
    if REASONS_PARAM not in model_input.columns:
        return False
    flags = model_input[REASONS_PARAM].astype(str).str.strip().str.lower()
    return bool(flags.isin(["true", "1", "yes"]).any())


mlflow.models.set_model(ClaimsModel())
