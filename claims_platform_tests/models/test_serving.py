"""`mlflow models serve` on loopback: the registered model scores the export's format and refuses bad rows.

The server runs the registered version as any MLflow user would serve it (a separate process, the
``models:/`` URI, the local environment), so this is the contract for everyone outside the platform.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from claims_platform.core import schema
from claims_platform.models import packaging
from claims_platform_tests.models.mlflow_sandbox import temporary_mlflow

pytestmark = pytest.mark.integration

MODEL_NAME = "claims_classifier_served"
EXPORT_COLUMNS = [schema.CLAIM_STATUS, *schema.FEATURES]  # after the unnamed index column
STARTUP_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and its uvicorn workers
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    """One registered version served by ``mlflow models serve`` on a free loopback port."""
    folder = tmp_path_factory.mktemp("served")
    with temporary_mlflow(folder) as (uri, experiment), mlflow.start_run(experiment_id=experiment):
        version = packaging.log_trained_model(trained, registered_model_name=MODEL_NAME)

    bin_dir = Path(sys.executable).parent
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # the server looks for `uvicorn`
    }
    log_path = folder / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{MODEL_NAME}/{version}",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
            env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"mlflow models serve exited ({process.returncode}):\n{log_path.read_text()[-3000:]}"
                )
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /ping within {STARTUP_SECONDS} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield SimpleNamespace(url=url, log=log_path)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def export_rows(parts) -> pd.DataFrame:
    """Holdout rows in the seed export's columns (claim_status, the 40 features), nulls included."""
    rows = parts.holdout[EXPORT_COLUMNS].head(40).reset_index(drop=True)
    assert rows[["family_history_3", "employment_type"]].isna().any().all()
    return rows


def _split_json(frame: pd.DataFrame) -> str:
    """``dataframe_split`` JSON with exact floats (Python's repr) and nulls as null."""
    data = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    payload = {
        "dataframe_split": {"index": frame.index.tolist(), "columns": list(frame.columns), "data": data}
    }
    return json.dumps(payload)


def _invoke(served, body: str, content_type: str) -> requests.Response:
    return requests.post(
        f"{served.url}/invocations", data=body.encode(), headers={"Content-Type": content_type}, timeout=30
    )


