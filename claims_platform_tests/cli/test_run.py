"""From a file to answers with the command line, as a new user goes: import, the printed steps, `run`, `serve`.

One small world, in a folder of its own (its own ``CLAIMS_HOME``, ``DAGSTER_HOME`` and working directory,
where the commands read and write ``.env``), driven only through `claims-platform` subprocesses:

1. ``import-csv`` of a generated export in the seed's format prints the steps that take its days through
   the platform; each printed command runs, in order, and reports what it made — ``measure`` over a
   range of months included;
2. ``run --csv`` of the same file then changes nothing and says so, and its summary's figures are those
   the stored partitions carry. All of it on a warehouse given by URL (``--warehouse-url``), not the
   embedded default;
3. ``serve`` serves the champion: a scored day's applications, sent as CSV and as JSON, get exactly the
   stored scores; every bad value gets HTTP 400 naming row, column and rule.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import requests

from claims_platform.core import schema
from claims_platform.source.csv_import import write_export
from claims_platform.source.generator import World, simulate_days

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
EXPORT_ROWS = 6_000
SPREAD = ("--days", "120")  # January to April 2025, 50 a day: March and April train, April is scored
COMMAND_SECONDS = 600


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class User:
    """A person at a shell in ``folder``: the platform's command line, with the folder's own state."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "dagster_home").mkdir(parents=True)
        (folder / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("CLAIMS_", "MLFLOW_", "DAGSTER_"))
        }
        self.env.update(
            {
                "CLAIMS_HOME": str(folder / "home"),
                "DAGSTER_HOME": str(folder / "dagster_home"),
                "DO_NOT_TRACK": "1",
            }
        )

    def run(self, *argv: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(BIN / "claims-platform"), *argv], cwd=self.folder, env=self.env, capture_output=True, text=True,
            timeout=COMMAND_SECONDS,
        )  # fmt: skip
        if ok:
            assert done.returncode == 0, (
                f"claims-platform {' '.join(argv)}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
            )
        assert "Traceback" not in done.stderr, done.stderr[-5000:]
        return done


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("user")
    applications, outcomes = simulate_days(World.from_seed(11), date(2025, 1, 1), date(2025, 1, 6))
    applications = applications.head(EXPORT_ROWS)
    export = folder / "claims_2025.csv"
    write_export(
        applications,
        outcomes[outcomes[schema.APPLICATION_ID].isin(applications[schema.APPLICATION_ID])],
        export,
    )
    user = User(folder)
    # A warehouse elsewhere than the embedded default: every printed step and `run` take it by URL.
    warehouse = f"sqlite:///{folder / 'elsewhere' / 'warehouse.db'}"
    (folder / "elsewhere").mkdir()
    imported = user.run("import-csv", str(export), *SPREAD, "--warehouse-url", warehouse)
    steps = [
        line.strip()
        for line in imported.stdout.splitlines()
        if re.match(r"\s+claims-platform (ingest|train|score|report|measure) ", line)
    ]
    outputs = {}
    for command in steps:
        argv = command.split()[1:]
        outputs[argv[0]] = user.run(*argv, *(["--trials", "2"] if argv[0] == "train" else []))
    rerun = user.run("run", "--csv", str(export), *SPREAD, "--trials", "2", "--warehouse-url", warehouse)
    return SimpleNamespace(
        user=user,
        export=export,
        warehouse=warehouse,
        imported=imported,
        steps=steps,
        outputs=outputs,
        rerun=rerun,
    )


