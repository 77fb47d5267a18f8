"""Fast tests of the generic data layer: reading, mapping/recoding, validation, fingerprint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyreadstat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_pool.data import (
    LoadedData,
    Mapping,
    RawData,
    apply_mapping,
    binary,
    codes,
    contract,
    fingerprint,
    format_values,
    int_range,
    load,
    number,
    read_table,
    validate,
)
from bayes_pool.errors import InputError, MappingError

EXAMPLE_MAPPING = Path(__file__).parent / "data" / "example_mapping.toml"
SRH_LABELS = {
    1: "Very healthy",
    2: "Healthy",
    3: "Average",
    4: "Relatively unhealthy",
    5: "Very unhealthy",
    -9: "Refused",
}


@pytest.fixture
def raw_frame() -> pd.DataFrame:
    """A small CLDS-like raw extract with non-response codes (-9, -8)."""
    return pd.DataFrame(
        {
            "qa301": [1, 2, 3, 4, 5, -9, 2],
            "prov_hukou": [11, 11, 31, 31, 44, 44, 11],
            "inc_a": [1000.0, 0.0, 25000.5, -8, 300.0, 12.0, 9.0],
            "qa002": [1979, 1980, 1990, 1965, -9, 2001, 1981],
            "wave": [2014, 2014, 2016, 2016, 2018, 2018, 2018],
        }
    )


@pytest.fixture
def sav_file(tmp_path, raw_frame) -> Path:
    path = tmp_path / "extract.sav"
    pyreadstat.write_sav(raw_frame, str(path), variable_value_labels={"qa301": SRH_LABELS})
    return path


@pytest.fixture
def dta_file(tmp_path, raw_frame) -> Path:
    path = tmp_path / "extract.dta"
    pyreadstat.write_dta(raw_frame, str(path), variable_value_labels={"qa301": SRH_LABELS})
    return path


def _labels_as_float(labels: dict) -> dict:
    return {float(k): v for k, v in labels.items()}


# ---- io: reading ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_stata_and_spss_round_trip_keep_values_and_labels(fmt, request, raw_frame):
    path = request.getfixturevalue(f"{fmt}_file")
    raw = read_table(path)
    assert isinstance(raw, RawData)
    assert raw.format == fmt and raw.path == path
    assert list(raw.frame.columns) == list(raw_frame.columns)
    np.testing.assert_allclose(raw.frame.to_numpy(float), raw_frame.to_numpy(float))
    assert _labels_as_float(raw.value_labels["qa301"]) == _labels_as_float(SRH_LABELS)


def test_csv_and_parquet_round_trip(tmp_path, raw_frame):
    frame = raw_frame.assign(name=list("abcdefg"))
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    for suffix in ("csv", "parquet"):
        raw = read_table(tmp_path / f"d.{suffix}")
        assert raw.format == suffix and raw.value_labels == {}
        pd.testing.assert_frame_equal(raw.frame, frame, check_dtype=False)


def test_extension_is_case_insensitive(tmp_path, raw_frame):
    raw_frame.to_csv(tmp_path / "D.CSV", index=False)
    assert read_table(tmp_path / "D.CSV").format == "csv"


@pytest.mark.parametrize(
    ("name", "content", "phrase"),
    [
        ("data.xlsx", b"whatever", "unknown file type"),
        ("empty.dta", b"", "empty"),
        ("header_only.csv", b"a,b\n", "no data"),
        ("blank.csv", b"\n\n", "no columns"),
        ("garbage.sav", b"this is not an SPSS file" * 20, "Cannot read"),
        ("garbage.parquet", b"PAR1garbage", "Cannot read"),
    ],
)
def test_unreadable_files_raise_input_error_naming_the_path(tmp_path, name, content, phrase):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=phrase) as info:
        read_table(path)
    assert str(path) in str(info.value)


def test_missing_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist") as info:
        read_table(tmp_path / "nowhere.dta")
    assert "nowhere.dta" in str(info.value)


def test_truncated_dta_raises_input_error(tmp_path, dta_file):
    truncated = tmp_path / "truncated.dta"
    truncated.write_bytes(dta_file.read_bytes()[: dta_file.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated or corrupt") as info:
        read_table(truncated)
    assert str(truncated) in str(info.value)


# ---- io: fingerprint -----------------------------------------------------------------


def test_fingerprint_is_stable_and_sensitive(raw_frame):
    first = fingerprint(raw_frame)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert fingerprint(raw_frame.copy()) == first
    assert fingerprint(raw_frame.set_axis(range(10, 17))) == first  # the index is not data
    changed = raw_frame.copy()
    changed.loc[3, "inc_a"] += 1
    assert fingerprint(changed) != first
    assert fingerprint(raw_frame.rename(columns={"wave": "year"})) != first
    assert fingerprint(raw_frame.iloc[::-1]) != first


def test_fingerprint_is_the_same_in_a_fresh_process(raw_frame, tmp_path):
    path = tmp_path / "d.parquet"
    raw_frame.to_parquet(path)
    code = (
        "import pandas as pd; from bayes_pool.data import fingerprint; "
        f"print(fingerprint(pd.read_parquet({str(path)!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=Path(__file__).parents[1],
    )
    assert out.stdout.strip() == fingerprint(pd.read_parquet(path))


# ---- mapping -------------------------------------------------------------------------


def test_example_mapping_file_applies_every_recode_kind(sav_file):
    mapping = Mapping.from_toml(EXAMPLE_MAPPING)
    assert [r.kind for r in mapping.recodes] == ["label_map", "map", "log", "threshold"]
    raw = read_table(sav_file)
    out = apply_mapping(raw, mapping)

    # renamed first, unmapped raw column kept unchanged, raw names gone
    assert list(out.columns[:4]) == ["self_rated_health", "province", "annual_income", "birth_year"]
    assert "wave" in out.columns and "qa301" not in out.columns
    pd.testing.assert_series_equal(out["wave"], raw.frame["wave"])
    # [missing] codes -> NaN before recoding
    assert out["self_rated_health"].isna().tolist() == [False] * 5 + [True, False]
    assert np.isnan(out.loc[3, "annual_income"]) and np.isnan(out.loc[4, "birth_year"])
    # label_map and map agree; NaN stays NaN
    expected = [1, 1, 0, 0, 0, np.nan, 1]
    np.testing.assert_array_equal(out["healthy"], expected)
    np.testing.assert_array_equal(out["healthy_by_code"], expected)
    # log(x + 1)
    np.testing.assert_allclose(
        out["log_income"], np.log(np.array([1000, 0, 25000.5, np.nan, 300, 12, 9]) + 1)
    )
    # threshold: >= 1980
    np.testing.assert_array_equal(out["born_1980_or_later"], [0, 1, 1, 0, np.nan, 1, 1])
    # input untouched
    assert "qa301" in raw.frame.columns and (raw.frame["qa301"] == -9).sum() == 1


def test_threshold_strict_and_integer_result():
    frame = pd.DataFrame({"year": [1979, 1980, 1981]})
    base = {"target": "t", "source": "year", "kind": "threshold", "at": 1980}
    loose = apply_mapping(frame, Mapping.from_dict({"recode": [base]}))
    strict = apply_mapping(frame, Mapping.from_dict({"recode": [{**base, "strict": True}]}))
    assert loose["t"].tolist() == [0, 1, 1] and loose["t"].dtype == "int64"
    assert strict["t"].tolist() == [0, 0, 1]


def test_label_map_is_case_and_space_insensitive_and_works_on_text_columns():
    frame = pd.DataFrame({"srh": ["Very  healthy", "AVERAGE", None, "healthy "]})
    mapping = Mapping.from_dict(
        {"recode": [{"target": "h", "source": "srh", "kind": "label_map",
                     "map": {"very healthy": 1, "healthy": 1, "average": 0}}]}
    )
    out = apply_mapping(frame, mapping)
    np.testing.assert_array_equal(out["h"], [1, 0, np.nan, 1])


def test_label_map_on_dta_labels(dta_file):
    mapping = Mapping.from_dict(
        {"columns": {"srh": "qa301"},
         "recode": [{"target": "srh", "source": "srh", "kind": "label_map", "missing": [-9],
                     "map": {"very healthy": 5, "healthy": 4, "average": 3,
                             "relatively unhealthy": 2, "very unhealthy": 1}}]}
    )
    out = apply_mapping(read_table(dta_file), mapping)
    np.testing.assert_array_equal(out["srh"], [5, 4, 3, 2, 1, np.nan, 4])
    # labels of an overwritten column are dropped, since its codes changed
    assert "srh" not in mapping.rename_labels(read_table(dta_file).value_labels)


def test_per_recode_missing_codes_become_nan():
    frame = pd.DataFrame({"x": [1, 2, 98, 99, 1]})
    mapping = Mapping.from_dict(
        {"recode": [{"target": "y", "source": "x", "kind": "map", "missing": [98, 99],
                     "map": {"1": 0, "2": 1}}]}
    )
    out = apply_mapping(frame, mapping)
    np.testing.assert_array_equal(out["y"], [0, 1, np.nan, np.nan, 0])
    assert out["x"].tolist() == [1, 2, 98, 99, 1]  # only this recode sees them as missing


def test_global_missing_defaults_to_all_mapped_columns():
    frame = pd.DataFrame({"a": [1, -9, 3], "b": [-8, 2, 2], "c": [-9, -9, 1]})
    out = apply_mapping(
        frame, Mapping.from_dict({"columns": {"x": "a", "y": "b"}, "missing": {"codes": [-9, -8]}})
    )
    assert out["x"].isna().tolist() == [False, True, False]
    assert out["y"].isna().tolist() == [True, False, False]
    assert out["c"].tolist() == [-9, -9, 1]  # not mapped: left alone


def test_unmapped_codes_name_column_values_and_rows():
    frame = pd.DataFrame({"srh": [1, 2, 6, 7, 7, np.nan]})
    mapping = Mapping.from_dict(
        {"recode": [{"target": "h", "source": "srh", "kind": "map", "map": {"1": 1, "2": 0}}]}
    )
    with pytest.raises(MappingError) as info:
        apply_mapping(frame, mapping)
    message = str(info.value)
    assert "'srh'" in message and "6, 7" in message and "3 rows" in message


def test_unmapped_codes_take_the_default_when_given():
    frame = pd.DataFrame({"srh": [1, 2, 6]})
    mapping = Mapping.from_dict(
        {"recode": [{"target": "h", "source": "srh", "kind": "map", "map": {"1": 1, "2": 0},
                     "default": float("nan")}]}
    )
    np.testing.assert_array_equal(apply_mapping(frame, mapping)["h"], [1, 0, np.nan])


def test_unmapped_labels_show_code_and_label(sav_file):
    mapping = Mapping.from_dict(
        {"columns": {"srh": "qa301"},
         "recode": [{"target": "h", "source": "srh", "kind": "label_map",
                     "map": {"very healthy": 1, "healthy": 1}}]}
    )
    with pytest.raises(MappingError) as info:
        apply_mapping(read_table(sav_file), mapping)
    message = str(info.value)
    assert "'srh'" in message and "3 ('Average')" in message and "-9 ('Refused')" in message
    assert "4 rows" in message


def test_label_map_without_labels_says_to_map_by_code(raw_frame):
    mapping = Mapping.from_dict(
        {"recode": [{"target": "h", "source": "qa301", "kind": "label_map",
                     "map": {"healthy": 1}}]}
    )
    with pytest.raises(MappingError, match="no value labels.*kind = \"map\""):
        apply_mapping(raw_frame, mapping)


def test_log_of_non_positive_values_names_rows(raw_frame):
    mapping = Mapping.from_dict(
        {"recode": [{"target": "li", "source": "inc_a", "kind": "log"}]}
    )
    with pytest.raises(MappingError) as info:
        apply_mapping(raw_frame, mapping)
    message = str(info.value)
    assert "'inc_a'" in message and "-8, 0" in message and "2 rows" in message
    assert "index 1, 3" in message


def test_mapping_naming_absent_raw_column_suggests_close_match(sav_file):
    mapping = Mapping.from_dict({"columns": {"self_rated_health": "qa3O1", "wave": "Wave"}})
    with pytest.raises(MappingError) as info:
        apply_mapping(read_table(sav_file), mapping)
    message = str(info.value)
    assert "'qa3O1'" in message and "did you mean 'qa301'" in message
    assert "'Wave'" in message and "did you mean 'wave'" in message


def test_recode_source_absent_suggests_close_match(raw_frame):
    mapping = Mapping.from_dict(
        {"recode": [{"target": "h", "source": "qa31", "kind": "threshold", "at": 1}]}
    )
    with pytest.raises(MappingError, match="'qa31'.*did you mean 'qa301'"):
        apply_mapping(raw_frame, mapping)


def test_canonical_name_clashing_with_unmapped_raw_column(raw_frame):
    mapping = Mapping.from_dict({"columns": {"wave": "qa002"}})
    with pytest.raises(MappingError, match=r"\['wave'\]"):
        apply_mapping(raw_frame, mapping)


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        ({"colums": {}}, "unknown top-level keys"),
        ({"recode": [{"target": "a", "source": "b", "kind": "recode"}]}, "valid kinds"),
        ({"recode": [{"target": "a", "source": "b", "kind": "log", "offest": 1}]},
         r"unknown keys \['offest'\]"),
        ({"recode": [{"target": "a", "source": "b", "kind": "threshold"}]}, r"needs \['at'\]"),
        ({"recode": [{"target": "a", "source": "b", "kind": "map", "map": {}}]}, "non-empty"),
        ({"columns": {"a": 3}}, "must name a raw column"),
        ({"missing": {"codes": "-9"}}, "list of codes"),
    ],
)
def test_malformed_mappings_raise_mapping_error(data, phrase):
    with pytest.raises(MappingError, match=phrase):
        Mapping.from_dict(data)


def test_map_key_that_is_not_a_number_for_a_numeric_column(raw_frame):
    mapping = Mapping.from_dict(
        {"recode": [{"target": "h", "source": "qa301", "kind": "map", "map": {"good": 1}}]}
    )
    with pytest.raises(MappingError, match="'good'.*label_map"):
        apply_mapping(raw_frame, mapping)


def test_invalid_toml_raises_mapping_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[columns\nx = 1\n")
    with pytest.raises(MappingError, match="not valid TOML") as info:
        Mapping.from_toml(path)
    assert str(path) in str(info.value)


# ---- validation ----------------------------------------------------------------------


@pytest.fixture
def schema() -> pa.DataFrameSchema:
    return contract(
        binary("healthy"),
        int_range("self_rated_health", 1, 5),
        codes("province", [11, 31, 44]),
        number("age", 16, 110),
        number("log_income", nullable=True),
    )


@pytest.fixture
def good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "healthy": [1, 0, 1, 0],
            "self_rated_health": [1, 4, 2, 5],
            "province": [11, 31, 44, 11],
            "age": [30.0, 45.5, 16.0, 110.0],
            "log_income": [7.1, np.nan, 8.2, 9.0],
        }
    )


def _fails(frame, schema, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        validate(frame, schema, **kwargs)
    return str(info.value)


def test_valid_frame_passes_unchanged(good, schema):
    out = validate(good, schema)
    pd.testing.assert_frame_equal(out, good)


def test_non_binary_outcome(good, schema):
    message = _fails(good.assign(healthy=[1, 2, 3, 2]), schema)
    assert "column 'healthy': expected isin [0, 1]; 3 rows fail" in message
    assert "offending values: 2, 3" in message and "[[recode]]" in message


def test_out_of_range_code(good, schema):
    message = _fails(good.assign(self_rated_health=[1, 6, 0, 2.5]), schema)
    assert "column 'self_rated_health': expected a whole number in range 1..5" in message
    assert "3 rows fail" in message and "offending values: 0, 2.5, 6" in message


def test_missing_values_in_required_column(good, schema):
    message = _fails(good.assign(age=[30, np.nan, np.nan, 40]), schema)
    assert "column 'age': expected not null" in message and "2 rows fail" in message


def test_text_in_numeric_column(good, schema):
    message = _fails(good.assign(age=["30", "unknown", "45", "n/a"]), schema)
    assert "column 'age': expected a number" in message
    assert "offending values: 'n/a', 'unknown'" in message and "2 rows fail" in message
    assert "in range" not in message  # value checks wait until the type is fixed


def test_numbers_stored_as_text_are_flagged(good, schema):
    message = _fails(good.assign(province=["11", "31", "44", "11"]), schema)
    assert "column 'province': expected a number" in message and "4 rows fail" in message


def test_every_failure_is_listed_in_one_error(good, schema):
    bad = good.assign(healthy=[1, 0, 7, 0], province=[11, 99, 99, 12], age=[1, 2, 30, 40])
    with pytest.raises(InputError) as info:
        validate(bad, schema, source="survey.dta")
    message = str(info.value)
    assert message.startswith("'survey.dta' failed the data contract: 3 problems in 3 columns")
    problems = info.value.problems
    assert dict(zip(problems["column"], problems["n_rows"], strict=True)) == {
        "healthy": 1, "province": 3, "age": 2,
    }
    assert "offending values: 12, 99" in message


def test_missing_required_columns_listed_together_with_close_matches(good, schema):
    frame = good.drop(columns=["healthy", "province"]).rename(columns={"age": "agee"})
    message = _fails(frame, schema, required=["wave"])
    for column in ("'healthy'", "'province'", "'age'", "'wave'"):
        assert column in message
    assert "lacks 4 required column(s)" in message
    assert "did you mean 'agee'" in message
    assert "Columns present (closest first): 'agee'" in message


def test_pandera_dtype_without_coercion_is_explained():
    schema = pa.DataFrameSchema({"n": pa.Column(int, pa.Check.ge(0))})
    message = _fails(pd.DataFrame({"n": [1.0, 2.5, 3.0]}), schema)
    assert "column 'n': expected dtype int64" in message and "2.5" in message
    assert "1 row fails" in message


def test_table_level_failures_strict_columns_and_duplicates():
    schema = pa.DataFrameSchema(
        {"person_id": pa.Column(int, unique=True), "age": pa.Column(int)},
        strict=True,
        checks=[pa.Check(lambda d: d["age"] < 120, name="plausible_age")],
    )
    frame = pd.DataFrame({"person_id": [1, 1, 2], "age": [30, 130, 40], "note": ["", "", ""]})
    with pytest.raises(InputError) as info:
        validate(frame, schema)
    message = str(info.value)
    assert "extra columns: 'note'" in message
    assert "the table: expected plausible_age; 1 row fails" in message
    assert "column 'person_id': expected unique values" in message and "2 rows fail" in message


def test_validate_does_not_modify_its_input(good):
    schema = pa.DataFrameSchema({"age": pa.Column(int, coerce=True)})
    frame = good.set_axis([5, 5, 7, 8])  # duplicated index labels too
    before = frame.copy(deep=True)
    out = validate(frame, schema)
    pd.testing.assert_frame_equal(frame, before)
    assert out["age"].dtype == "int64" and frame["age"].dtype == "float64"
    assert list(out.index) == [5, 5, 7, 8]
    bad = frame.assign(age=["x", 1, 2, 3])
    snapshot = bad.copy(deep=True)
    with pytest.raises(InputError):
        validate(bad, schema)
    pd.testing.assert_frame_equal(bad, snapshot)


def test_format_values_sorts_dedupes_and_truncates():
    assert format_values([3, 1.0, 1, "b", np.nan, "a", 2.5]) == "1, 2.5, 3, 'a', 'b'"
    assert format_values(range(15)).endswith("9, ... (5 more distinct)")


def test_contract_rejects_duplicate_columns():
    with pytest.raises(ValueError, match="twice"):
        contract(binary("y"), number("y"))


# ---- load ----------------------------------------------------------------------------


def test_load_maps_validates_and_fingerprints(sav_file):
    schema = contract(
        binary("healthy", nullable=True),
        codes("province", [11, 31, 44]),
        number("log_income", nullable=True),
    )
    loaded = load(sav_file, schema=schema, mapping=EXAMPLE_MAPPING)
    assert isinstance(loaded, LoadedData)
    assert loaded.format == "sav" and loaded.fingerprint == fingerprint(loaded.frame)
    assert set(loaded.value_labels) == {"self_rated_health"}
    assert loaded.manifest()["mapping"] == str(EXAMPLE_MAPPING)
    assert loaded.manifest()["n_rows"] == 7


def test_load_rejects_data_failing_the_contract(sav_file):
    schema = contract(binary("healthy"))  # not nullable, but row 5 is non-response
    with pytest.raises(InputError) as info:
        load(sav_file, schema=schema, mapping=EXAMPLE_MAPPING)
    message = str(info.value)
    assert str(sav_file) in message and "'healthy'" in message and "1 row fails" in message


# ---- properties ----------------------------------------------------------------------

_FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(st.lists(st.integers(-20, 20), min_size=1, max_size=60))
def test_reported_row_count_equals_rows_outside_the_allowed_codes(values):
    allowed = [1, 2, 3, 4, 5]
    frame = pd.DataFrame({"code": values})
    n_bad = sum(v not in allowed for v in values)
    schema = contract(codes("code", allowed))
    if n_bad == 0:
        validate(frame, schema)
        return
    with pytest.raises(InputError) as info:
        validate(frame, schema)
    assert info.value.problems["n_rows"].tolist() == [n_bad]
    assert f"; {n_bad} row{'s' if n_bad != 1 else ''} fail" in str(info.value)
    shown = format_values(sorted({v for v in values if v not in allowed}))
    assert f"offending values: {shown}" in str(info.value)


@_FAST
@given(st.lists(st.one_of(st.integers(0, 9), st.none()), min_size=1, max_size=60))
def test_unmapped_count_equals_rows_outside_the_map(values):
    frame = pd.DataFrame({"x": pd.array(values, dtype="float64")})
    table = {"1": 1, "2": 0, "3": 0}
    mapping = Mapping.from_dict({"recode": [{"target": "y", "source": "x", "kind": "map",
                                             "map": table}]})
    n_bad = sum(v is not None and v not in (1, 2, 3) for v in values)
    if n_bad == 0:
        out = apply_mapping(frame, mapping)
        assert out["y"].isna().sum() == sum(v is None for v in values)
        return
    with pytest.raises(MappingError, match=rf"\({n_bad} rows?\)"):
        apply_mapping(frame, mapping)


@_FAST
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=30),
       st.integers(0, 29))
def test_fingerprint_changes_when_any_cell_changes(values, position):
    frame = pd.DataFrame({"v": values})
    changed = frame.copy()
    changed.iloc[position % len(values), 0] = values[position % len(values)] + 1.0
    assert fingerprint(frame) == fingerprint(frame.copy())
    assert fingerprint(changed) != fingerprint(frame)