def _probabilities(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text[-2000:]
    return np.asarray([row["claim_probability"] for row in response.json()["predictions"]])


def test_dataframe_split_json_scores_exactly_like_the_trained_model(served, trained, export_rows):
    p = _probabilities(_invoke(served, _split_json(export_rows), "application/json"))
    np.testing.assert_array_equal(p, trained.predict_proba(export_rows))


def test_csv_in_the_export_format_scores_exactly_like_the_trained_model(served, trained, export_rows):
    csv = export_rows.to_csv()  # an unnamed index column first, as the seed's export
    assert csv.startswith(",claim_status,age,")
    p = _probabilities(_invoke(served, csv, "text/csv"))
    # Every value travels as text and is read back exactly (floats are written as their repr).
    np.testing.assert_array_equal(p, trained.predict_proba(export_rows))


# (column, value, what the 400 message must say): every bad value is refused by the model's own contract,
# named by row, column and rule — over JSON and over CSV alike. The signature declares every feature as
# text, so MLflow's cast never decides first (a null or a word in a ``long`` column was MLflow's error,
# with no row; over JSON 40.5 was truncated to 40 and scored).
BAD_VALUES = [
    ("location", "ZZ", "row 2, column 'location': value 'ZZ' is not one of the levels A..Z"),
    ("location", None, "row 2, column 'location': value is null, but the column is required (not nullable)"),
    ("age", 200, "row 2, column 'age': value 200 is out of range 17..95"),
    ("uk_residence", 2, "row 2, column 'uk_residence': value 2 is not one of the levels 0, 1"),
    ("location", 7, "row 2, column 'location': value 7 is not one of the levels A..Z"),
    ("age", None, "row 2, column 'age': value is null, but the column is required (not nullable)"),
    ("age", "forty", "row 2, column 'age': value 'forty' is not a number"),
    ("age", 40.5, "row 2, column 'age': value 40.5 is not a whole number"),
    ("financial_hist_1", "high", "row 2, column 'financial_hist_1': value 'high' is not a number"),
]


def _refused(response: requests.Response) -> str:
    assert response.status_code == 400, response.text[-2000:]
    body = response.json()
    assert body["error_code"] in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")
    assert "predictions" not in body
    return body["message"]


@pytest.mark.parametrize(("column", "value", "expected"), BAD_VALUES)
def test_a_json_row_that_breaks_the_contract_gets_400_naming_it(served, export_rows, column, value, expected):
    bad = export_rows.head(4).astype(object)
    bad.at[2, column] = value
    message = _refused(_invoke(served, _split_json(bad), "application/json"))
    assert expected in message, message[-2000:]


# In CSV every value is text: what the message quotes is the text sent.
CSV_EXPECTED = {
    ("age", 200): "row 2, column 'age': value '200' is out of range 17..95",
    ("uk_residence", 2): "row 2, column 'uk_residence': value '2' is not one of the levels 0, 1",
    ("location", 7): "row 2, column 'location': value '7' is not one of the levels A..Z",
    ("age", 40.5): "row 2, column 'age': value '40.5' is not a whole number",
}


@pytest.mark.parametrize(("column", "value", "expected"), BAD_VALUES)
def test_a_csv_row_that_breaks_the_contract_gets_400_naming_it(served, export_rows, column, value, expected):
    bad = export_rows.head(4).astype(object)
    bad.at[2, column] = value
    message = _refused(_invoke(served, bad.to_csv(), "text/csv"))
    assert CSV_EXPECTED.get((column, value), expected) in message, message[-2000:]


def test_every_bad_row_of_a_request_is_listed(served, export_rows):
    bad = export_rows.head(4).astype(object)
    bad.at[1, "location"] = "ZZ"
    bad.at[3, "age"] = 16  # the seed's rescaling reaches 17, never 16
    for body, content_type in ((bad.to_csv(), "text/csv"), (_split_json(bad), "application/json")):
        message = _refused(_invoke(served, body, content_type))
        assert "row 1, column 'location': value 'ZZ' is not one of the levels A..Z" in message
        assert "row 3, column 'age'" in message and "is out of range 17..95" in message


def test_a_missing_column_gets_400_naming_it(served, export_rows):
    short = export_rows.head(3).drop(columns=["income"])
    for body, content_type in ((short.to_csv(), "text/csv"), (_split_json(short), "application/json")):
        message = _refused(_invoke(served, body, content_type))
        assert "'income'" in message and "missing" in message, message[-2000:]


def test_extra_columns_are_ignored_and_logged_by_name(served, export_rows, trained):
    # The seed's export carries an index column and claim_status; a client may send ids too. They are not
    # features: MLflow drops them before the model runs and names them in the server's log.
    extra = export_rows.head(5).assign(application_id=[f"x:{i}" for i in range(5)])
    p = _probabilities(_invoke(served, extra.to_csv(), "text/csv"))
    np.testing.assert_array_equal(p, trained.predict_proba(export_rows.head(5)))
    log = served.log.read_text(errors="replace")
    assert "application_id" in log and "claim_status" in log


def _reasons_frame(response: requests.Response) -> pd.DataFrame:
    assert response.status_code == 200, response.text[-2000:]
    return pd.DataFrame(response.json()["predictions"])


def test_asked_for_reasons_json_and_csv_give_the_runtime_s_own_reasons(served, trained, export_rows):
    from claims_platform.training import runtime

    expected = runtime.Scorer(trained.booster, trained.calibrator, trained.spec).explain(export_rows)
    payload = json.loads(_split_json(export_rows))
    payload["params"] = {"reasons": True}
    by_json = _reasons_frame(_invoke(served, json.dumps(payload), "application/json"))
    # CSV carries no params: a column `reasons` asks instead.
    by_csv = _reasons_frame(_invoke(served, export_rows.assign(reasons="true").to_csv(), "text/csv"))
    for got in (by_json, by_csv):
        assert list(got.columns) == list(expected.columns)
        np.testing.assert_array_equal(got[runtime.PROBABILITY_COLUMN], trained.predict_proba(export_rows))
        assert got[runtime.REASON_TEXT].tolist() == expected[runtime.REASON_TEXT].tolist()
        for i in range(1, runtime.REASON_COUNT + 1):
            feature, contribution = runtime.REASON_FEATURE.format(i), runtime.REASON_CONTRIBUTION.format(i)
            assert got[feature].tolist() == expected[feature].tolist()
            np.testing.assert_allclose(got[contribution].astype(float), expected[contribution], rtol=1e-12)
    # Not asked: the probabilities alone, as before.
    plain = _invoke(served, _split_json(export_rows.head(3)), "application/json").json()["predictions"]
    assert [set(row) for row in plain] == [{runtime.PROBABILITY_COLUMN}] * 3
