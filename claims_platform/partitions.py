"""Partitions shared by every domain: one calendar, one timezone, one first day."""

import dagster as dg

from claims_platform.settings import FIRST_DAY, TIMEZONE

# Each day's applications, scores, forecast and drift report.
daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat(), timezone=TIMEZONE)
# Each month's training set, model and champion decision.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_DAY.isoformat(), timezone=TIMEZONE)
# Months in which a model scores: up to and including the current month, whose days are scored
# while it is still running (its model was decided at the start of the month).
scoring_months = dg.MonthlyPartitionsDefinition(start_date=FIRST_DAY.isoformat(), timezone=TIMEZONE, end_offset=1)
