"""ObjectIOManager (JSON) on a local folder and on S3: exact locations, readable files, round trips."""

import json
import re
from datetime import UTC, date, datetime
from enum import StrEnum

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from claims_platform.storage import (
    MissingPartitionError,
    ObjectIOManager,
    PartitionKeysMismatchError,
    json_bytes_to_value,
    value_to_json_bytes,
)
from claims_platform_tests.s3_server import S3Endpoint
from claims_platform_tests.storage.conftest import S3_PREFIX, StorageBackend

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01")
OBJECTS = "object_io_manager"
THREE_DAYS = ["2025-01-01", "2025-01-02", "2025-01-03"]


def drift_summary(partition_key: str) -> dict:
    return {"day": partition_key, "drift_share": 0.25, "drifted_columns": ["income", "age"]}


def range_tags(start: str, end: str) -> dict[str, str]:
    """Run tags of a single-run backfill over [start, end] (what the backfill daemon sets)."""
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


@dg.asset(io_manager_key=OBJECTS)
def model_card() -> dict:
    return {"model": "claims_model", "version": 3, "features": ("age", "income")}


@dg.asset(io_manager_key=OBJECTS)
def model_card_title(model_card: dict) -> str:
    return f"{model_card['model']} v{model_card['version']}"


@dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key=OBJECTS)
def drift_report(context: dg.AssetExecutionContext) -> dict[str, dict]:
    return {key: drift_summary(key) for key in context.partition_keys}


@dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key=OBJECTS)
def drift_alert(context: dg.AssetExecutionContext, drift_report: dict[str, dict]) -> dict[str, bool]:
    assert list(drift_report) == list(context.partition_keys)
    return {key: report["drift_share"] > 0.2 for key, report in drift_report.items()}


