"""Run config refused at launch, not halfway through a run.

Dagster turns a ``dg.Config`` class into a config schema of types only: bounds (``Field(ge=...)``) and
cross-field rules (``model_validator``) run when the step builds its config object, i.e. after the run
has started and earlier steps have written. Dagster does post-process every run config value when it
plans a run (the launchpad's Launch, a schedule or sensor request, ``materialize``) — the hook behind
``EnvVar`` — so :func:`validate_config_at_launch` hangs each asset's pydantic validation there: a bad
value is refused before the run exists, with a message naming the op, the field and the rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import dagster as dg

from claims_platform.adapters.dagster_internals import refuse_at_launch


def config_problems(config_class: type[dg.Config], values: Any) -> list[str]:
    """Every validation problem of ``values`` for ``config_class``, one line each ("field: rule")."""
    from pydantic import ValidationError

    try:
        config_class.model_validate(values or {})
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            field = ".".join(str(part) for part in item["loc"]) or "(fields together)"
            message = item["msg"].removeprefix("Value error, ")
            problems.append(
                f"{field}: {message} (given {item['input']!r})" if item["loc"] else f"{field}: {message}"
            )
        return problems
    return []


def _config_class(op: dg.OpDefinition) -> type[dg.Config] | None:
    compute_fn = op.compute_fn
    if not hasattr(compute_fn, "has_config_arg") or not compute_fn.has_config_arg():
        return None
    annotation = compute_fn.get_config_arg().annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, dg.Config) else None


def validate_config_at_launch(assets: Iterable[Any]) -> None:
    """Make Dagster run each asset's config validators when it plans a run (see the module's doc)."""
    for asset in assets:
        op = getattr(asset, "op", None)
        config_class = _config_class(op) if op is not None else None
        if config_class is None or op.config_schema is None:
            continue
        config_type = op.config_schema.as_field().config_type
        refuse_at_launch(config_type, partial(config_problems, config_class), op.name)