def stored(world, asset: str, partitions: list[str]):
    """Latest materialization metadata and stored values of ``asset``, read as the platform reads them."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from claims_platform.core.instance_records import latest_materializations

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(world.user.env["DAGSTER_HOME"]))
    try:
        return latest_materializations(instance, dg.AssetKey(asset), partitions)
    finally:
        instance.dispose()


def test_the_import_prints_the_steps_and_each_runs_and_reports_what_it_made(world) -> None:
    assert [s.split()[1] for s in world.steps] == ["ingest", "train", "score", "report", "measure"]
    assert all(s.endswith(f"--warehouse-url {world.warehouse}") for s in world.steps)
    assert (
        "claims-platform run" in world.imported.stdout
        and "dagster asset materialize" not in world.imported.stdout
    )
    out = {step: done.stdout for step, done in world.outputs.items()}
    assert re.search(
        r"ingest +2025-01-01\.\.2025-04-30 \(120 days\): 6,000 rows read, 6,000 valid, 0 rejected",
        out["ingest"],
    )
    assert re.search(
        r"train +2025-03: first champion \(v1\) — v1: holdout 2025-02 kappa 0\.\d{3} \(95% 0\.\d{3}–0\.\d{3}\)",
        out["train"],
    )
    assert re.search(r"train +2025-04: (promoted|kept) \(v\d\)", out["train"])
    assert re.search(r"score +2025-04: 30 days, [\d,]+ applications by v1: [\d,]+ accepted", out["score"])
    assert re.search(r"drift +2025-04-01\.\.2025-04-30 \(30 days\) reported", out["report"])
    # model_performance over a range of months, from the command line: one run per month, each reported.
    assert "claims-platform measure --months 2025-04" in world.imported.stdout
    assert re.search(r"measure +2025-04: kappa 0\.\d+ realised vs 0\.\d+ estimated", out["measure"])


def test_run_again_on_the_same_file_changes_nothing_and_says_so(world) -> None:
    out = world.rerun.stdout
    assert "nothing changed: the warehouse and every step were up to date (no run made)" in out
    assert "unchanged: " in out and "nothing written" in out
    for step in (
        "nothing to ingest",
        "nothing to train",
        "nothing to score",
        "every report up to date",
        "nothing to measure",
    ):
        assert step in out, step


def test_the_summary_holds_the_figures_the_partitions_carry(world) -> None:
    out = world.rerun.stdout
    days = [(date(2025, 1, 1) + timedelta(days=i)).isoformat() for i in range(120)]
    applications = stored(world, "applications", days)
    read = sum(int(m.metadata["rows_read"]) for m in applications.values())
    valid = sum(int(m.metadata["valid_rows"]) for m in applications.values())
    assert f"{read:,} rows read, {valid:,} valid, {read - valid:,} rejected" in out
    april = [d for d in days if d.startswith("2025-04")]
    forecasts = stored(world, "reserve_forecast", april)
    counts = {
        k: sum(int(m.metadata[f"decision_{k}"]) for m in forecasts.values())
        for k in ("accept", "refer", "decline")
    }
    assert (
        f"{counts['accept']:,} accepted, {counts['refer']:,} referred, {counts['decline']:,} declined" in out
    )
    expected = sum(float(m.metadata["expected_claims"]) for m in forecasts.values())
    shown = float(
        re.search(r"2025-04: .*expected claims among accepted ([\d.,]+)", out).group(1).replace(",", "")
    )
    assert shown == pytest.approx(expected, abs=0.1 * len(april))  # the days' figures are rounded to 0.1
    drift = stored(world, "applications_drift", april)
    drifted = sum(bool(m.metadata.get("drifted")) for m in drift.values())
    assert f"(30 days) reported, {drifted} drifted" in out
    measured = stored(world, "model_performance", ["2025-04-01"])["2025-04-01"].metadata
    assert (
        f"2025-04: kappa {measured['realised_kappa']} realised vs {measured['estimated_kappa']} estimated"
        in out
    )
    decision = stored(world, "champion_decision", ["2025-03-01"])["2025-03-01"].metadata
    assert f"2025-03: {decision['outcome']} (v{decision['champion_version']})" in out


def test_every_run_is_linked_to_the_code_location(world) -> None:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(world.user.env["DAGSTER_HOME"]))
    try:
        runs = instance.get_runs()
        assert len(runs) >= 6
        assert {run.remote_job_origin.location_name for run in runs} == {"claims_platform"}
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    finally:
        instance.dispose()


def test_a_versions_model_card_prints_what_was_measured_and_how_it_was_judged(world) -> None:
    card = world.user.run("model-card", "1").stdout
    assert card.startswith("# Model card: claims_classifier version 1\n")
    for section in ("Intended use and decision policy", "Holdout performance", "Calibration", "Top features",
                    "Outcomes by protected group (holdout)", "Drift reference", "Known limits",
                    "Comparison with the champion"):  # fmt: skip
        assert f"\n## {section}\n" in card, section
    assert "Excluded (never a feature" in card and "`gender`" in card.split("Excluded")[1].split(".")[0]
    assert "| gender | 1 |" in card  # the group table reports the excluded column
    assert "first champion" in card  # the decision that judged it wrote its section
    page = world.user.run("model-card", "1", "--html").stdout
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page and "<script" not in page
    missing = world.user.run("model-card", "99", ok=False)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "no version 99" in missing.stderr


@pytest.fixture(scope="module")
def champion(world):
    """`claims-platform serve` (the champion, via `mlflow models serve`) on a free loopback port."""
    port = _free_port()
    log = world.user.folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "claims-platform"), "serve", "--port", str(port)], cwd=world.user.folder, env=world.user.env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield SimpleNamespace(url=url, log=log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _post(champion, body: str, content_type: str) -> requests.Response:
    return requests.post(
        f"{champion.url}/invocations", data=body.encode(), headers={"Content-Type": content_type}, timeout=60
    )


def _split_json(frame: pd.DataFrame) -> str:
    data = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": data}}, default=str)


@pytest.fixture(scope="module")
def scored_day(world):
    """A day's applications as the warehouse holds them, and the claim probabilities the platform stored for them."""
    from claims_platform.source.warehouse import Warehouse

    warehouse = Warehouse(world.warehouse)
    try:
        rows = warehouse.read_applications(date(2025, 4, 15))
    finally:
        warehouse.dispose()
    scores = pd.read_parquet(
        world.user.folder / "home" / "storage" / "application_scores" / "2025-04-15.parquet"
    )
    return rows, scores.set_index(schema.APPLICATION_ID)["claim_probability"].reindex(
        rows[schema.APPLICATION_ID]
    ).to_numpy()