def materialize(backend: StorageBackend, assets: list, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={OBJECTS: backend.object_io_manager()},
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


# ------------------------------------------------------------------------- layout and round trips


def test_unpartitioned_object_round_trip_at_exact_path(backend: StorageBackend):
    result = materialize(backend, [model_card, model_card_title])

    assert result.success
    assert backend.stored_files() == ["model_card.json", "model_card_title.json"]
    # The tuple is stored as a JSON array, so it comes back as a list.
    assert backend.read_json("model_card.json") == {
        "model": "claims_model",
        "version": 3,
        "features": ["age", "income"],
    }
    assert backend.read_json("model_card_title.json") == "claims_model v3"
    metadata = result.asset_materializations_for_node("model_card")[0].metadata
    assert metadata["path"].value == backend.full_path("model_card.json")


def test_single_partition_dict_value_is_stored_as_is(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY, io_manager_key=OBJECTS, name="drift_report")
    def one_day_drift_report(context: dg.AssetExecutionContext) -> dict:
        # A dict that is the VALUE (not keyed by partition) must not be mistaken for a mapping.
        return drift_summary(context.partition_key)

    @dg.asset(partitions_def=DAILY, io_manager_key=OBJECTS)
    def drift_share(drift_report: dict) -> float:
        return drift_report["drift_share"]

    assert materialize(backend, [one_day_drift_report, drift_share], partition_key="2025-01-02").success
    assert backend.stored_files() == ["drift_report/2025-01-02.json", "drift_share/2025-01-02.json"]
    assert backend.read_json("drift_report/2025-01-02.json") == drift_summary("2025-01-02")
    assert backend.read_json("drift_share/2025-01-02.json") == 0.25


def test_single_run_backfill_of_objects(backend: StorageBackend):
    result = materialize(backend, [drift_report, drift_alert], tags=range_tags(THREE_DAYS[0], THREE_DAYS[-1]))

    assert result.success
    assert backend.stored_files() == sorted(
        [f"drift_report/{d}.json" for d in THREE_DAYS] + [f"drift_alert/{d}.json" for d in THREE_DAYS]
    )
    for day in THREE_DAYS:
        assert backend.read_json(f"drift_report/{day}.json") == drift_summary(day)
        assert backend.read_json(f"drift_alert/{day}.json") is True
    materializations = {
        m.partition: m.metadata for m in result.asset_materializations_for_node("drift_report")
    }
    for day in THREE_DAYS:
        # Each day's page names its own file; the run's range is named as the run's.
        assert materializations[day]["path"].value == backend.full_path(f"drift_report/{day}.json")
        assert materializations[day]["run_partitions_written"].value == 3


def test_stored_file_is_plain_indented_utf8_json(backend: StorageBackend):
    decision = {"scores_month": "2025-04", "promote": True, "branch": "Zürich", "champion": None}

    @dg.asset(partitions_def=DAILY, io_manager_key=OBJECTS)
    def champion_decision() -> dict:
        return decision

    assert materialize(backend, [champion_decision], partition_key="2025-01-01").success
    # Exactly what a person opening the file sees: sorted keys, two-space indent, readable UTF-8.
    lines = [
        "{",
        '  "branch": "Zürich",',
        '  "champion": null,',
        '  "promote": true,',
        '  "scores_month": "2025-04"',
        "}",
    ]
    assert backend.read_bytes("champion_decision/2025-01-01.json").decode("utf-8") == "\n".join(lines) + "\n"
    assert backend.read_json("champion_decision/2025-01-01.json") == decision


def test_numpy_scalars_dates_and_tuples_come_back_as_plain_python(backend: StorageBackend):
    @dg.asset(io_manager_key=OBJECTS)
    def model_summary() -> dict:
        return {
            "auc": np.float64(0.8125),
            "ece": np.float32(0.5),
            "rows": np.int64(1200),
            "promote": np.bool_(True),
            "holdout_month": date(2025, 3, 1),
            "trained_at": datetime(2025, 4, 1, 6, 30, tzinfo=UTC),
            "shape": (1200, np.int32(40)),
        }

    seen = {}

    @dg.asset(io_manager_key=OBJECTS)
    def model_summary_types(model_summary: dict) -> dict:
        seen.update(model_summary)
        return {key: type(value).__name__ for key, value in model_summary.items()}

    assert materialize(backend, [model_summary, model_summary_types]).success
    assert seen == {
        "auc": 0.8125,
        "ece": 0.5,
        "rows": 1200,
        "promote": True,
        "holdout_month": "2025-03-01",
        "trained_at": "2025-04-01T06:30:00+00:00",
        "shape": [1200, 40],
    }
    assert backend.read_json("model_summary_types.json") == {
        "auc": "float",
        "ece": "float",
        "rows": "int",
        "promote": "bool",
        "holdout_month": "str",
        "trained_at": "str",
        "shape": "list",
    }
    assert [type(item) for item in seen["shape"]] == [int, int]


# ------------------------------------------------------------------------------------- refusals


def test_value_that_is_not_json_fails_the_whole_range_and_writes_nothing(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key=OBJECTS)
    def champion_decision(context: dg.AssetExecutionContext) -> dict[str, dict]:
        decisions = {
            key: {"promote": True, "comparison": {"low": 0.1, "high": 0.9}} for key in context.partition_keys
        }
        # Only the LAST day is bad: the first two must not be written either.
        decisions[context.partition_keys[-1]]["comparison"]["low"] = float("nan")
        return decisions

    with pytest.raises(
        TypeError,
        match=re.escape("champion_decision 2025-01-03: value at ['comparison']['low'] is float('nan')"),
    ):
        materialize(backend, [champion_decision], tags=range_tags(THREE_DAYS[0], THREE_DAYS[-1]))
    assert backend.stored_files() == []


def test_unpartitioned_dataframe_is_refused_naming_where_it_sits(backend: StorageBackend):
    @dg.asset(io_manager_key=OBJECTS)
    def model_summary() -> dict:
        return {"metrics": [{"auc": 0.8}, {"table": pd.DataFrame({"a": [1]})}]}

    with pytest.raises(
        TypeError,
        match=re.escape("model_summary: value at ['metrics'][1]['table'] is a pandas.core.frame.DataFrame"),
    ):
        materialize(backend, [model_summary])
    assert backend.stored_files() == []


def test_object_range_with_wrong_keys_is_rejected(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key=OBJECTS)
    def short_report(context: dg.AssetExecutionContext) -> dict[str, dict]:
        return {key: {} for key in context.partition_keys[:1]}

    with pytest.raises(PartitionKeysMismatchError, match="missing 1: 2025-01-02"):
        materialize(backend, [short_report], tags=range_tags("2025-01-01", "2025-01-02"))
    assert backend.stored_files() == []


def test_missing_object_partition_names_it(backend: StorageBackend):
    with pytest.raises(
        MissingPartitionError, match=r"Partition 2025-01-04 of asset 'drift_report'"
    ) as raised:
        materialize(backend, [drift_report, drift_alert], selection=[drift_alert], partition_key="2025-01-04")
    assert backend.full_path("drift_report/2025-01-04.json") in str(raised.value)


class Band(StrEnum):
    LOW = "low"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(float("nan"), "the value is float('nan')", id="nan"),
        pytest.param({"x": [1.0, float("inf")]}, "value at ['x'][1] is float('inf')", id="inf"),
        pytest.param({"x": np.float64("-inf")}, "value at ['x'] is float('-inf')", id="numpy-inf"),
        pytest.param({"when": pd.NaT}, "value at ['when'] is NaT", id="nat"),
        pytest.param(
            {"frame": pd.DataFrame()}, "value at ['frame'] is a pandas.core.frame.DataFrame", id="dataframe"
        ),
        pytest.param({"scores": np.array([0.1, 0.2])}, "value at ['scores'] is a numpy.ndarray", id="array"),
        pytest.param({"columns": {"age", "income"}}, "value at ['columns'] is a set", id="set"),
        pytest.param({"raw": b"\x00"}, "value at ['raw'] is a bytes", id="bytes"),
        pytest.param(
            {"by_month": {3: "v1"}}, "value at ['by_month'] is a dict with an int key 3", id="int-key"
        ),
        pytest.param({"model": object()}, "value at ['model'] is an object", id="object"),
    ],
)
def test_codec_refuses_what_json_cannot_hold(value, message: str):
    with pytest.raises(TypeError, match=re.escape(f"champion_model 2025-03-01: {message}")):
        value_to_json_bytes(value, "champion_model 2025-03-01")


