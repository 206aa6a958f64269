"""Facts of the platform that several modules share — defined here once.

Environment variable names and their embedded defaults live here too, so the CLI, the Dagster
definitions and the docs agree. Nothing here imports a heavy library.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

# The platform's first day: daily and monthly partitions start on it, and so do the simulator's
# and the CSV importer's defaults. ``CLAIMS_FIRST_DAY`` (an ISO date) sets it; it is read once, at
# import, because the partitions are built from it when the definitions are imported.
ENV_FIRST_DAY = "CLAIMS_FIRST_DAY"
DEFAULT_FIRST_DAY = date(2025, 1, 1)
TIMEZONE = "UTC"


def first_day_from_env() -> date:
    """``CLAIMS_FIRST_DAY`` (YYYY-MM-DD, the first of a month) or the default 2025-01-01.

    The first of a month, because the monthly partitions (training, champion chain) start on it too.
    """
    text = (os.environ.get(ENV_FIRST_DAY) or "").strip()
    if not text:
        return DEFAULT_FIRST_DAY
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{ENV_FIRST_DAY} must be a date, YYYY-MM-DD, got {text!r}") from None
    if day.day != 1:
        raise ValueError(
            f"{ENV_FIRST_DAY} must be the first day of a month (monthly partitions start on it), got {text!r}"
        )
    return day


FIRST_DAY = first_day_from_env()


def use_first_day(day: date) -> None:
    """Make ``day`` the first day of this process and of the processes it starts (the environment).

    Only before the partitions are built: raises ``RuntimeError`` once ``claims_platform.core.partitions``
    has been imported, whose partitions would keep the old day.
    """
    import sys

    global FIRST_DAY
    if day.day != 1:
        raise ValueError(f"the first day must be the first of a month, got {day}")
    if day != FIRST_DAY and "claims_platform.core.partitions" in sys.modules:
        raise RuntimeError(
            f"the first day cannot change to {day} in this process: the partitions were built from {FIRST_DAY}"
        )
    os.environ[ENV_FIRST_DAY] = day.isoformat()
    FIRST_DAY = day


# The nightly scoring schedule's time of day (UTC), for the day just ended. Not before 06:00: the
# model that scores the first day of a month is decided by the monthly training at 06:00 on day 2.
ENV_NIGHTLY_SCORING_TIME = "CLAIMS_NIGHTLY_SCORING_TIME"
DEFAULT_NIGHTLY_SCORING_TIME = "07:00"


def nightly_scoring_time() -> tuple[int, int]:
    """``CLAIMS_NIGHTLY_SCORING_TIME`` (HH:MM, UTC) as (hour, minute); default 07:00."""
    text = (os.environ.get(ENV_NIGHTLY_SCORING_TIME) or DEFAULT_NIGHTLY_SCORING_TIME).strip()
    hour, _, minute = text.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60 and len(minute) == 2):
        raise ValueError(f"{ENV_NIGHTLY_SCORING_TIME} must be a time of day, HH:MM (UTC), got {text!r}")
    return int(hour), int(minute)


# Concurrency lanes: every job's runs carry ``claims/lane``; the production instance runs one run per
# lane at a time (deploy/dagster.yaml), so a nightly run, a late re-score and a scoring backfill never
# write the same day together, nor two trainings the same champion chain.
LANE_TAG = "claims/lane"
DAILY_LANE, MONTHLY_LANE, MONITORING_LANE = "daily", "monthly", "monitoring"

# Outcomes (claim / no claim) become known this many days after the application date.
LABEL_LAG_DAYS = 30
# The world's seed unless one is given; same seed and day -> byte-identical rows.
DEFAULT_WORLD_SEED = 20250101
# Mean applications per day.
DAILY_VOLUME = 1200

REPO_ROOT = Path(__file__).resolve().parents[2]  # claims_platform/core/settings.py -> the repository
# Everything the embedded defaults write goes under this one git-ignored folder.
ENV_HOME = "CLAIMS_HOME"
ENV_WAREHOUSE_URL = "CLAIMS_WAREHOUSE_URL"
ENV_STORAGE_URL = "CLAIMS_STORAGE_URL"


def local_home() -> Path:
    """The folder that holds all local state (warehouse, storage, MLflow, Dagster)."""
    return Path(os.environ.get(ENV_HOME) or REPO_ROOT / ".local").resolve()


def default_warehouse_url() -> str:
    """SQLite file under the local home unless ``CLAIMS_WAREHOUSE_URL`` says otherwise."""
    return os.environ.get(ENV_WAREHOUSE_URL) or f"sqlite:///{local_home() / 'warehouse.db'}"


def default_storage_url() -> str:
    """Local folder under the local home unless ``CLAIMS_STORAGE_URL`` says otherwise (s3://...)."""
    return os.environ.get(ENV_STORAGE_URL) or str(local_home() / "storage")


# Monitoring: a drift alert (and an off-cycle retrain) after this many consecutive drifted days.
ENV_DRIFT_ALERT_DAYS = "CLAIMS_DRIFT_ALERT_DAYS"
DEFAULT_DRIFT_ALERT_DAYS = 3


# ... and the episode is over after this many days in a row without drift (hysteresis).
ENV_DRIFT_QUIET_DAYS = "CLAIMS_DRIFT_QUIET_DAYS"
DEFAULT_DRIFT_QUIET_DAYS = 7
ENV_DRIFT_LEVEL_DAYS = "CLAIMS_DRIFT_LEVEL_DAYS"
DEFAULT_DRIFT_LEVEL_DAYS = 7


def _whole_days(name: str, default: int) -> int:
    text = os.environ.get(name) or str(default)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of days >= 1, got {text!r}")
    return int(text)


def drift_alert_days() -> int:
    """``CLAIMS_DRIFT_ALERT_DAYS`` (a whole number of days, at least 1) or the default 3."""
    return _whole_days(ENV_DRIFT_ALERT_DAYS, DEFAULT_DRIFT_ALERT_DAYS)


def drift_quiet_days() -> int:
    """``CLAIMS_DRIFT_QUIET_DAYS`` (a whole number of days, at least 1) or the default 7."""
    return _whole_days(ENV_DRIFT_QUIET_DAYS, DEFAULT_DRIFT_QUIET_DAYS)


def drift_level_days() -> int:
    """``CLAIMS_DRIFT_LEVEL_DAYS`` (days pooled by the predictions' level test, at least 1) or the default 7."""
    return _whole_days(ENV_DRIFT_LEVEL_DAYS, DEFAULT_DRIFT_LEVEL_DAYS)


# Training: months of applications in a training window (the partition mapping is built from it).
TRAINING_WINDOW_MONTHS = 12
ENV_MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_MLFLOW_ARTIFACT_LOCATION = "CLAIMS_MLFLOW_ARTIFACT_LOCATION"
ENV_MLFLOW_UI_URL = "CLAIMS_MLFLOW_UI_URL"
REGISTERED_MODEL_NAME = "claims_classifier"
MLFLOW_EXPERIMENT = "claims_model"


def default_mlflow_tracking_uri() -> str:
    """SQLite-backed MLflow under the local home unless ``MLFLOW_TRACKING_URI`` is set."""
    return os.environ.get(ENV_MLFLOW_TRACKING_URI) or f"sqlite:///{local_home() / 'mlflow.db'}"


def tracks_to_server(tracking_uri: str | None) -> bool:
    """Whether ``tracking_uri`` is an MLflow tracking server (http/https) rather than a local store."""
    return (tracking_uri or "").split(":", 1)[0].lower() in ("http", "https")


def default_mlflow_artifact_location() -> str | None:
    """Where a new experiment keeps its artifacts: ``CLAIMS_MLFLOW_ARTIFACT_LOCATION`` when set (a folder,
    ``s3://...`` or ``mlflow-artifacts:/...``); else the tracking server's own artifact root (None) when
    tracking to a server; else a local folder under the local home."""
    configured = os.environ.get(ENV_MLFLOW_ARTIFACT_LOCATION)
    if configured:
        return configured
    if tracks_to_server(os.environ.get(ENV_MLFLOW_TRACKING_URI)):
        return None
    return (local_home() / "mlartifacts").as_uri()


# S3: the endpoint of an S3-compatible store (unset on AWS). The platform's one S3 setting: the
# storage IO managers, the model loader and MLflow's S3 client all take it from here.
ENV_S3_ENDPOINT_URL = "CLAIMS_S3_ENDPOINT_URL"

# Outages fail fast: client-side retries of every service are bounded so that a step fails within
# seconds and its Dagster retry policy (back-off between attempts) decides the rest; the whole of
# it stays under a minute. Values already in the environment win.
BOUNDED_CLIENT_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",  # MLflow's default, 7 with factor 2, waits 253 s
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
WAREHOUSE_CONNECT_TIMEOUT_SECONDS = 10
# Attempts per S3 request (boto3's standard retry mode, also s3fs's client): boto3's default of 5
# backs off up to ~15 s per request, which three step attempts turn into a minute.
S3_MAX_ATTEMPTS = 3


def configure_service_clients() -> None:
    """Bound MLflow's client retries and hand the S3 endpoint to MLflow's and boto3's S3 clients.

    Called when the definitions are imported (code server, run workers) and by the CLI.
    """
    for name, value in BOUNDED_CLIENT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    endpoint = os.environ.get(ENV_S3_ENDPOINT_URL)
    if endpoint:
        os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", endpoint)
        os.environ.setdefault("AWS_ENDPOINT_URL_S3", endpoint)
