"""Fixtures of the production tests: the world's dates (relative to today, like the demo's) and the stacks.

These tests are SLOW (minutes each: every service is a real process, every run a run worker of the
code server) and marked ``integration``; `make test` runs them, on CI too. Run them alone with::

    .venv/bin/pytest claims_platform_tests/production -v -s

PostgreSQL: the server :func:`claims_platform_tests.postgres.admin_url` names (the machine's on
127.0.0.1:5432, ``CLAIMS_TEST_POSTGRES_ADMIN_URL``, or a throwaway server the suite starts itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from claims_platform.core.months import add_months
from claims_platform_tests.production.stack import World

# The tuning budget of the demo: a NUMBER of real trials, small, so a month trains in tens of seconds.
TRAINING_CONFIG = {
    "ops": {"candidate_model": {"config": {"n_trials": 6, "warm_start_trials": 3, "tuning_rows": 30_000}}}
}
BACKFILL_DAYS = 30


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes minutes (real services as subprocesses); integration tests"
    )


@dataclass(frozen=True)
class RecentWorld:
    """A world like the demo's: months ending yesterday (UTC), so the nightly schedule's partition has data.

    Two months are trained (the two before yesterday's month): the first needs two labelled months
    before it, so the world starts four months before yesterday's month (~4-5 months of days).
    """

    today: date

    @property
    def yesterday(self) -> date:
        return self.today - timedelta(days=1)

    @property
    def training_months(self) -> list[str]:
        month = self.yesterday.replace(day=1)
        return [add_months(month, -2).isoformat(), add_months(month, -1).isoformat()]

    @property
    def world(self) -> World:
        return World(add_months(self.yesterday.replace(day=1), -4), self.yesterday)

    @property
    def backfill_days(self) -> list[str]:
        return [(self.yesterday - timedelta(days=i)).isoformat() for i in range(BACKFILL_DAYS - 1, -1, -1)]

    @property
    def extra_day(self) -> str:
        """The day before the backfill: scored last, by a fresh process without CLAIMS_HOME."""
        return (self.yesterday - timedelta(days=BACKFILL_DAYS)).isoformat()

    @property
    def scoring_months(self) -> list[str]:
        first = date.fromisoformat(self.extra_day).replace(day=1)
        months = [first.isoformat()]
        while months[-1] < self.yesterday.replace(day=1).isoformat():
            months.append(add_months(date.fromisoformat(months[-1]), 1).isoformat())
        return months


def utc_now() -> datetime:
    return datetime.now(UTC)
