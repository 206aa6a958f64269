"""Protected characteristics: declared once; the excluded ones are never features, the spec says so."""

import pytest

from claims_platform.core import schema
from claims_platform.core.protected import (
    DEFAULT_PROTECTED,
    ENV_PROTECTED_COLUMNS,
    ProtectedColumnsError,
    excluded,
    parse_protected,
    protected_columns,
)
from claims_platform.models.packaging import model_signature
from claims_platform.training import runtime
from claims_platform.training.features import feature_spec, model_features


def test_gender_is_excluded_by_default_and_age_and_location_are_watched():
    assert protected_columns({}) == DEFAULT_PROTECTED
    assert DEFAULT_PROTECTED == {"gender": "excluded", "age": "monitored", "location": "monitored"}
    assert excluded(DEFAULT_PROTECTED) == ("gender",)
    assert "gender" not in model_features() and {"age", "location"} <= set(model_features())


def test_the_declaration_is_read_from_one_setting_and_checked():
    declared = protected_columns({ENV_PROTECTED_COLUMNS: " gender = monitored , location=excluded "})
    assert declared == {"gender": "monitored", "location": "excluded"}
    assert protected_columns({ENV_PROTECTED_COLUMNS: ""}) == {}
    with pytest.raises(ProtectedColumnsError, match="'sex' is not a feature"):
        parse_protected("sex=excluded")
    with pytest.raises(ProtectedColumnsError, match="'gender=hidden' is not column=purpose"):
        parse_protected("gender=hidden")


def test_the_spec_records_the_declaration_and_drops_the_excluded_columns():
    spec = feature_spec({"gender": "excluded", "location": "excluded", "age": "monitored"})
    assert "gender" not in spec["features"] and "location" not in spec["features"]
    assert "location" not in spec["categorical"] and "gender" not in spec["contract"]
    assert spec["protected"] == {"gender": "excluded", "location": "excluded", "age": "monitored"}
    assert "protected characteristic" in spec["dropped"]["gender"]
    assert feature_spec({})["features"] == [c for c in schema.FEATURES if c != "income level"]


def test_the_trained_model_its_signature_and_its_reasons_never_see_gender(trained, parts):
    assert "gender" not in trained.spec["features"] and "gender" not in trained.booster.feature_name()
    assert "gender" not in model_signature(trained.spec).inputs.input_names()
    explained = runtime.Scorer(trained.booster, trained.calibrator, trained.spec).explain(
        parts.holdout.head(200)
    )
    for i in range(1, runtime.REASON_COUNT + 1):
        assert "gender" not in set(explained[runtime.REASON_FEATURE.format(i)].dropna())
    assert not explained[runtime.REASON_TEXT].str.contains("gender").any()
