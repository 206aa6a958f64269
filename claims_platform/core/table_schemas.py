"""Column schemas of stored tables (``dagster/column_schema``), with what every column means."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache

import dagster as dg


@cache
def column_descriptions() -> dict[str, str]:
    """What every stored column of the application record means: the features, identity and outcome
    columns of ``core/schema.py`` and the two columns the data contract adds to rejected rows."""
    from claims_platform.core import contract, schema

    return {
        **schema.COLUMN_DESCRIPTIONS,
        contract.ROW_NUMBER: "Position of the row in the batch as read from the warehouse (0-based), to find it there.",
        contract.REJECTION_REASON: "Every rule of the data contract the row broke: the column, the rule and the value.",
    }


def table_schema(frame, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    """``frame``'s columns with their pandas dtypes and what they mean (``descriptions`` first, then
    :func:`column_descriptions`), for ``dagster/column_schema``."""
    columns = tuple((str(name), str(dtype)) for name, dtype in frame.dtypes.items())
    return _schema(columns, tuple(sorted((descriptions or {}).items())))


@lru_cache(maxsize=256)
def _schema(
    columns: tuple[tuple[str, str], ...], descriptions: tuple[tuple[str, str], ...]
) -> dg.TableSchema:
    # Built once per column layout: a year's backfill stores 365 partitions of the same columns.
    known = {**column_descriptions(), **dict(descriptions)}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=dtype, description=known.get(name)) for name, dtype in columns
        ]
    )


def declared_descriptions(schema: object) -> dict[str, str]:
    """The column descriptions of a ``dagster/column_schema`` an asset declares in its definition metadata."""
    value = getattr(schema, "schema", schema)  # a TableSchemaMetadataValue wraps the TableSchema
    columns = getattr(value, "columns", None) or ()
    return {c.name: c.description for c in columns if c.description}