def test_the_served_champion_gives_exactly_the_stored_scores_over_csv_and_json(champion, scored_day) -> None:
    rows, stored_p = scored_day
    assert len(rows) > 10 and not np.isnan(stored_p).any()
    for body, content_type in (
        (rows.to_csv(index=False), "text/csv"),
        (_split_json(rows), "application/json"),
    ):
        response = _post(champion, body, content_type)
        assert response.status_code == 200, response.text[-2000:]
        served = np.asarray([row["claim_probability"] for row in response.json()["predictions"]])
        np.testing.assert_array_equal(served, stored_p)


@pytest.mark.parametrize(
    ("column", "value", "json_message", "csv_message"),
    [
        ("age", None, "row 1, column 'age': value is null, but the column is required (not nullable)", None),
        ("age", "forty", "row 1, column 'age': value 'forty' is not a number", None),
        (
            "age",
            40.5,
            "row 1, column 'age': value 40.5 is not a whole number",
            "row 1, column 'age': value '40.5' is not a whole number",
        ),
        ("location", "ZZ", "row 1, column 'location': value 'ZZ' is not one of the levels A..Z", None),
        (
            "income",
            300_000,
            "row 1, column 'income': value 300000 is out of range 0..250000",
            "row 1, column 'income': value '300000' is out of range 0..250000",
        ),
    ],
)
def test_the_served_champion_refuses_each_bad_value_naming_row_column_and_rule(
    champion, scored_day, column, value, json_message, csv_message
) -> None:
    rows, _ = scored_day
    bad = rows.head(3).astype(object)
    bad.at[1, column] = value
    for body, content_type, expected in (
        (_split_json(bad), "application/json", json_message),
        (bad.to_csv(index=False), "text/csv", csv_message or json_message),
    ):
        response = _post(champion, body, content_type)
        assert response.status_code == 400, response.text[-2000:]
        assert expected in response.json()["message"], response.json()["message"][-2000:]


def test_the_served_champion_refuses_a_missing_column_by_name(champion, scored_day) -> None:
    rows, _ = scored_day
    short = rows.head(3).drop(columns=["credit_score_1"])
    for body, content_type in (
        (short.to_csv(index=False), "text/csv"),
        (_split_json(short), "application/json"),
    ):
        response = _post(champion, body, content_type)
        assert response.status_code == 400 and "'credit_score_1'" in response.json()["message"]
