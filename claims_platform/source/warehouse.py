"""The data warehouse the applications live in: SQLAlchemy Core over SQLite (default) or PostgreSQL.

Two tables, typed from ``claims_platform.core.schema``:

- ``applications``: ``application_id`` (TEXT, deliberately NOT unique — real warehouses rarely enforce
  it, so duplicates must be caught by the data contract), ``application_date`` (DATE, indexed), the
  40 features, ``loaded_at`` (TIMESTAMP, UTC, when the row was written).
- ``claim_outcomes``: ``application_id``, ``claim_status``, ``known_date``.

Writers replace whole units in one transaction: :meth:`Warehouse.write_day` a day (the simulator),
:meth:`Warehouse.write_batch` every row whose id starts with a batch prefix (the CSV importer).

Missing and non-finite values: pandas' NaN is written as SQL NULL on both engines, because it means
"missing" (``family_history_3``, ``employment_type``) and SQL should see it with ``IS NULL``. SQLite
would store a NaN REAL as NULL anyway; PostgreSQL could keep 'NaN' but is kept consistent with SQLite.
+inf and -inf round-trip on both engines (SQLite REAL and PostgreSQL DOUBLE PRECISION hold them).
On reading, NULL comes back as NaN in numeric columns and None in text columns; an integer column with
a NULL comes back as float64 (as pandas would hold it), otherwise int64.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa

from claims_platform.core import schema, settings
from claims_platform.source.warehouse_values import (
    as_date,
    column_values,
    row_set,
    typed_applications,
    utc_naive,
)

APPLICATIONS = "applications"
CLAIM_OUTCOMES = "claim_outcomes"
LOADED_AT = "loaded_at"

_SQL_TYPES = {"int": sa.BigInteger, "float": sa.Float, "category": sa.Text}
_IN_LIST_CHUNK = 5_000


def _metadata() -> tuple[sa.MetaData, sa.Table, sa.Table]:
    metadata = sa.MetaData()
    applications = sa.Table(
        APPLICATIONS,
        metadata,
        sa.Column(schema.APPLICATION_ID, sa.Text, nullable=False, index=True),
        sa.Column(schema.APPLICATION_DATE, sa.Date, nullable=False, index=True),
        # Feature columns accept NULL: the warehouse stores what the source sends, the contract judges it.
        *(sa.Column(c.name, _SQL_TYPES[c.kind](), nullable=True) for c in schema.COLUMNS),
        sa.Column(LOADED_AT, sa.DateTime(timezone=False), nullable=False),
    )
    outcomes = sa.Table(
        CLAIM_OUTCOMES,
        metadata,
        sa.Column(schema.APPLICATION_ID, sa.Text, nullable=False, index=True),
        sa.Column(schema.CLAIM_STATUS, sa.Integer, nullable=False),
        sa.Column(schema.KNOWN_DATE, sa.Date, nullable=False, index=True),
    )
    return metadata, applications, outcomes


class BatchWrite(NamedTuple):
    """What :meth:`Warehouse.write_batch` did."""

    written: int  # applications inserted
    replaced: int  # applications of the batch deleted first
    replaced_days: tuple[date, ...]  # the days those replaced rows were on
    unchanged: bool = False  # the warehouse held exactly these rows already: nothing was written


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers (Dagster) read while a writer (the simulator) writes; with WAL, synchronous=NORMAL
    is still safe against application crashes and saves an fsync per transaction (a day)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _check_columns(frame: pd.DataFrame, expected: Sequence[str], what: str) -> None:
    missing = [c for c in expected if c not in frame.columns]
    unknown = [c for c in frame.columns if c not in expected]
    if missing or unknown:
        raise ValueError(f"{what}: missing columns {missing}, unknown columns {unknown}")


class Warehouse:
    """The applications warehouse at ``url`` (SQLAlchemy URL; default ``settings.default_warehouse_url()``)."""

    def __init__(self, url: str | None = None, *, engine: sa.Engine | None = None) -> None:
        self.url = url or settings.default_warehouse_url()
        if engine is None and self.url.startswith("sqlite:///"):
            path = self.url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        if engine is None:
            # A server that does not answer fails the connection in seconds, not the OS's minutes; a
            # pooled connection that died with a restarted server is replaced, not handed out.
            options = {}
            if sa.engine.make_url(self.url).get_backend_name() == "postgresql":
                options = {
                    "pool_pre_ping": True,
                    "connect_args": {"connect_timeout": settings.WAREHOUSE_CONNECT_TIMEOUT_SECONDS},
                }
            engine = sa.create_engine(self.url, **options)
        self.engine = engine
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.metadata, self.applications, self.outcomes = _metadata()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def create_tables(self) -> None:
        """Create the tables and indexes if they do not exist."""
        self.metadata.create_all(self.engine)

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    # ---------------------------------------------------------------- writing
    def write_day(
        self,
        day: date,
        applications: pd.DataFrame,
        outcomes: pd.DataFrame,
        *,
        loaded_at: datetime | None = None,
    ) -> int:
        """Replace ``day``'s applications and their outcomes in one transaction; returns rows written.

        Idempotent: writing the same day twice leaves one copy. ``loaded_at`` defaults to now (UTC);
        tests of late arrivals can pass an explicit time.
        """
        _check_columns(applications, schema.APPLICATION_COLUMNS, "applications")
        _check_columns(outcomes, schema.OUTCOME_COLUMNS, "outcomes")
        dates = set(applications[schema.APPLICATION_DATE].unique())
        if dates - {day}:
            raise ValueError(f"write_day({day}): rows dated {sorted(dates - {day})}")
        stamp = utc_naive(loaded_at or datetime.now(UTC))
        app_columns = self._columns(applications, self.applications, {LOADED_AT: stamp})
        outcome_columns = self._columns(outcomes, self.outcomes, {})
        day_ids = sa.select(self.applications.c[schema.APPLICATION_ID]).where(
            self.applications.c[schema.APPLICATION_DATE] == day
        )
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(self.outcomes).where(
                    self.outcomes.c[schema.APPLICATION_ID].in_(day_ids.scalar_subquery())
                )
            )
            conn.execute(
                sa.delete(self.applications).where(self.applications.c[schema.APPLICATION_DATE] == day)
            )
            # Outcomes of the new ids could exist under another day (an id moved); never keep two.
            new_ids = outcomes[schema.APPLICATION_ID].tolist()
            for i in range(0, len(new_ids), _IN_LIST_CHUNK):
                chunk = new_ids[i : i + _IN_LIST_CHUNK]
                conn.execute(
                    sa.delete(self.outcomes).where(self.outcomes.c[schema.APPLICATION_ID].in_(chunk))
                )
            self._bulk_insert(conn, self.applications, app_columns)
            self._bulk_insert(conn, self.outcomes, outcome_columns)
        return len(applications)

    def write_batch(
        self,
        id_prefix: str,
        applications: pd.DataFrame,
        outcomes: pd.DataFrame,
        *,
        loaded_at: datetime | None = None,
        keep_if_unchanged: bool = False,
    ) -> BatchWrite:
        """Replace the batch of ids starting with ``id_prefix`` by these rows, in ONE transaction.

        Every application and outcome whose id starts with ``id_prefix`` (compared exactly, case and
        all — no LIKE wildcards) is deleted, then the rows are inserted, whatever their days: writing
        the same batch again, even moved to other days, leaves one copy. Every id must start with
        ``id_prefix``. Returns what was written and replaced (and on which days the replaced rows
        were); on any error nothing changes.

        ``keep_if_unchanged``: when the warehouse holds exactly these rows for the batch already (every
        value, day and outcome), nothing is written (``unchanged``), so their load time, which the
        platform's late-data sensor watches, does not move.
        """
        if not id_prefix:
            raise ValueError("write_batch needs a non-empty id prefix")
        _check_columns(applications, schema.APPLICATION_COLUMNS, "applications")
        _check_columns(outcomes, schema.OUTCOME_COLUMNS, "outcomes")
        for what, frame in (("applications", applications), ("outcomes", outcomes)):
            ids = frame[schema.APPLICATION_ID].astype(str)
            foreign = ids[~ids.str.startswith(id_prefix)]
            if len(foreign):
                raise ValueError(
                    f"{what}: ids outside the batch {id_prefix!r}, e.g. {foreign.head(3).tolist()}"
                )
        stamp = utc_naive(loaded_at or datetime.now(UTC))
        app_columns = self._columns(applications, self.applications, {LOADED_AT: stamp})
        outcome_columns = self._columns(outcomes, self.outcomes, {})

        def in_batch(table: sa.Table) -> sa.ColumnElement[bool]:
            # substr, not LIKE: SQLite's LIKE ignores case, and '_' in a batch name is a wildcard.
            return sa.func.substr(table.c[schema.APPLICATION_ID], 1, len(id_prefix)) == id_prefix

        day = self.applications.c[schema.APPLICATION_DATE]
        with self.engine.begin() as conn:
            earlier_days = (
                conn.execute(sa.select(day).where(in_batch(self.applications)).distinct().order_by(day))
                .scalars()
                .all()
            )
            if keep_if_unchanged and earlier_days:
                stored = [
                    self._stored_rows(conn, table, in_batch(table))
                    for table in (self.applications, self.outcomes)
                ]
                if stored == [row_set(app_columns[:-1]), row_set(outcome_columns)]:
                    return BatchWrite(0, 0, tuple(as_date(d) for d in earlier_days), unchanged=True)
            conn.execute(sa.delete(self.outcomes).where(in_batch(self.outcomes)))
            replaced = conn.execute(sa.delete(self.applications).where(in_batch(self.applications))).rowcount
            self._bulk_insert(conn, self.applications, app_columns)
            self._bulk_insert(conn, self.outcomes, outcome_columns)
        return BatchWrite(len(applications), int(replaced or 0), tuple(as_date(d) for d in earlier_days))

    @staticmethod
    def _stored_rows(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> list[tuple]:
        """The rows of ``table`` that ``where`` selects, as :func:`row_set` gives them (without ``loaded_at``)."""
        columns = [c for c in table.columns if c.name != LOADED_AT]
        result = conn.execute(sa.select(*columns).where(where))
        rows = result.cursor.fetchall()
        result.close()
        return row_set(
            [list(values) for values in zip(*rows, strict=True)] if rows else [[] for _ in columns]
        )

    @staticmethod
    def _columns(frame: pd.DataFrame, table: sa.Table, constants: dict) -> list[list]:
        """The frame's values column by column in ``table``'s column order, DBAPI-ready."""
        return [
            [constants[c.name]] * len(frame) if c.name in constants else column_values(frame[c.name])
            for c in table.columns
        ]

    def _bulk_insert(self, conn: sa.Connection, table: sa.Table, columns: list[list]) -> None:
        """Insert values (one list per column of ``table``) the fastest way the engine offers.

        SQLAlchemy's executemany spends most of its time building one parameter dict per row, so the
        rows go straight to the driver: sqlite3's executemany, PostgreSQL's COPY.
        """
        if not columns[0]:
            return
        if self.dialect == "postgresql":
            self._copy_postgres(conn, table, list(zip(*columns, strict=True)))
            return
        # Date/time values go through SQLAlchemy's own bind processors so they are stored exactly as
        # SQLAlchemy reads them back; each distinct value is processed once (a day has one date).
        for i, column in enumerate(table.columns):
            processor = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            if processor is not None:
                converted = {v: processor(v) for v in set(columns[i]) if v is not None}
                columns[i] = [None if v is None else converted[v] for v in columns[i]]
        sql = str(table.insert().compile(dialect=conn.dialect))
        conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))

    @staticmethod
    def _copy_postgres(conn: sa.Connection, table: sa.Table, rows: list[tuple]) -> None:
        buffer = io.StringIO()
        # csv writes None as an unquoted empty field, which COPY's csv format reads as NULL; floats are
        # written with repr (exact), and PostgreSQL reads 'inf' / '-inf' as infinities.
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        buffer.seek(0)
        quote = conn.dialect.identifier_preparer.quote
        columns = ", ".join(quote(c.name) for c in table.columns)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.copy_expert(f"COPY {quote(table.name)} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        finally:
            cursor.close()

    # ---------------------------------------------------------------- reading
    def _read(self, statement: sa.Select) -> pd.DataFrame:
        """The statement's rows as the driver returns them: no SQLAlchemy row objects, no type processing
        (SQLite's dates and timestamps stay text; every caller types its date columns itself): the
        demo's October training window of outcomes (185k rows) reads in 0.98 s instead of 1.79 s."""
        with self.engine.connect() as conn:
            result = conn.execute(statement)
            columns = list(result.keys())
            rows = result.cursor.fetchall()
            result.close()
        return pd.DataFrame(rows, columns=columns)

    def _read_columns(self, statement: sa.Select) -> dict[str, tuple]:
        """The statement's values column by column, as the driver returns them (see :meth:`_read`). A
        frame built from rows types every value twice (a year of applications: 2.6 s); each column typed
        once from its own values takes a fifth of that."""
        with self.engine.connect() as conn:
            result = conn.execute(statement)
            names = list(result.keys())
            rows = result.cursor.fetchall()
            result.close()
        return (
            dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else {name: () for name in names}
        )

    def read_applications(self, day: date) -> pd.DataFrame:
        """``day``'s applications: ``schema.APPLICATION_COLUMNS``, sorted by id, the generator's dtypes."""
        return self.read_applications_between(day, day)

    def read_applications_between(
        self, start: date, end: date, *, with_loaded_at: bool = False
    ) -> pd.DataFrame:
        """Applications dated ``start`` to ``end`` inclusive, sorted by date then id.

        ``with_loaded_at`` adds the ``loaded_at`` column (naive UTC).
        """
        table = self.applications
        columns = [table.c[c] for c in schema.APPLICATION_COLUMNS]
        if with_loaded_at:
            columns.append(table.c[LOADED_AT])
        statement = sa.select(*columns).where(table.c[schema.APPLICATION_DATE].between(start, end))
        values = self._read_columns(statement)
        typed = typed_applications(values)
        if with_loaded_at:
            typed[LOADED_AT] = pd.to_datetime(pd.Series(values[LOADED_AT], dtype=object))
        # Sorted in pandas, not SQL: PostgreSQL's text collation may order ids differently from Python.
        return typed.sort_values(
            [schema.APPLICATION_DATE, schema.APPLICATION_ID], kind="stable", ignore_index=True
        )

    def read_outcomes(
        self,
        known_before: datetime | date,
        *,
        application_ids: Iterable[str] | None = None,
        first_day: date | None = None,
        last_day: date | None = None,
    ) -> pd.DataFrame:
        """Outcomes already known at ``known_before``, sorted by application id.

        An outcome is known from the first instant of its ``known_date`` (UTC), so it is returned when
        that instant is strictly before ``known_before`` (a date means its midnight): for the monthly
        cutoff "first instant of M+1" that is ``known_date`` <= the last day of M. Restrict to
        ``application_ids`` and/or to applications dated ``first_day``..``last_day`` (inclusive).
        """
        if isinstance(known_before, datetime):
            cutoff = utc_naive(known_before)
        else:
            cutoff = datetime.combine(known_before, time())
        last_known_day = cutoff.date() if cutoff.time() > time() else cutoff.date() - timedelta(days=1)
        table = self.outcomes
        statement = sa.select(*(table.c[c] for c in schema.OUTCOME_COLUMNS)).where(
            table.c[schema.KNOWN_DATE] <= last_known_day
        )
        if first_day is not None or last_day is not None:
            apps = self.applications
            in_range = sa.select(apps.c[schema.APPLICATION_ID])
            if first_day is not None:
                in_range = in_range.where(apps.c[schema.APPLICATION_DATE] >= first_day)
            if last_day is not None:
                in_range = in_range.where(apps.c[schema.APPLICATION_DATE] <= last_day)
            statement = statement.where(table.c[schema.APPLICATION_ID].in_(in_range.scalar_subquery()))
        if application_ids is None:
            frame = self._read(statement)
        else:
            ids = list(application_ids)
            parts = [
                self._read(statement.where(table.c[schema.APPLICATION_ID].in_(ids[i : i + _IN_LIST_CHUNK])))
                for i in range(0, len(ids), _IN_LIST_CHUNK)
            ]
            frame = pd.concat(parts, ignore_index=True) if parts else self._read(statement.where(sa.false()))
        frame = frame.astype({schema.CLAIM_STATUS: np.int64})
        frame[schema.KNOWN_DATE] = [as_date(d) for d in frame[schema.KNOWN_DATE]]
        return frame.sort_values(schema.APPLICATION_ID, kind="stable", ignore_index=True)

    def first_days(self, application_ids: Iterable[str], before: date) -> dict[str, date]:
        """For each id, the earliest application date strictly before ``before`` on which it occurs.

        Ids with no application before ``before`` are absent. The ids are looked up in chunks, so any
        number of them works on both engines.
        """
        ids = list(dict.fromkeys(str(i) for i in application_ids))
        table = self.applications
        id_column, date_column = table.c[schema.APPLICATION_ID], table.c[schema.APPLICATION_DATE]
        first: dict[str, date] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), _IN_LIST_CHUNK):
                statement = (
                    sa.select(id_column, sa.func.min(date_column))
                    .where(id_column.in_(ids[i : i + _IN_LIST_CHUNK]), date_column < before)
                    .group_by(id_column)
                )
                for application_id, day in conn.execute(statement):
                    first[application_id] = as_date(day)
        return first

    def loaded_days(self, start: date, end: date) -> pd.DataFrame:
        """Per application day in ``start``..``end``: ``application_date``, ``rows``, ``last_loaded_at``.

        Days without rows are absent. ``last_loaded_at`` (naive UTC) moves when a day is (re)written,
        which is what a late-arrival sensor watches. A warehouse nothing was loaded into yet (no
        tables) holds no days: sensors ticking before the first load must not fail.
        """
        table = self.applications
        if not sa.inspect(self.engine).has_table(table.name):
            return pd.DataFrame(
                {schema.APPLICATION_DATE: pd.Series(dtype=object), "rows": pd.Series(dtype=np.int64),
                 "last_loaded_at": pd.Series(dtype="datetime64[ns]")}
            )  # fmt: skip
        statement = (
            sa.select(
                table.c[schema.APPLICATION_DATE],
                sa.func.count().label("rows"),
                sa.func.max(table.c[LOADED_AT]).label("last_loaded_at"),
            )
            .where(table.c[schema.APPLICATION_DATE].between(start, end))
            .group_by(table.c[schema.APPLICATION_DATE])
            .order_by(table.c[schema.APPLICATION_DATE])
        )
        frame = self._read(statement)
        frame[schema.APPLICATION_DATE] = [as_date(d) for d in frame[schema.APPLICATION_DATE]]
        frame["rows"] = frame["rows"].astype(np.int64)
        # SQLite's max() over a DATETIME column returns the stored text; parse it back.
        frame["last_loaded_at"] = pd.to_datetime(frame["last_loaded_at"])
        return frame

    def day_counts(self) -> pd.DataFrame:
        """Per application day: ``application_date``, ``rows`` and ``claims`` (outcomes that are claims), ascending.

        Empty before anything was loaded (no tables yet).
        """
        apps, outcomes = self.applications, self.outcomes
        empty = pd.DataFrame({schema.APPLICATION_DATE: pd.Series(dtype=object), "rows": pd.Series(dtype=np.int64),
                              "claims": pd.Series(dtype=np.int64)})  # fmt: skip
        if not sa.inspect(self.engine).has_table(apps.name):
            return empty
        claimed = (
            sa.select(
                outcomes.c[schema.APPLICATION_ID], sa.func.max(outcomes.c[schema.CLAIM_STATUS]).label("claim")
            )
            .group_by(outcomes.c[schema.APPLICATION_ID])
            .subquery()
        )
        day = apps.c[schema.APPLICATION_DATE]
        statement = (
            sa.select(
                day,
                sa.func.count().label("rows"),
                sa.func.coalesce(sa.func.sum(claimed.c.claim), 0).label("claims"),
            )
            .select_from(
                apps.outerjoin(claimed, claimed.c[schema.APPLICATION_ID] == apps.c[schema.APPLICATION_ID])
            )
            .group_by(day)
            .order_by(day)
        )
        frame = self._read(statement)
        if frame.empty:
            return empty
        frame[schema.APPLICATION_DATE] = [as_date(d) for d in frame[schema.APPLICATION_DATE]]
        return frame.astype({"rows": np.int64, "claims": np.int64})

    def count_applications(self, start: date, end: date, *, excluding_prefix: str | None = None) -> int:
        """Applications dated ``start``..``end``, without those whose id starts with ``excluding_prefix`` (0 before
        anything was loaded: no tables yet)."""
        table = self.applications
        if not sa.inspect(self.engine).has_table(table.name):
            return 0
        statement = sa.select(sa.func.count()).where(table.c[schema.APPLICATION_DATE].between(start, end))
        if excluding_prefix:
            id_start = sa.func.substr(table.c[schema.APPLICATION_ID], 1, len(excluding_prefix))
            statement = statement.where(id_start != excluding_prefix)
        with self.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())

    def days_present(self) -> list[date]:
        """Every application date with at least one row, ascending."""
        column = self.applications.c[schema.APPLICATION_DATE]
        with self.engine.connect() as conn:
            values = conn.execute(sa.select(column).distinct().order_by(column)).scalars().all()
        return [as_date(v) for v in values]
