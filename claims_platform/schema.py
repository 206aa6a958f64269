"""The application record: every column, its type, range and levels — defined once.

The generator, the warehouse tables, the data contract and the feature preparation all read
these facts from here. Column names follow the seed's export exactly (including the space in
``"income level"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

APPLICATION_ID = "application_id"
APPLICATION_DATE = "application_date"
CLAIM_STATUS = "claim_status"
KNOWN_DATE = "known_date"

Kind = Literal["int", "float", "category"]


@dataclass(frozen=True)
class Column:
    """One feature column of an application."""

    name: str
    kind: Kind
    low: float | None = None  # inclusive bounds for numeric columns
    high: float | None = None
    levels: tuple[str, ...] | tuple[int, ...] | None = None  # allowed values of a categorical
    nullable: bool = False
    description: str = ""


# Numeric features rescaled by the world's FIXED maps to the seed's integer ranges.
SCALED_NUMERIC = {
    "age": (18, 95),
    "height_cm": (140, 210),
    "weight_kg": (45, 125),
    "income": (0, 250_000),
    "credit_score_1": (0, 999),
    "credit_score_2": (0, 700),
    "credit_score_3": (0, 710),
}
# Numeric features left on make_classification's own scale (floats).
UNSCALED_NUMERIC = (
    "financial_hist_1",
    "financial_hist_2",
    "financial_hist_3",
    "financial_hist_4",
    "insurance_hist_1",
    "insurance_hist_2",
    "insurance_hist_3",
    "insurance_hist_4",
    "insurance_hist_5",
)
# Bounds of the unscaled floats: far outside anything the world draws, tight enough to catch garbage.
UNSCALED_BOUND = 100.0
BMI_RANGE = (5, 80)  # weight 44–125 kg over height 1.39–2.10 m gives 9–64
# "income level" = pd.cut(income, bins=5, labels=False) in the seed: bin numbers 0..4.
INCOME_LEVEL_BINS = 5


def seed_low(low: float) -> float:
    """The smallest value the seed's rescaling can produce for a column mapped onto ``low``..high.

    The seed rescaled with ``MinMaxScaler`` and then truncated with ``astype(int)``: the batch's minimum
    comes out a hair below ``low`` in floating point (``44.99999999999999``) and truncates to
    ``low - 1``; at 0 it truncates towards zero and stays 0. The maximum truncates to ``high`` or
    ``high - 1``, inside the range.
    """
    return low - 1 if low > 0 else low

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _binary(name: str, description: str = "", nullable: bool = False) -> Column:
    return Column(name, "int" if not nullable else "float", levels=(0, 1), nullable=nullable, description=description)


COLUMNS: tuple[Column, ...] = (
    *(Column(n, "int", seed_low(lo), hi) for n, (lo, hi) in SCALED_NUMERIC.items()),
    *(Column(n, "float", -UNSCALED_BOUND, UNSCALED_BOUND) for n in UNSCALED_NUMERIC),
    Column("bmi", "int", *BMI_RANGE, description="weight / (height/100)^2, as int"),
    _binary("gender"),
    Column("marital_status", "category", levels=tuple(_LETTERS[:6])),
    Column("occupation", "category", levels=tuple(_LETTERS[:7])),
    Column("location", "category", levels=tuple(_LETTERS)),
    _binary("prev_claim_rejected"),
    _binary("known_health_conditions"),
    _binary("uk_residence"),
    _binary("family_history_1"),
    _binary("family_history_2"),
    _binary("family_history_3", nullable=True),
    _binary("family_history_4"),
    _binary("family_history_5"),
    _binary("product_var_1"),
    _binary("product_var_2"),
    Column("product_var_3", "category", levels=tuple(_LETTERS[:4])),
    _binary("product_var_4"),
    Column("health_status", "int", 1, 4),
    Column("driving_record", "int", 1, 4),
    Column("previous_claim_rate", "int", 1, 5),
    Column("education_level", "int", 0, 6),
    Column("income level", "int", 0, INCOME_LEVEL_BINS - 1, description="income in 5 equal-width bins, 0..4"),
    Column("n_dependents", "int", 1, 5),
    _binary("employment_type", nullable=True),
)

FEATURES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.kind == "category")
NUMERIC_FEATURES: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.kind != "category")

# The warehouse's `applications` table: identity, date, then the 40 features.
APPLICATION_COLUMNS: tuple[str, ...] = (APPLICATION_ID, APPLICATION_DATE, *FEATURES)
OUTCOME_COLUMNS: tuple[str, ...] = (APPLICATION_ID, CLAIM_STATUS, KNOWN_DATE)


# The pandas dtype of each kind as the source system hands it over. Categoricals are plain strings
# (object), not pandas ``category``: a fixed category dtype would silently turn an unknown level from
# a bad source row into NaN, and the data contract has to see the bad value to reject it. Integer
# columns become float64 only when a (bad) batch holds nulls in them, as pandas itself does.
PANDAS_DTYPES: dict[str, str] = {"int": "int64", "float": "float64", "category": "object"}
FEATURE_DTYPES: dict[str, str] = {c.name: PANDAS_DTYPES[c.kind] for c in COLUMNS}