def test_codec_refuses_a_cycle():
    looped: dict = {"a": []}
    looped["a"].append(looped)
    with pytest.raises(TypeError, match=re.escape("value at ['a'][0] is a reference to a container")):
        value_to_json_bytes(looped)


def test_codec_keeps_shared_but_acyclic_values():
    shared = {"version": 3}
    assert json_bytes_to_value(value_to_json_bytes({"a": shared, "b": [shared, shared]})) == {
        "a": {"version": 3},
        "b": [{"version": 3}, {"version": 3}],
    }


def test_codec_stores_str_subclasses_as_their_text():
    data = value_to_json_bytes({Band.LOW: Band.LOW})
    assert json.loads(data) == {"low": "low"}


# ---------------------------------------------------------------------------------- corrupt files


def test_unreadable_stored_file_names_its_path(tmp_path):
    (tmp_path / "model_card.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path}/model_card.json is not valid UTF-8 JSON")):
        dg.materialize(
            [model_card.to_source_asset(), model_card_title],
            resources={OBJECTS: ObjectIOManager(base_path=str(tmp_path))},
            instance=dg.DagsterInstance.ephemeral(),
        )


@pytest.mark.integration
def test_s3_objects_say_they_are_json(s3_endpoint: S3Endpoint, s3_bucket: str):
    io_manager = ObjectIOManager(base_path=f"s3://{s3_bucket}/{S3_PREFIX}", s3=s3_endpoint.resource())
    assert dg.materialize(
        [model_card], resources={OBJECTS: io_manager}, instance=dg.DagsterInstance.ephemeral()
    ).success
    head = s3_endpoint.client().head_object(Bucket=s3_bucket, Key=f"{S3_PREFIX}/model_card.json")
    assert head["ContentType"] == "application/json"
