"""A registered model is self-contained: it runs the code shipped with it, wherever it is loaded.

Two versions are registered once for the module: version 1 exactly as training logs it, version 2
with a shipped runtime that halves every probability and carries a marker, standing in for "an old
version whose code differs from today's".
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace

import fsspec
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

from claims_platform.core import schema, settings
from claims_platform.models import loading, packaging, pyfunc
from claims_platform.models.importance import GAIN_METHOD, SHAP_METHOD, gain_shares
from claims_platform.training import runtime
from claims_platform_tests.environment import unset
from claims_platform_tests.models.mlflow_sandbox import temporary_mlflow
from claims_platform_tests.s3_server import s3_bucket, s3_endpoint  # noqa: F401

MODEL_NAME = "claims_classifier_test"
# Appended to a copy of runtime.py: version 2's code differs from the installed one.
HALVING_RUNTIME = """

MARKER = "version 2: halves every probability"
_apply_calibrator = apply_calibrator


def apply_calibrator(calibrator, margin):
    return 0.5 * _apply_calibrator(calibrator, margin)
"""


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def registered(trained, tmp_path_factory):
    """A temporary SQLite MLflow with versions 1 (as trained) and 2 (halving runtime) of MODEL_NAME."""
    folder = tmp_path_factory.mktemp("mlflow")
    halving = folder / "halving_runtime.py"
    halving.write_text(Path(runtime.__file__).read_text(encoding="utf-8") + HALVING_RUNTIME, encoding="utf-8")
    records = _Records()
    mlflow_logger = logging.getLogger("mlflow")
    mlflow_logger.addHandler(records)
    try:
        with temporary_mlflow(folder) as (uri, experiment):
            with warnings.catch_warnings(record=True) as caught, mlflow.start_run(experiment_id=experiment):
                warnings.simplefilter("always")
                first = packaging.log_trained_model(
                    trained,
                    registered_model_name=MODEL_NAME,
                    tags={"partition": "2025-04"},
                    importance={"method": SHAP_METHOD, "rows": 1, "mean_abs": {}, "shares": {"age": 1.0}},
                )
            with mlflow.start_run(experiment_id=experiment):
                second = packaging.log_trained_model(
                    trained, registered_model_name=MODEL_NAME, runtime_file=halving
                )
            mlflow_logger.removeHandler(records)
            client = mlflow.MlflowClient()
            client.set_registered_model_alias(MODEL_NAME, "champion", str(first))
            yield SimpleNamespace(
                uri=uri,
                versions=(first, second),
                artifact_uri={
                    v: client.get_model_version_download_uri(MODEL_NAME, str(v)) for v in (first, second)
                },
                warnings=[str(w.message) for w in caught],
                logged=list(records.messages),
            )
    finally:
        mlflow_logger.removeHandler(records)


@pytest.fixture(scope="module")
def rows(parts) -> pd.DataFrame:
    """Holdout rows exactly as the applications table holds them, ids and dates included."""
    return parts.holdout[list(schema.APPLICATION_COLUMNS)].head(200).reset_index(drop=True)


def _local(uri: str) -> Path:
    return Path(fsspec.core.url_to_fs(uri)[1])


def test_a_version_ships_its_importance_and_an_older_one_is_weighed_by_its_gain(trained, registered):
    from claims_platform.models.loading import importance_with_method

    assert importance_with_method(registered.artifact_uri[1]) == (SHAP_METHOD, {"age": 1.0})
    method, shares = importance_with_method(registered.artifact_uri[2])  # logged without one
    assert method == GAIN_METHOD and shares == gain_shares(trained.booster, trained.spec["features"])


def test_log_needs_an_active_run(trained, registered):
    with pytest.raises(RuntimeError, match="active MLflow run"):
        packaging.log_trained_model(trained, registered_model_name=MODEL_NAME)


def test_registered_model_ships_its_runtime_a_typed_signature_and_a_synthetic_example(trained, registered):
    first, _ = registered.versions
    folder = _local(registered.artifact_uri[first])
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["python_function"]
    artifacts = {key: value["path"] for key, value in flavor["artifacts"].items()}
    assert artifacts == {
        "runtime": "artifacts/claims_runtime.py",
        "booster": "artifacts/booster.txt",
        "calibrator": "artifacts/calibrator.json",
        "feature_spec": "artifacts/feature_spec.json",
        "importance": "artifacts/importance.json",
    }
    shipped = (folder / artifacts["runtime"]).read_bytes()
    assert shipped == Path(runtime.__file__).read_bytes()
    assert (
        json.loads((folder / artifacts["feature_spec"]).read_text())["contract"] == trained.spec["contract"]
    )
    # The wrapper and the runtime artifact are the model's only code; no code path goes on sys.path.
    assert flavor["code"] is None
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.py")) == [
        "artifacts/claims_runtime.py",
        "pyfunc.py",
    ]

    model = mlflow.models.Model.load(str(folder))
    assert model.signature == packaging.model_signature(trained.spec)
    pd.testing.assert_frame_equal(
        model.load_input_example(str(folder)), packaging.input_example(trained.spec)
    )
    assert model.metadata["runtime_sha256"] == hashlib.sha256(shipped).hexdigest()
    requirements = (folder / "requirements.txt").read_text()
    assert "claims" not in requirements and "lightgbm==" in requirements
    tags = mlflow.MlflowClient().get_model_version(MODEL_NAME, str(first)).tags
    assert tags["partition"] == "2025-04" and tags["calibration_method"] == trained.calibration["method"]

    # The signature is explicit and the example matches it: nothing is inferred, nothing is refused.
    assert not [w for w in registered.warnings if "Inferred schema contains integer" in w]
    assert not [m for m in registered.logged if "input example" in m.lower() or "signature" in m.lower()]


def test_champion_loads_and_predicts_without_claims_platform(trained, registered, rows, tmp_path):
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
        mlflow.set_tracking_uri({registered.uri!r})
        model = mlflow.pyfunc.load_model("models:/{MODEL_NAME}@champion")
        p = model.predict(pd.read_parquet("rows.parquet").astype(object))
        json.dump({{"p": [float(v) for v in p], "metadata": model.metadata.metadata}}, open("out.json", "w"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    p = np.asarray(out["p"])
    assert len(p) == len(rows) and ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p, trained.predict_proba(rows), rtol=0, atol=1e-12)
    assert out["metadata"]["calibration_method"] == trained.calibration["method"]


def test_each_version_runs_its_own_shipped_code_where_claims_platform_is_installed(
    trained, registered, rows, monkeypatch
):
    import claims_platform.training.runtime as installed

    # Whatever generic names a loader might look up resolve to today's installed runtime.
    for name in ("runtime", "claims_runtime", "model_core"):
        monkeypatch.setitem(sys.modules, name, installed)
    first, second = registered.versions
    expected = trained.predict_proba(rows)

    # The older code first, then the current code: neither loader reuses the other's module.
    halved = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{second}")
    current = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{first}")
    np.testing.assert_allclose(halved.predict(rows.astype(object)), 0.5 * expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(current.predict(rows.astype(object)), expected, rtol=0, atol=1e-12)

    scorers = {v: loading.load_scorer_cached(registered.artifact_uri[v]) for v in (second, first)}
    np.testing.assert_allclose(scorers[second].predict(rows), 0.5 * expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scorers[first].predict(rows), expected, rtol=0, atol=1e-12)

    modules = {v: sys.modules[type(scorers[v]).__module__] for v in (first, second)}
    assert modules[second].MARKER.startswith("version 2") and not hasattr(modules[first], "MARKER")
    for v, module in modules.items():
        assert module is not installed and module.__name__.startswith(pyfunc.RUNTIME_MODULE_PREFIX)
        shipped = _local(registered.artifact_uri[v]) / "artifacts" / packaging.RUNTIME_FILE_NAME
        assert module.__name__ == loading.runtime_module_name(shipped.read_bytes())
    # The pyfunc wrapper imported the same shipped files under the same names.
    assert type(current.unwrap_python_model().scorer) is type(scorers[first])
    assert type(halved.unwrap_python_model().scorer) is type(scorers[second])


def test_in_process_the_signature_takes_values_as_sent_not_typed_columns(registered, rows, trained):
    # The signature declares every feature as text (so MLflow's cast never decides before the contract):
    # MLflow refuses a typed int64 column itself; the same rows as objects, or as text, score exactly.
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    with pytest.raises(MlflowException, match="Incompatible input types for column"):
        model.predict(rows)
    expected = trained.predict_proba(rows)
    np.testing.assert_array_equal(model.predict(rows.astype(object)).to_numpy(), expected)
    as_text = rows.astype(object).map(
        lambda v: None if pd.isna(v) else repr(v) if isinstance(v, float) else str(v)
    )
    np.testing.assert_array_equal(model.predict(as_text).to_numpy(), expected)


def test_the_model_refuses_rows_that_break_its_contract(registered, rows):
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    bad = rows.head(4).copy().astype(object)
    bad.loc[1, "location"] = "ZZ"
    bad.loc[3, "age"] = 200
    with pytest.raises(MlflowException) as raised:
        model.predict(bad)
    assert raised.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
    assert raised.value.get_http_status_code() == 400
    message = raised.value.message
    assert "row 1, column 'location': value 'ZZ' is not one of the levels A..Z" in message
    assert "row 3, column 'age': value 200 is out of range 17..95" in message


@pytest.mark.integration
def test_loading_a_remote_model_imports_a_local_copy_of_its_runtime(
    trained,
    registered,
    rows,
    s3_endpoint,  # noqa: F811
    s3_bucket,  # noqa: F811
    monkeypatch,  # noqa: F811
):
    # Two versions on an S3 API server (moto, loopback), reached through the platform's one endpoint
    # setting; each scores with its own runtime, imported from a local copy of it.
    unset(monkeypatch, "MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", *settings.BOUNDED_CLIENT_ENVIRONMENT)
    monkeypatch.setenv(settings.ENV_S3_ENDPOINT_URL, s3_endpoint.endpoint_url)
    first, second = registered.versions
    client = s3_endpoint.client()
    for v in (first, second):
        source = _local(registered.artifact_uri[v])
        for path in source.rglob("*"):
            if path.is_file():
                client.put_object(
                    Bucket=s3_bucket,
                    Key=f"models/{v}/{path.relative_to(source).as_posix()}",
                    Body=path.read_bytes(),
                )
    expected = trained.predict_proba(rows)
    np.testing.assert_allclose(
        loading.load_scorer(f"s3://{s3_bucket}/models/{second}").predict(rows), 0.5 * expected
    )
    np.testing.assert_allclose(
        loading.load_scorer(f"s3://{s3_bucket}/models/{first}").predict(rows), expected
    )


def test_loading_refuses_a_model_that_ships_no_runtime(registered, tmp_path):
    first, _ = registered.versions
    model = tmp_path / "model"
    shutil.copytree(_local(registered.artifact_uri[first]), model)
    meta = yaml.safe_load((model / "MLmodel").read_text())
    del meta["flavors"]["python_function"]["artifacts"]["runtime"]
    (model / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(loading.MissingRuntimeError, match="ships no 'runtime' artifact"):
        loading.load_scorer(str(model))
