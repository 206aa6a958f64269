"""Two trainings of one month logging the same dataset at once: both runs link it, neither fails.

MLflow's SQL store looks the dataset up, then inserts it when absent. The race is made exact here:
the second run's look-up is made to miss the row the first run committed (as it does when both look
before either inserts), so the store's real insert breaks the real unique key.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
import sqlalchemy.orm
from mlflow.store.tracking.dbmodels.models import SqlDataset

from claims_platform.models.tracking import log_input_once
from claims_platform_tests.models.mlflow_sandbox import temporary_mlflow


@pytest.fixture
def missed_lookup(monkeypatch):
    """The next look-up of datasets finds none, as if the other run had not committed yet."""
    state = {"pending": False}
    original = sqlalchemy.orm.Query.all

    def all_(query):
        if state["pending"] and query.column_descriptions[0]["entity"] is SqlDataset:
            state["pending"] = False
            return []
        return original(query)

    monkeypatch.setattr(sqlalchemy.orm.Query, "all", all_)
    return state


def test_a_dataset_logged_by_two_runs_at_once_is_linked_to_both(tmp_path, missed_lookup):
    frame = pd.DataFrame({"age": [30, 40], "claimed": [0, 1]})
    dataset = mlflow.data.from_pandas(frame, name="training_set_2025-03", digest="d1", targets="claimed")
    with temporary_mlflow(tmp_path) as (_, experiment):
        with mlflow.start_run(experiment_id=experiment) as first:
            log_input_once(dataset, "training")
        with mlflow.start_run(experiment_id=experiment) as second:
            missed_lookup["pending"] = True
            with pytest.raises(mlflow.exceptions.MlflowException, match="UNIQUE|unique"):
                mlflow.log_input(dataset, context="training")  # what MLflow does alone
            missed_lookup["pending"] = True
            log_input_once(dataset, "training")
            assert not missed_lookup["pending"], "the look-up this test makes miss is no longer MLflow's"
        for run in (first, second):
            inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
            assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("training_set_2025-03", "d1")]
