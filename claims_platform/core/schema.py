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


# What each column means, as shown in the UI's column schemas (``dagster/column_schema``). The seed
# exported anonymised features: where only their origin is known, that is what is said.
IDENTITY_DESCRIPTIONS = {
    APPLICATION_ID: "Stable id of the application in the policy-administration system.",
    APPLICATION_DATE: "Day the application was received (the daily partition it belongs to).",
    CLAIM_STATUS: "Outcome: 1 if the policy led to a claim, 0 if not (known label_lag_days after the application).",
    KNOWN_DATE: "Day the outcome became known to the warehouse.",
}
_SCALED_DESCRIPTIONS = {
    "age": "Applicant's age in years.",
    "height_cm": "Applicant's height in cm.",
    "weight_kg": "Applicant's weight in kg.",
    "income": "Applicant's annual income (0–250,000).",
    "credit_score_1": "Credit score from bureau 1 (0–999).",
    "credit_score_2": "Credit score from bureau 2 (0–700).",
    "credit_score_3": "Credit score from bureau 3 (0–710).",
}
_UNSCALED_DESCRIPTIONS = {
    **{f"financial_hist_{i}": f"Anonymised financial-history score {i} (unscaled)." for i in range(1, 5)},
    **{f"insurance_hist_{i}": f"Anonymised insurance-history score {i} (unscaled)." for i in range(1, 6)},
}

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
    return Column(
        name, "int" if not nullable else "float", levels=(0, 1), nullable=nullable, description=description
    )


COLUMNS: tuple[Column, ...] = (
    *(
        Column(n, "int", seed_low(lo), hi, description=_SCALED_DESCRIPTIONS[n])
        for n, (lo, hi) in SCALED_NUMERIC.items()
    ),
    *(
        Column(n, "float", -UNSCALED_BOUND, UNSCALED_BOUND, description=_UNSCALED_DESCRIPTIONS[n])
        for n in UNSCALED_NUMERIC
    ),
    Column("bmi", "int", *BMI_RANGE, description="Body-mass index: weight / (height/100)^2, as int."),
    _binary("gender", "Applicant's gender, coded 1/0."),
    Column(
        "marital_status", "category", levels=tuple(_LETTERS[:6]), description="Marital status, coded A–F."
    ),
    Column("occupation", "category", levels=tuple(_LETTERS[:7]), description="Occupation group, coded A–G."),
    Column("location", "category", levels=tuple(_LETTERS), description="Region of residence, coded A–Z."),
    _binary("prev_claim_rejected", "1 if a previous claim of the applicant was rejected."),
    _binary("known_health_conditions", "1 if the applicant declared a known health condition."),
    _binary("uk_residence", "1 if the applicant lives in the UK."),
    _binary("family_history_1", "Anonymised family-history flag 1."),
    _binary("family_history_2", "Anonymised family-history flag 2."),
    _binary(
        "family_history_3", "Anonymised family-history flag 3; often not answered (missing).", nullable=True
    ),
    _binary("family_history_4", "Anonymised family-history flag 4."),
    _binary("family_history_5", "Anonymised family-history flag 5."),
    _binary("product_var_1", "Anonymised product option 1 chosen (1/0)."),
    _binary("product_var_2", "Anonymised product option 2 chosen (1/0)."),
    Column(
        "product_var_3",
        "category",
        levels=tuple(_LETTERS[:4]),
        description="Anonymised product variant, coded A–D.",
    ),
    _binary("product_var_4", "Anonymised product option 4 chosen (1/0)."),
    Column("health_status", "int", 1, 4, description="Self-declared health status, 1–4."),
    Column("driving_record", "int", 1, 4, description="Driving-record grade, 1–4."),
    Column(
        "previous_claim_rate", "int", 1, 5, description="Band of the applicant's previous claim rate, 1–5."
    ),
    Column("education_level", "int", 0, 6, description="Highest education level, 0–6."),
    Column("income level", "int", 0, INCOME_LEVEL_BINS - 1, description="Income in 5 equal-width bins, 0–4."),
    Column("n_dependents", "int", 1, 5, description="Number of dependents, 1–5."),
    _binary("employment_type", "Employment type, coded 1/0; often not answered (missing).", nullable=True),
)

FEATURES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
# Every column of the application record and its outcome, described (the UI's column schemas).
COLUMN_DESCRIPTIONS: dict[str, str] = {**IDENTITY_DESCRIPTIONS, **{c.name: c.description for c in COLUMNS}}
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
