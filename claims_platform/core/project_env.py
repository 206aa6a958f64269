"""The project's ``.env``: settings a person keeps beside the code (``make demo`` writes its first day there).

Dagster's CLI, webserver, daemon and code server read ``.env`` from their WORKING DIRECTORY and let its
values win over the environment. The platform's own commands (``claims-platform``, ``make dev``) read
the same file the same way, so that what they check (the first day, the warehouse) is what the
Dagster processes they start, or print commands for, will see. `make` runs everything from the repo
root, so there it is the repo's ``.env``. A test that runs from a folder of its own reads none.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from claims_platform.core import settings

FILE_NAME = ".env"


def env_file(folder: Path | None = None) -> Path:
    """The ``.env`` Dagster reads: in ``folder``, by default the working directory."""
    return (folder or Path.cwd()) / FILE_NAME


def read_env_file(path: Path) -> dict[str, str]:
    """The variables ``path`` sets (python-dotenv, as Dagster reads it); empty when there is no file."""
    if not path.exists():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_env_file(path: Path | None = None) -> dict[str, str]:
    """Read ``path`` (default: the working directory's ``.env``) into this process's environment, its values
    winning as in Dagster's processes, and take the platform's first day from it. Returns what it set.

    Call it before ``claims_platform.core.partitions`` is imported (the partitions are built from the first day).
    """
    values = read_env_file(path or env_file())
    os.environ.update(values)
    settings.use_first_day(settings.first_day_from_env())
    return values


def set_env_line(path: Path, name: str, value: str) -> None:
    """Create or update the ONE line ``name=value`` of a ``.env`` file; every other line stays as it is.

    A line that sets ``name`` (``name=...`` or ``export name=...``) is replaced where it stands (a
    second one is dropped); without one, the line is appended. Comments are left alone.
    """
    pattern = re.compile(rf"^\s*(export\s+)?{re.escape(name)}\s*=")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    out, done = [], False
    for line in lines:
        if pattern.match(line):
            if not done:
                out.append(f"{name}={value}")
                done = True
            continue
        out.append(line)
    if not done:
        out.append(f"{name}={value}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def shown(path: Path) -> str:
    """``path`` as a message names it: relative to the working directory when inside it (``./.env``)."""
    try:
        return f"./{path.relative_to(Path.cwd())}"
    except ValueError:
        return str(path)
