"""Calendar arithmetic on months (pure), beside the partitions that use the same calendar.

Monthly partition keys are the first day of the month (``"2025-03-01"``); daily keys are days.
"""

from __future__ import annotations

from datetime import date


def add_months(month: date, months: int) -> date:
    """The first day of the month ``months`` after (or before) ``month``'s month."""
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_key(day: str | date) -> str:
    """The monthly partition key of the month a day (``date`` or ``"YYYY-MM-DD"``) falls in."""
    text = day.isoformat() if isinstance(day, date) else day
    return f"{text[:7]}-01"


def shift_month_key(key: str, months: int) -> str:
    """The monthly partition key ``months`` after (or before) the month of ``key``."""
    return add_months(date.fromisoformat(month_key(key)), months).isoformat()
