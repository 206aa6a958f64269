"""The metadata helpers: figures rounded with their units, and pictures small enough for the UI to show inline."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from claims_platform.core.figures import money, money_range, one_decimal, percent
from claims_platform.core.pictures import (
    INLINE_MARKDOWN_CHARS,
    bars_markdown,
    is_inline,
    png_markdown,
    sparkline_markdown,
)
from claims_platform.scoring.assets import ReserveConfig


def _image(markdown) -> Image.Image:
    data = markdown.md_str.split("base64,", 1)[1].rstrip(")")
    return Image.open(io.BytesIO(base64.b64decode(data)))


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (307_091.4, "GBP", "£307,091"),
        (-12.6, "EUR", "-€13"),
        (1_234_567, "CHF", "1,234,567 CHF"),
        (0.4, "USD", "$0"),
    ],
)
def test_money_is_whole_units_with_the_currency(amount, currency, shown):
    assert money(amount, currency) == shown


def test_shares_are_percentages_and_expectations_one_decimal():
    assert percent(0.12345) == "12.3%"
    assert percent(0.012345, 2) == "1.23%"
    assert percent(None) == percent(float("nan")) == "n/a"
    assert one_decimal(20.149999) == 20.1
    assert money_range(144_000, 348_000) == "£144,000–£348,000"


def test_the_reserve_currency_is_configurable_and_checked():
    assert ReserveConfig().currency == "GBP"
    assert ReserveConfig(currency="EUR").currency == "EUR"
    with pytest.raises(ValueError, match="currency"):
        ReserveConfig(currency="pounds")


def test_a_months_backtest_sparkline_fits_inline_and_marks_the_days_outside_the_band():
    rng = np.random.default_rng(0)
    expected = rng.uniform(15, 25, 31)
    actual = expected.copy()
    actual[3] = expected[3] + 50  # far outside its interval
    picture = sparkline_markdown(expected, "backtest", low=expected - 8, high=expected + 8, marks=actual)
    assert is_inline(picture) and len(picture.md_str) < INLINE_MARKDOWN_CHARS
    image = _image(picture)
    assert image.height == 32 and image.width >= 31
    red = 4  # the palette index of marks outside their band
    assert red in set(image.getdata())


def test_column_bars_fit_inline_and_are_red_only_above_the_limit():
    assert red_pixels(bars_markdown([0.2, 0.5, 0.9] * 13 + [0.3], "below")) == 0
    assert red_pixels(bars_markdown([0.2, 1.6] + [0.3] * 38, "one above")) > 0
    assert is_inline(bars_markdown(list(np.linspace(0, 2, 40)), "forty columns"))


def red_pixels(picture) -> int:
    return sum(1 for index in _image(picture).getdata() if index == 4)


def test_a_full_chart_is_not_inline():
    assert not is_inline(png_markdown(b"\x89PNG" + bytes(2000), "chart"))


def test_series_of_different_lengths_are_refused():
    with pytest.raises(ValueError):
        sparkline_markdown([1.0, 2.0], "x", low=[0.0])
