"""Data contract of study ``pooling-did`` (Zhang & Chen 2024, CLDS 2014/2016/2018).

Canonical columns and codings follow Table 2 of the paper; the roles (outcome, treatment,
unit, time, controls, mediator items) are named here once so that the generic models can be
wired to this study by column name. :data:`SCHEMA` is the pandera contract every frame
(real CLDS extract or synthetic) must pass before analysis; :func:`validate` runs it and turns
failures into one :class:`~bayes_pool.errors.InputError` naming columns, bad values and rows
(and, for a treatment that contradicts Table 1, the provinces and years).

Treatment is provincial pooling of URRBMI in the respondent's *hukou* province, switched on
in the survey year of adoption or later (paper, Data and methods; adoption years: Table 1).
Hainan (2012) adopted too but is outside the CLDS sampling frame, as is Xizang.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from bayes_pool.data.validate import validate as validate_frame
from bayes_pool.errors import InputError

STUDY_ID = "pooling-did"
OUTCOME = "healthy"
TREATMENT = "policy"
UNIT = "province"
TIME = "year"
CONTROLS = [
    "age", "gender", "married", "rural_hukou", "education", "social_status", "log_income",
    "smoke", "drink", "exercise", "siblings", "log_gdp_pc",
]
"""The 12 controls of Table 3 column (2), in the paper's order."""
CONTROLS_2012 = [c for c in CONTROLS if c not in ("married", "exercise", "siblings")]
"""Controls of the 2012-wave robustness check (Table 7): the 2012 questionnaire lacks three."""
ITEMS_OBJECTIVE = ["neighbourhood_assistance", "social_equity"]
ITEMS_SUBJECTIVE = ["life_happiness", "trust"]

ADOPTION_YEAR: dict[str, int] = {
    "Beijing": 2001, "Chongqing": 2011, "Tianjin": 2012,
    "Ningxia": 2015, "Qinghai": 2016, "Shanghai": 2016,
}
"""Year of URRBMI provincial pooling (Table 1, URRBMI column), CLDS provinces only."""

REGION: dict[str, int] = {
    # NBS economic regions: 1 east, 2 middle, 3 west, 4 northeast
    "Beijing": 1, "Tianjin": 1, "Hebei": 1, "Shanghai": 1, "Jiangsu": 1, "Zhejiang": 1,
    "Fujian": 1, "Shandong": 1, "Guangdong": 1,
    "Shanxi": 2, "Anhui": 2, "Jiangxi": 2, "Henan": 2, "Hubei": 2, "Hunan": 2,
    "Inner Mongolia": 3, "Guangxi": 3, "Chongqing": 3, "Sichuan": 3, "Guizhou": 3,
    "Yunnan": 3, "Shaanxi": 3, "Gansu": 3, "Qinghai": 3, "Ningxia": 3, "Xinjiang": 3,
    "Liaoning": 4, "Jilin": 4, "Heilongjiang": 4,
}
"""NBS region of each CLDS province (the paper's regional control, Table 2)."""

PROVINCES: list[str] = list(REGION)
"""The 29 CLDS hukou provinces: mainland China without Xizang and Hainan."""

WAVES = (2014, 2016, 2018)
"""Survey waves of the main analysis; 2012 is accepted for the Table 7 robustness check."""

CODES: dict[str, tuple] = {
    "province": tuple(PROVINCES),
    "year": (2012, *WAVES),
    "policy": (0, 1),
    "healthy": (0, 1),
    "self_rated_health": (1, 2, 3, 4, 5),
    "neighbourhood_assistance": (1, 2, 3, 4, 5),
    "social_equity": (1, 2, 3, 4, 5),
    "life_happiness": (1, 2, 3, 4, 5),
    "trust": (1, 2, 3, 4),
    "gender": (0, 1),
    "married": (0, 1),
    "rural_hukou": (0, 1),
    "education": (0, 1, 2, 3, 4, 5),
    "social_status": tuple(range(1, 11)),
    "smoke": (0, 1),
    "drink": (0, 1),
    "exercise": (0, 1),
    "region": (1, 2, 3, 4),
}
"""Allowed codes of every coded column (Table 2 definitions)."""

COLUMNS: list[str] = [
    "respondent_id", "province", "year", "birth_year", "policy", "healthy",
    "self_rated_health", "neighbourhood_assistance", "social_equity", "life_happiness", "trust",
    "age", "gender", "married", "rural_hukou", "education", "social_status", "log_income",
    "monthly_income", "smoke", "drink", "exercise", "siblings", "log_gdp_pc", "region"]
"""Canonical column order."""

# Every column is float64 and may be missing (NaN), except the ones present in every row.
_REQUIRED: dict[str, dict] = {
    "respondent_id": dict(dtype="int64", unique=True), "province": dict(dtype="str"),
    "year": dict(dtype="int64"), "policy": dict(dtype="int64"), "healthy": dict(dtype="int64")}
# Uncoded columns: a plausible range, and whether values must be whole numbers.
_RANGES: dict[str, dict] = {
    "birth_year": dict(bounds=(1900, 2010), whole=True), "age": dict(bounds=(14, 100)),
    "log_income": dict(bounds=(0, 20)), "monthly_income": dict(bounds=(0, 1e8)),
    "siblings": dict(bounds=(0, 30), whole=True), "log_gdp_pc": dict(bounds=(8, 13))}
_COLUMNS: dict[str, dict] = {
    name: _REQUIRED.get(name) or dict(dtype="float64", nullable=True, **_RANGES.get(name, {}))
    for name in COLUMNS}

DTYPES: dict[str, str] = {name: spec["dtype"] for name, spec in _COLUMNS.items()}
"""Canonical dtype of every column (what :data:`SCHEMA` coerces to)."""


