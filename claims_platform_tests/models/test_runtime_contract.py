"""The model's own contract check, its synthetic input example and signature, and its self-containment."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.models.utils import _enforce_schema
from mlflow.types.schema import DataType

from claims_platform.core import schema
from claims_platform.models import loading, packaging, pyfunc
from claims_platform.training import features, runtime

SPEC = features.feature_spec()


@pytest.fixture(scope="module")
def valid_rows(window) -> pd.DataFrame:
    """Ten rows as the warehouse holds them (ids, date and label included), with nulls in nullable columns."""
    return window.head(10).reset_index(drop=True)


def _with(rows: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    bad = rows.copy()
    bad[column] = bad[column].astype(object)
    bad.at[row, column] = value
    return bad


def test_feature_spec_carries_the_schema_contract():
    assert SPEC["spec_version"] == features.SPEC_VERSION == 3
    assert list(SPEC["contract"]) == SPEC["features"]
    for name, rules in SPEC["contract"].items():
        column = schema.COLUMNS_BY_NAME[name]
        assert (rules["kind"], rules["low"], rules["high"], rules["nullable"]) == (
            column.kind,
            column.low,
            column.high,
            column.nullable,
        )
        assert rules["levels"] == (list(column.levels) if column.levels is not None else None)


def test_valid_rows_pass(valid_rows):
    assert valid_rows[["family_history_3", "employment_type"]].isna().any().all()  # nulls where allowed
    assert runtime.check_contract(valid_rows, SPEC) == []


@pytest.mark.parametrize(
    ("column", "value", "rule", "text"),
    [
        ("location", "ZZ", runtime.RULE_LEVELS, "value 'ZZ' is not one of the levels A..Z"),
        ("location", 5, runtime.RULE_LEVELS, "value 5 is not one of the levels A..Z"),
        (
            "marital_status",
            None,
            runtime.RULE_REQUIRED,
            "value is null, but the column is required (not nullable)",
        ),
        ("age", np.nan, runtime.RULE_REQUIRED, "value is null, but the column is required (not nullable)"),
        ("age", 200, runtime.RULE_RANGE, "value 200 is out of range 17..95"),
        ("income", -1, runtime.RULE_RANGE, "value -1 is out of range 0..250000"),
        ("financial_hist_1", np.inf, runtime.RULE_RANGE, "value inf is out of range -100..100"),
        ("age", "forty", runtime.RULE_NUMBER, "value 'forty' is not a number"),
        ("financial_hist_2", "1.5 %", runtime.RULE_NUMBER, "value '1.5 %' is not a number"),
        ("uk_residence", True, runtime.RULE_NUMBER, "value True is not a number"),
        ("age", 40.5, runtime.RULE_WHOLE, "value 40.5 is not a whole number"),
        ("uk_residence", 2, runtime.RULE_LEVELS, "value 2 is not one of the levels 0, 1"),
        ("family_history_3", 0.5, runtime.RULE_LEVELS, "value 0.5 is not one of the levels 0, 1"),
    ],
)
def test_each_kind_of_bad_value_is_named_by_row_column_and_rule(valid_rows, column, value, rule, text):
    violations = runtime.check_contract(_with(valid_rows, 3, column, value), SPEC)
    assert [(v.row, v.column, v.rule) for v in violations] == [(3, column, rule)]
    assert str(violations[0]) == f"row 3, column {column!r}: {text}"


def test_null_is_allowed_where_the_contract_says_nullable(valid_rows):
    rows = valid_rows.assign(family_history_3=np.nan, employment_type=None)
    assert runtime.check_contract(rows, SPEC) == []


def test_violations_come_one_per_value_in_row_then_feature_order(valid_rows):
    bad = _with(_with(_with(valid_rows, 5, "location", "?"), 1, "age", "x"), 5, "age", 10)
    bad = bad.drop(columns=["n_dependents"])
    found = [(v.row, v.column, v.rule) for v in runtime.check_contract(bad, SPEC)]
    assert found == [
        (None, "n_dependents", runtime.RULE_PRESENT),
        (1, "age", runtime.RULE_NUMBER),  # not also "out of range": the first rule broken
        (5, "age", runtime.RULE_RANGE),
        (5, "location", runtime.RULE_LEVELS),
    ]
    assert str(runtime.Violation(None, "n_dependents", runtime.RULE_PRESENT)) == (
        "column 'n_dependents': missing from the input"
    )


def test_the_error_lists_the_first_twenty_violations_and_counts_the_rest(valid_rows):
    bad = pd.concat([valid_rows] * 3, ignore_index=True).assign(location="ZZ")
    err = runtime.ContractViolation(runtime.check_contract(bad, SPEC))
    assert len(err.violations) == 30
    lines = str(err).splitlines()
    assert "30 violation(s)" in lines[0]
    assert lines[1].strip() == "row 0, column 'location': value 'ZZ' is not one of the levels A..Z"
    assert len(lines) == 1 + 20 + 1 and lines[-1].strip() == "... and 10 more"


def test_scorer_checks_the_contract_only_when_asked(trained, valid_rows):
    scorer = runtime.Scorer(trained.booster, trained.calibrator, trained.spec)
    bad = _with(valid_rows, 2, "location", "ZZ")
    with pytest.raises(runtime.ContractViolation, match=r"row 2, column 'location'"):
        scorer.predict(bad, check=True)
    # Platform scoring (rows already held to the platform's contract) pays for no check.
    assert len(scorer.predict(bad)) == len(bad)
    np.testing.assert_array_equal(scorer.predict(valid_rows, check=True), trained.predict_proba(valid_rows))


def test_signature_declares_every_feature_as_text_so_the_contract_judges_each_value():
    signature = packaging.model_signature(SPEC)
    types = dict(zip(signature.inputs.input_names(), signature.inputs.input_types(), strict=True))
    # The features, then the optional column a CSV request asks for reasons with (CSV carries no params).
    assert list(types) == [*SPEC["features"], pyfunc.REASONS_PARAM]
    assert signature.params.to_dict() == [
        {"name": pyfunc.REASONS_PARAM, "type": "boolean", "default": False, "shape": None}
    ]
    # MLflow's cast would decide first otherwise: a long column refuses a null with MLflow's error and
    # truncates 40.5 to 40 over JSON; as text, every value reaches the contract as it was sent.
    assert set(types.values()) == {DataType.string}
    # A missing feature column is still refused by name.
    assert [spec.name for spec in signature.inputs.inputs if not spec.required] == [pyfunc.REASONS_PARAM]
    assert signature.outputs.input_names() == [runtime.PROBABILITY_COLUMN]
    assert signature.outputs.input_types() == [DataType.double]
    sent = pd.DataFrame({name: pd.Series([None], dtype=object) for name in SPEC["features"]})
    sent.loc[0, ["age", "income"]] = [40.5, "forty"]
    enforced = _enforce_schema(sent, signature.inputs)
    assert enforced.loc[0, "age"] == 40.5 and enforced.loc[0, "income"] == "forty"  # untouched by MLflow
    rules = {(v.column, v.rule) for v in runtime.check_contract(enforced, SPEC)}
    assert {
        ("age", runtime.RULE_WHOLE),
        ("income", runtime.RULE_NUMBER),
        ("location", runtime.RULE_REQUIRED),
    } <= rules


def test_numerals_as_text_are_their_numbers_and_words_are_not():
    rows = pd.DataFrame({"age": ["40", " 41 ", "40.5", "forty", "", "1e2", None]}, dtype=object)
    found = {
        v.row: (v.rule, v.value)
        for v in runtime.check_contract(
            rows, {"features": ["age"], "contract": {"age": SPEC["contract"]["age"]}}
        )
    }
    assert found == {
        2: (runtime.RULE_WHOLE, "40.5"),
        3: (runtime.RULE_NUMBER, "forty"),
        4: (runtime.RULE_NUMBER, ""),
        5: (runtime.RULE_RANGE, "1e2"),
        6: (runtime.RULE_REQUIRED, None),
    }


def test_synthetic_example_satisfies_the_contract_and_the_signature(window):
    example = packaging.input_example(SPEC)
    assert list(example.columns) == SPEC["features"] and len(example) == 2
    assert runtime.check_contract(example, SPEC) == []
    # A null in every nullable column, so the example shows callers how a missing value is sent.
    nullable = [name for name, rules in SPEC["contract"].items() if rules["nullable"]]
    assert example.loc[1, nullable].isna().all() and example.loc[0].notna().all()
    # MLflow accepts it unchanged: every value is text, as the signature declares.
    enforced = _enforce_schema(example, packaging.model_signature(SPEC).inputs)
    pd.testing.assert_frame_equal(enforced, example)
    # Nothing in it comes from an applicant (compared as text, as it is sent).
    shared = window[SPEC["features"]].astype(str).merge(example.astype(str), how="inner")
    assert shared.empty


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import in {path.name}"
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("module", "allowed"),
    [(runtime, {"lightgbm", "numpy", "pandas"}), (pyfunc, {"mlflow", "numpy", "pandas"})],
)
def test_code_shipped_in_the_model_imports_nothing_from_the_platform(module, allowed):
    third_party = _imported_modules(Path(module.__file__)) - set(sys.stdlib_module_names)
    assert third_party <= allowed, third_party


def test_a_runtime_file_is_imported_under_a_name_of_its_content(tmp_path):
    source = Path(runtime.__file__).read_bytes()
    first, same, changed = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    first.write_bytes(source)
    same.write_bytes(source)
    changed.write_bytes(source + b"\nMARKER = 'changed'\n")
    module = loading.import_runtime(first)
    assert module.__name__ == loading.runtime_module_name(source)
    assert module.__name__.startswith("claims_model_runtime_") and module is not runtime
    # The pyfunc wrapper (which cannot import loading.py) names and caches modules the same way.
    assert pyfunc.import_runtime(same) is module is loading.import_runtime(same)
    other = pyfunc.import_runtime(changed)
    assert other is not module and other.MARKER == "changed" and not hasattr(module, "MARKER")
    assert pyfunc.RUNTIME_ARTIFACT == loading.RUNTIME_ARTIFACT
