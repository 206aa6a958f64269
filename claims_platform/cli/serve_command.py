"""`claims-platform serve`: the registered champion (or a version) behind ``mlflow models serve``.

The server is MLflow's own, run on the platform's tracking store (``MLFLOW_TRACKING_URI``, by default
the embedded one under ``.local/``), with the local environment: POST the seed's CSV, or JSON
(``dataframe_split`` / ``dataframe_records``), to ``/invocations``. Every value is judged by the
model's own contract, so a bad row is refused with HTTP 400 naming its row, column and rule; columns
that are not features (the export's index and ``claim_status``, ids) are ignored and named in the
server's log.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from claims_platform.cli.errors import UserError
from claims_platform.core import settings


def model_uri(version: int | None) -> str:
    """``models:/<name>@champion``, or ``models:/<name>/<version>``."""
    name = settings.REGISTERED_MODEL_NAME
    return f"models:/{name}/{version}" if version is not None else f"models:/{name}@champion"


def serve_command(uri: str, host: str, port: int) -> list[str]:
    """The ``mlflow models serve`` command line (one worker, the local environment: no conda, no virtualenv)."""
    mlflow = Path(sys.executable).parent / "mlflow"
    executable = str(mlflow) if mlflow.exists() else (shutil.which("mlflow") or "mlflow")
    return [
        executable,
        "models",
        "serve",
        "-m",
        uri,
        "--env-manager",
        "local",
        "-h",
        host,
        "-p",
        str(port),
        "-w",
        "1",
    ]


def _check_registered(tracking_uri: str, version: int | None) -> int:
    """The version that will be served; a one-line error when there is none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name = settings.REGISTERED_MODEL_NAME
    try:
        found = (
            client.get_model_version(name, str(version))
            if version is not None
            else client.get_model_version_by_alias(name, "champion")
        )
    except MlflowException:
        what = f"version {version}" if version is not None else "a version with the alias 'champion'"
        raise UserError(
            f"the registry at {tracking_uri} has no {what} of {name}: train and decide a month first "
            "(claims-platform run --csv FILE, or make demo)"
        ) from None
    return int(found.version)


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the version exists, then become ``mlflow models serve`` (Ctrl-C stops it)."""
    from claims_platform.core.redaction import redact_url

    settings.configure_service_clients()
    tracking_uri = settings.default_mlflow_tracking_uri()
    version = _check_registered(tracking_uri, args.version)
    uri = model_uri(args.version)
    command = serve_command(uri, args.host, args.port)
    env = {**os.environ, settings.ENV_MLFLOW_TRACKING_URI: tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri}
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    env["PATH"] = (
        f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the server looks for uvicorn
    )
    print(
        f"serving {uri} (version {version}) from {redact_url(tracking_uri)} on http://{args.host}:{args.port}/invocations "
        "(CSV or JSON; Ctrl-C stops it)",
        file=sys.stderr,
        flush=True,
    )
    os.execvpe(command[0], command, env)
    return 0  # not reached: the process is now the server
