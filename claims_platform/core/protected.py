"""Protected characteristics: which columns they are, and what each is for (one setting for the platform).

``CLAIMS_PROTECTED_COLUMNS`` declares them as ``column=purpose`` pairs, comma-separated:

- ``excluded``: never a feature of the model (nor of its served signature, nor of its reasons), but kept
  in the data so that outcomes can be watched by it. ``gender`` is excluded by default: a UK or EU
  insurer may not set terms by sex (the EU gender directive as read in Test-Achats; the UK Equality Act).
- ``monitored``: a feature, and watched: outcomes are reported by its groups.

Default: ``gender=excluded,age=monitored,location=monitored``. Training records the declaration in the
model's feature spec and in its training key, so a changed declaration never reuses a stale model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from claims_platform.core import schema

ENV_PROTECTED_COLUMNS = "CLAIMS_PROTECTED_COLUMNS"
EXCLUDED = "excluded"
MONITORED = "monitored"
PURPOSES = (EXCLUDED, MONITORED)
DEFAULT_PROTECTED: dict[str, str] = {"gender": EXCLUDED, "age": MONITORED, "location": MONITORED}


class ProtectedColumnsError(ValueError):
    """The declaration names a column the schema does not have, or a purpose that is not one of them."""


def parse_protected(text: str) -> dict[str, str]:
    """``"gender=excluded,age=monitored"`` as ``{"gender": "excluded", "age": "monitored"}``; an empty text
    declares none."""
    declared: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        column, sep, purpose = (piece.strip() for piece in item.partition("="))
        if not sep or purpose not in PURPOSES:
            raise ProtectedColumnsError(
                f"{ENV_PROTECTED_COLUMNS}: '{item}' is not column=purpose with purpose one of {', '.join(PURPOSES)}"
            )
        if column not in schema.FEATURES:
            raise ProtectedColumnsError(f"{ENV_PROTECTED_COLUMNS}: '{column}' is not a feature of the schema")
        declared[column] = purpose
    return declared


def protected_columns(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The declaration in force: ``CLAIMS_PROTECTED_COLUMNS`` when set, else :data:`DEFAULT_PROTECTED`."""
    text = (os.environ if environ is None else environ).get(ENV_PROTECTED_COLUMNS)
    return dict(DEFAULT_PROTECTED) if text is None else parse_protected(text)


def excluded(declared: Mapping[str, str]) -> tuple[str, ...]:
    """The columns kept out of the model, in schema order."""
    return tuple(name for name in schema.FEATURES if declared.get(name) == EXCLUDED)
