"""Figures with units, as assets show them: money, percentages, expected counts."""

from __future__ import annotations

import math

CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(amount: float, currency: str = "GBP") -> str:
    """An amount rounded to whole units with its currency: ``£307,091`` (``307,091 CHF`` without a symbol)."""
    whole = f"{abs(round(amount)):,}"
    sign = "-" if round(amount) < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{whole}" if symbol else f"{sign}{whole} {currency.upper()}"


def money_range(low: float, high: float, currency: str = "GBP") -> str:
    """A range of amounts: ``£144,000–£348,000``."""
    return f"{money(low, currency)}–{money(high, currency)}"


def percent(share: float | None, digits: int = 1) -> str:
    """A share (0..1) as a percentage: ``percent(0.12345) == "12.3%"``; ``"n/a"`` for None or NaN."""
    if share is None or not math.isfinite(share):
        return "n/a"
    return f"{100 * share:.{digits}f}%"


def one_decimal(value: float) -> float:
    """A count that is an expectation (expected claims), to one decimal."""
    return round(float(value), 1)
