"""A process environment of its own, for the test suite and the benchmarks.

Every variable that points the platform (or a library it drives) at state outside the process is
removed — ``CLAIMS_*``, ``MLFLOW_*``, ``DAGSTER_*``, AWS credentials, region and endpoints —
``CLAIMS_HOME`` and ``DAGSTER_HOME`` point into a folder of its own, and that folder becomes the
working directory. So nothing reads the checkout's ``.env`` (Dagster's CLI, webserver and code server
read the one in their working directory, where ``make demo`` writes its first day) or ``.local/``,
whatever ran in the checkout before: ``make demo``, ``make dev``, an import.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
POINTING_PREFIXES = ("CLAIMS_", "MLFLOW_", "DAGSTER_")
POINTING_AWS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
)  # fmt: skip
KEPT_PREFIXES = ("CLAIMS_TEST_",)  # the suite's own settings (which PostgreSQL to use)


def isolate(base: Path, *, chdir: bool = True) -> None:
    """Give this process (and what it starts) the environment and working directory described above, in ``base``.

    Call it before ``claims_platform.core.settings`` is imported: the settings read the environment then.
    ``chdir=False`` leaves the working directory to :func:`enter` (pytest resolves its arguments against it
    while it collects).
    """
    for name in list(os.environ):
        if (
            name.startswith(POINTING_PREFIXES) and not name.startswith(KEPT_PREFIXES)
        ) or name in POINTING_AWS:
            del os.environ[name]
    (base / "dagster_home").mkdir(parents=True, exist_ok=True)
    os.environ["CLAIMS_HOME"] = str(base / "claims_home")
    os.environ["DAGSTER_HOME"] = str(base / "dagster_home")
    os.environ["DO_NOT_TRACK"] = "1"
    # Subprocesses started with `python -m claims_platform_tests...` or `-m bench...` find the checkout's packages.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    if chdir:
        enter(base)


def enter(base: Path) -> None:
    """Make ``base`` the working directory (it holds no ``.env``)."""
    os.chdir(base)
