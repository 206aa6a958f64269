"""The registered pyfunc wrapper, logged with the model ("models from code").

MLflow copies this file into the model and runs it in whatever process calls
``mlflow.pyfunc.load_model``; ``runtime.py`` ships beside it as a code path. So it must stay
SELF-CONTAINED — never importing ``claims_platform`` when loaded from a model.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import mlflow
import pandas as pd

try:  # inside the platform
    from claims_platform.models import runtime as core
except ImportError:  # inside a loaded model, where runtime.py is on the path as a code path
    import runtime as core  # type: ignore[no-redef]


class ClaimsModel(mlflow.pyfunc.PythonModel):
    """The registered pyfunc: warehouse rows in, calibrated claim probabilities out."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load booster, calibrator and feature spec from the model's artifacts."""
        self.booster = lgb.Booster(model_file=context.artifacts[core.ARTIFACT_BOOSTER])
        self.calibrator = core.load_json(context.artifacts[core.ARTIFACT_CALIBRATOR])
        self.spec = core.load_json(context.artifacts[core.ARTIFACT_SPEC])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.Series:
        """``claim_probability`` per input row (same index), calibrated, in [0, 1]."""
        p = core.predict_claim_probability(self.booster, self.calibrator, self.spec, model_input)
        return pd.Series(p, index=model_input.index, name=core.PROBABILITY_COLUMN)


mlflow.models.set_model(ClaimsModel())
