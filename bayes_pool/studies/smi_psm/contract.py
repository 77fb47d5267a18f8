"""Data contract of study ``smi-psm`` (Ma et al. 2023, *Int J Equity Health*; CMDS 2017).

One row per insured elderly rural migrant. Canonical snake_case names; codes exactly as in
the paper's Table 1 (``host_city_smi`` 0/1, everything else 1-based). Two deviations from
the printed tables are deliberate and documented where they arise:

* Table 3 prints the *Willing*/*Unwilling* row labels of the two intention variables the
  other way round from Table 1 and the text (the text: 63.1% were willing to settle, 79.8%
  did not express short-stay intention). The codes here follow Table 1 and the text.
* ``migrant_range`` keeps code 4 ("cross border") of Table 1 although no respondent has it.

The social-integration index is built from 17 indicators (the list in the paper's
*Dependent variable* section). Table 2 assigns ten of them to the four rotated factors; the
other seven are assigned by their theme, following the paper's description of each factor.
Table 2's F3 statements "I'm very willing to fit in with the local people" and "I feel like
I'm already a native" are not among the 17 listed indicators and are left out. Binary
indicators are coded 0 = no, 1 = yes; the behaviour items of F2 are 4-point frequencies and
the attitude items of F3 and F4 4-point agreement scales, as in the CMDS questionnaire.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

STUDY_ID = "smi-psm"

OUTCOME = "integration_index"
TREATMENT = "host_city_smi"
ID = "respondent_id"

#: PSM covariates, in the row order of Table 5.
COVARIATES = [
    "migrant_range",
    "household_income",
    "short_stay_intention",
    "settlement_intention",
    "health_record",
    "migrant_time",
    "migration_reason",
]

#: Terms of the stepwise OLS's final Model 8, in the row order of Table 4 (constant omitted).
MODEL8_TERMS = [
    "host_city_smi",
    "settlement_intention",
    "short_stay_intention",
    "household_income",
    "health_record",
    "migrant_time",
    "migrant_range",
    "migration_reason",
]

#: Characteristics described by the one-way ANOVA of Table 3, in its row order.
CHARACTERISTICS = [
    "host_city_smi",
    "gender",
    "education",
    "health",
    "marital",
    "household_income",
    "short_stay_intention",
    "settlement_intention",
    "labour_contract",
    "unemployment_reason",
    "employment_identity",
    "health_record",
    "migrant_range",
    "migrant_time",
    "migration_reason",
]

_UNWILLING_WILLING = {1: "unwilling", 2: "willing"}
YES_NO = {0: "no", 1: "yes"}
FREQUENCY = {1: "never", 2: "occasionally", 3: "sometimes", 4: "often"}
AGREEMENT = {1: "strongly disagree", 2: "disagree", 3: "basically agree", 4: "strongly agree"}

#: Table 2's four rotated factors: name and published variance contribution (%). The four
#: contributions sum to 106.25, so the index weights are these shares normalised to 1.
FACTORS = {
    "F1": ("social participation", 45.42),
    "F2": ("governance participation", 19.61),
    "F3": ("psychological identity", 20.61),
    "F4": ("customs participation", 20.61),
}

# indicator -> (factor, questionnaire wording, codes); "(Table 2)" marks Table 2's own items.
_INDICATORS = {
    "si_labour_union": ("F1", "took part in a labour union", YES_NO),
    "si_volunteer_association": ("F1", "took part in a volunteer association", YES_NO),
    "si_classmates_association": ("F1", "took part in a classmates' association", YES_NO),
    "si_hometown_association": (
        "F1", "took part in a hometown association (Table 2)", YES_NO),
    "si_hometown_chamber": ("F1", "took part in a hometown chamber of commerce", YES_NO),
    "si_residence_permit": (
        "F1", "applied for a (temporary) residence permit (Table 2)", YES_NO),
    "si_social_security_card": ("F1", "applied for a social security card", YES_NO),
    "si_management_advice": (
        "F2", "gave management advice to their community or company (Table 2)", FREQUENCY),
    "si_policy_suggestion": (
        "F2", "made policy suggestions that the government responded to", FREQUENCY),
    "si_online_governance": (
        "F2", "took part online in the governance of state and social affairs", FREQUENCY),
    "si_volunteer_activity": ("F2", "took part in volunteer activities", FREQUENCY),
    "si_party_activity": ("F2", "took part in activities of the party organisation", FREQUENCY),
    "si_like_city": ("F3", "I like where I live right now (Table 2)", AGREEMENT),
    "si_city_concern": ("F3", "I focus on the changes in my host city (Table 2)", AGREEMENT),
    "si_local_acceptance": (
        "F3", "I feel local people are willing to accept me as one of them (Table 2)",
        AGREEMENT),
    "si_hometown_customs": (
        "F4", "It is important to me to follow my hometown's customs (Table 2)", AGREEMENT),
    "si_hygiene_difference": (
        "F4", "My hygiene habits are quite different from those of the local citizens "
        "(Table 2)", AGREEMENT),
}

#: The 17 integration indicators.
INDICATORS = list(_INDICATORS)
#: indicator -> factor (F1..F4) it belongs to.
INDICATOR_FACTOR = {name: spec[0] for name, spec in _INDICATORS.items()}
#: indicator -> questionnaire wording.
INDICATOR_LABELS = {name: spec[1] for name, spec in _INDICATORS.items()}

#: column -> {code: label}; every coded column of the contract.
CODES: dict[str, dict[int, str]] = {
    "host_city_smi": {0: "hometown", 1: "host city"},
    "gender": {1: "male", 2: "female"},
    "education": {1: "primary school and below", 2: "junior middle school",
                  3: "high school and above"},
    "health": {1: "healthy", 2: "unhealthy"},
    "marital": {1: "married, remarried or cohabiting", 2: "unmarried, divorced or widowed"},
    "household_income": {1: "below 3000 RMB", 2: "3000-5999 RMB", 3: "6000-8999 RMB",
                         4: "9000 RMB and above"},
    "short_stay_intention": _UNWILLING_WILLING,
    "settlement_intention": _UNWILLING_WILLING,
    "labour_contract": {1: "no fixed term", 2: "with fixed term"},
    "unemployment_reason": {1: "family factors", 2: "occupational environment factors",
                            3: "personal physical, psychological and other factors",
                            4: "non-labour-force stage and other"},
    "employment_identity": {1: "employee", 2: "employer or self-operator"},
    "health_record": {1: "yes", 2: "no", 3: "unclear"},
    "migrant_range": {1: "trans-provincial", 2: "inter-city within the province",
                      3: "across counties within the city", 4: "cross border"},
    "migrant_time": {1: "below 5 years", 2: "5-10 years", 3: "above 10 years"},
    "migration_reason": {1: "employment", 2: "family members move", 3: "relocation",
                         4: "to grow old", 5: "other"},
    **{name: spec[2] for name, spec in _INDICATORS.items()},
}

#: Columns that may not hold missing values.
REQUIRED = [ID, OUTCOME, TREATMENT, *COVARIATES]


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _numeric() -> pa.Check:
    # A dtype test that accepts int and float storage alike: survey readers give float codes.
    return pa.Check(_is_numeric, name="numeric", error="a number (numeric column)")


def _description(column: str) -> str:
    labels = ", ".join(f"{code} = {label}" for code, label in CODES[column].items())
    if column in INDICATOR_FACTOR:
        factor = INDICATOR_FACTOR[column]
        return f"{INDICATOR_LABELS[column]} [{factor} {FACTORS[factor][0]}]: {labels}"
    return labels


SCHEMA = pa.DataFrameSchema(
    {
        ID: pa.Column(None, [_numeric(), pa.Check(lambda s: (s % 1 == 0), name="whole")],
                      unique=True, description="respondent identifier"),
        OUTCOME: pa.Column(None, [_numeric(), pa.Check(lambda s: s.abs() < float("inf"),
                                                        name="finite")],
                           description="composite social-integration index (mean 0)"),
        **{
            column: pa.Column(None, [_numeric(), pa.Check.isin(list(codes))],
                              nullable=column not in REQUIRED,
                              description=_description(column))
            for column, codes in CODES.items()
        },
    },
    name=STUDY_ID,
    strict=False,
)
