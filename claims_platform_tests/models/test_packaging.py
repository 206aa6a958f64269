"""The registered model loads and predicts with plain MLflow in a process without claims_platform."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pytest

from claims_platform import schema
from claims_platform.models import packaging

MODEL_NAME = "claims_classifier_test"


@pytest.fixture()
def tracking(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("claims", artifact_location=(tmp_path / "artifacts").as_uri())
    yield uri, experiment
    mlflow.set_tracking_uri(previous)


def test_log_needs_an_active_run(trained, tracking):
    with pytest.raises(RuntimeError, match="active MLflow run"):
        packaging.log_trained_model(trained, registered_model_name=MODEL_NAME)


def test_champion_loads_and_predicts_without_claims_platform(trained, parts, tracking, tmp_path):
    uri, experiment = tracking
    with mlflow.start_run(experiment_id=experiment):
        version = packaging.log_trained_model(
            trained, registered_model_name=MODEL_NAME, tags={"partition": "2025-04"}
        )
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, "champion", str(version))
    tags = client.get_model_version(MODEL_NAME, str(version)).tags
    assert tags["partition"] == "2025-04"
    assert float(tags[packaging.THRESHOLD_TAG]) == trained.threshold

    # Warehouse rows exactly as the applications table holds them, ids and dates included.
    rows = parts.holdout[list(schema.APPLICATION_COLUMNS)].head(200).reset_index(drop=True)
    rows.to_parquet(tmp_path / "rows.parquet")
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["claims_platform"] = None  # any import of the project now raises
        try:
            import claims_platform
        except ImportError:
            pass
        else:
            raise SystemExit("claims_platform is importable")
        import mlflow, pandas as pd
        mlflow.set_tracking_uri({uri!r})
        model = mlflow.pyfunc.load_model("models:/{MODEL_NAME}@champion")
        p = model.predict(pd.read_parquet("rows.parquet"))
        json.dump({{"p": [float(v) for v in p], "threshold": model.metadata.metadata["decision_threshold"]}},
                  open("out.json", "w"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    p = np.asarray(out["p"])
    assert len(p) == len(rows)
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p, trained.predict_proba(rows), rtol=0, atol=1e-12)
    assert out["threshold"] == trained.threshold
