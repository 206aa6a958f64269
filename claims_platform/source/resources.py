"""Resources shared across domains: the source of applications and the storage settings.

The source of applications is swappable, like the reference project's HN client: the SQL warehouse
in every real deployment, and the simulator read directly (no database) for fast tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache

import dagster as dg
import pandas as pd
from pydantic import Field

from claims_platform.core.services import names_outages


@lru_cache(maxsize=8)
def _warehouse_for(url: str):
    # One engine (and connection pool) per warehouse per process: a sensor ticking every few
    # minutes in a long-lived code server must not open a new pool on every call.
    from claims_platform.source.warehouse import Warehouse

    return Warehouse(url)


class ApplicationSource(dg.ConfigurableResource, ABC):
    """Where applications and their outcomes are read from."""

    @abstractmethod
    def read_applications(self, first_day: date, last_day: date) -> pd.DataFrame:
        """Every application dated ``first_day``..``last_day`` (inclusive), as stored.

        A source that knows when each row was loaded adds a ``loaded_at`` column (naive UTC): the
        watermark the late-data sensor compares with.
        """

    @abstractmethod
    def read_outcomes(self, first_day: date, last_day: date, known_before: datetime) -> pd.DataFrame:
        """Outcomes of applications dated ``first_day``..``last_day`` known strictly before the cutoff."""

    @abstractmethod
    def loaded_days(self, first_day: date, last_day: date) -> pd.DataFrame:
        """Per application day in the range: rows stored and when the last of them was loaded."""

    def earlier_days(self, application_ids: Iterable[str], before: date) -> dict[str, date]:
        """For each id that already occurs on a day before ``before``, the first such day.

        A source that cannot tell returns nothing, and ids are then unique within each read only.
        """
        return {}


class WarehouseSource(ApplicationSource):
    """The policy-administration warehouse, over SQLAlchemy (SQLite file or PostgreSQL URL)."""

    url: str = Field(
        description="SQLAlchemy URL of the warehouse; a secret in production, so set it by EnvVar."
    )

    def _warehouse(self):
        return _warehouse_for(self.url)

    @names_outages
    def read_applications(self, first_day: date, last_day: date) -> pd.DataFrame:
        return self._warehouse().read_applications_between(first_day, last_day, with_loaded_at=True)

    @names_outages
    def read_outcomes(self, first_day: date, last_day: date, known_before: datetime) -> pd.DataFrame:
        return self._warehouse().read_outcomes(
            known_before=known_before, first_day=first_day, last_day=last_day
        )

    @names_outages
    def loaded_days(self, first_day: date, last_day: date) -> pd.DataFrame:
        return self._warehouse().loaded_days(first_day, last_day)

    @names_outages
    def earlier_days(self, application_ids: Iterable[str], before: date) -> dict[str, date]:
        return self._warehouse().first_days(application_ids, before=before)