def policy_indicator(province: pd.Series, year: pd.Series,
                     adoption: dict[str, int] = ADOPTION_YEAR) -> pd.Series:
    """Treatment indicator: 1 if the hukou province adopted pooling in or before ``year``.

    Provinces absent from ``adoption`` never adopted (0). Returns int64 named ``policy`` on
    the index of ``province``.
    """
    adopted = province.map(adoption).astype("float64")
    on = adopted.to_numpy() <= np.asarray(year, dtype="float64")
    return pd.Series(on.astype("int64"), index=province.index, name=TREATMENT)


def _has(frame: pd.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


def _policy_matches_adoption(frame: pd.DataFrame) -> pd.Series:
    if not _has(frame, UNIT, TIME, TREATMENT):
        return pd.Series(True, index=frame.index)
    return frame[TREATMENT].eq(policy_indicator(frame[UNIT], frame[TIME]))


def _region_matches_province(frame: pd.DataFrame) -> pd.Series:
    if not _has(frame, UNIT, "region"):
        return pd.Series(True, index=frame.index)
    return frame["region"].isna() | frame["region"].eq(frame[UNIT].map(REGION))


def _healthy_matches_rating(frame: pd.DataFrame) -> pd.Series:
    if not _has(frame, OUTCOME, "self_rated_health"):
        return pd.Series(True, index=frame.index)
    srh = frame["self_rated_health"]
    return srh.isna() | frame[OUTCOME].eq((srh >= 4).astype("int64"))


def _monthly_matches_log_income(frame: pd.DataFrame) -> pd.Series:
    if not _has(frame, "log_income", "monthly_income"):
        return pd.Series(True, index=frame.index)
    gap = np.log(12 * frame["monthly_income"]) - frame["log_income"]
    both = frame["log_income"].notna() & frame["monthly_income"].notna()
    return ~both | (gap.abs() < 1e-3)


def _age_matches_birth_year(frame: pd.DataFrame) -> pd.Series:
    if not _has(frame, "age", TIME, "birth_year"):
        return pd.Series(True, index=frame.index)
    gap = frame[TIME] - frame["birth_year"] - frame["age"]
    return frame["age"].isna() | frame["birth_year"].isna() | gap.between(-0.5, 1.5)


_FRAME_CHECKS = {
    # name: (row-wise check, message); a failing row is listed with its values
    "policy_matches_adoption": (
        _policy_matches_adoption,
        "policy must be 1 exactly when the hukou province adopted URRBMI provincial pooling "
        "in or before the survey year (ADOPTION_YEAR, Table 1)"),
    "region_matches_province": (
        _region_matches_province,
        "region must be the NBS region of the province (REGION)"),
    "healthy_matches_rating": (
        _healthy_matches_rating,
        "healthy must be 1 exactly when self_rated_health is 4 or 5"),
    "monthly_matches_log_income": (
        _monthly_matches_log_income,
        "monthly_income must equal exp(log_income) / 12"),
    "age_matches_birth_year": (
        _age_matches_birth_year,
        "age must be year - birth_year (or one less)"),
}


def _column(name: str, spec: dict) -> pa.Column:
    checks = []
    if name in CODES:
        checks.append(pa.Check.isin(CODES[name]))
    if "bounds" in spec:
        checks.append(pa.Check.in_range(*spec["bounds"]))
    if spec.get("whole"):
        checks.append(pa.Check(lambda s: s.eq(np.round(s)), name="whole_number"))
    return pa.Column(spec["dtype"], checks, nullable=spec.get("nullable", False),
                     unique=spec.get("unique", False))


SCHEMA = pa.DataFrameSchema(
    {name: _column(name, spec) for name, spec in _COLUMNS.items()},
    checks=[pa.Check(fn, name=name, error=message)
            for name, (fn, message) in _FRAME_CHECKS.items()],
    coerce=True,
    name="pooling-did",
)
"""Pandera contract: dtypes, codes, missingness, unique ids and cross-column consistency.

Outcome, treatment, province and year (and the id) must be present in every row; controls,
mediator items and the rest may be missing (complete cases are taken per analysis). Extra
columns are allowed.
"""


def policy_mismatches(frame: pd.DataFrame) -> pd.DataFrame:
    """Province-years whose ``policy`` disagrees with :data:`ADOPTION_YEAR`, with row counts."""
    keys = [UNIT, TIME, TREATMENT]
    if not _has(frame, *keys):
        return pd.DataFrame(columns=[*keys, "expected", "rows"])
    expected = policy_indicator(frame[UNIT], frame[TIME]).rename("expected")
    bad = frame[keys].join(expected)[~_policy_matches_adoption(frame)]
    return (bad.groupby([*keys, "expected"], dropna=False).size().rename("rows")
            .reset_index())


def validate(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Check ``frame`` against :data:`SCHEMA`; return it coerced to the canonical dtypes.

    The generic validator (:func:`bayes_pool.data.validate.validate`) lists every failing
    column with its bad values and row count; a treatment that disagrees with the adoption
    years is also listed by province and year.

    Raises
    ------
    InputError
        If any check fails; ``problems`` holds the failures as a DataFrame.
    """
    try:
        return validate_frame(frame, SCHEMA, source=source)
    except InputError as err:
        bad = policy_mismatches(frame)
        if bad.empty:
            raise
        listing = "; ".join(f"{r.province} {r.year}: policy={r.policy}, expected {r.expected} "
                            f"({r.rows} rows)" for r in bad.head(20).itertuples())
        error = InputError(f"{err}\nTreatment disagrees with ADOPTION_YEAR (Table 1) in: "
                           f"{listing}")
        error.problems = getattr(err, "problems", None)
        raise error from None
