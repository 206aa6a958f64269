"""The platform's first day against the days a user brings: moved where that is safe, else one line saying what to change.

The partitions start on the first day (``CLAIMS_FIRST_DAY``, from the environment or the working
directory's ``.env``, as Dagster reads it): a day before it can never be ingested, so an import or a run
that holds such days must move it first. Moving it is safe while the Dagster instance holds no
partition yet (a fresh home): the line is written into ``.env``, for this process and every Dagster
process after it. Once the instance holds history (``make demo``'s world, an earlier import), moving the
first day would mix two worlds in one champion chain and one registry: the user is told, in one line,
to start from a fresh home or to give the rows later days.
"""

from __future__ import annotations

from datetime import date

from claims_platform.cli.errors import UserError
from claims_platform.core import project_env, settings


def settle_first_day(earliest: date, what: str, *, remedy: str = "") -> str | None:
    """Make the platform's first day hold ``earliest`` (the first day of ``what``).

    Returns a note when the first day was moved, None when nothing had to change; raises :class:`UserError`
    (one line) when it cannot move. Call it before ``claims_platform.core.partitions`` is imported.
    """
    first = settings.FIRST_DAY
    if earliest >= first:
        return None
    from claims_platform.cli.runs import history_start, open_instance

    wanted = earliest.replace(day=1)
    env_file = project_env.env_file()
    instance = open_instance()
    try:
        history = history_start(instance)
    finally:
        instance.dispose()
    if history is not None:
        home = settings.local_home()
        raise UserError(
            f"{what} starts on {earliest}, before the platform's first day {first} ({settings.ENV_FIRST_DAY}, "
            f"{project_env.shown(env_file)}), and the Dagster instance already holds days from {history}: start from a "
            f"fresh home (remove {home} and the {settings.ENV_FIRST_DAY} line of {project_env.shown(env_file)})"
            + (f" or {remedy}" if remedy else "")
        )
    project_env.set_env_line(env_file, settings.ENV_FIRST_DAY, wanted.isoformat())
    settings.use_first_day(wanted)
    return (
        f"first day moved from {first} to {wanted} ({settings.ENV_FIRST_DAY} in {project_env.shown(env_file)}, which "
        "the Dagster processes read): the instance held no partition yet"
    )
