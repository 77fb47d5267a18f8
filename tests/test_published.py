"""The published-estimates ledgers: shape, keys, flagged contradictions, and provenance.

The provenance test opens the paper text (``<repo root>/../shared/papers/``), finds each ledger
row's line by its printed row label and checks that the number, as printed, is on that line. It
checks every row, not a sample, so a typo in either the number or the label fails.
"""

from __future__ import annotations

import os
import re
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_pool import estimates, published, studies
from bayes_pool.published import (
    LEDGER_COLUMNS, contradictions, load_ledger, load_published, published_table,
    published_value,
)

PAPERS_DIR = Path(os.environ.get("BAYES_POOL_PAPERS",
                               Path(__file__).resolve().parents[1].parent / "shared" / "papers"))
PAPER_FILES = {
    "pooling-did": "zhang_chen_2024_provincial_pooling_did.txt",
    "smi-psm": "ma_2023_smi_location_psm.txt",
}
STUDIES = sorted(studies.STUDIES)
KEY = ["study", "table", "column", "term", "quantity"]
REQUIRED = ["study", "table", "column", "row", "term", "quantity"]
CHECKED = ["estimate", "se", "ci_low", "ci_high", "p_value"]


# ----------------------------------------------------------------------------- paper-text check

def paper_lines(study: str) -> list[str]:
    """Lines of the paper's text; fail (not skip) when the shared papers folder is missing."""
    path = PAPERS_DIR / PAPER_FILES[study]
    if not path.is_file():
        pytest.fail(
            f"paper text not found: {path}. The provenance tests need the shared papers folder "
            f"at <repo root>/../shared/papers/ or $BAYES_POOL_PAPERS "
            f"(expected {sorted(PAPER_FILES.values())})."
        )
    return path.read_text(encoding="utf-8").splitlines()


_SUP = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def printed_forms(num: str) -> list[tuple[str, str]]:
    """Ways a ledger number can be printed: (regex for the number, required suffix regex).

    The literal string first; scientific notation as the paper prints it (``-3.3 × 10 ⁻⁵`` in
    tables, ``-3.3×10^{-5}`` in running text); and a proportion read out as a percent in the text
    (``0.245`` as ``24.5%``).
    """
    forms = [(re.escape(num), "")]
    if "e" in num.lower():
        mant, exp = num.lower().split("e")
        exp = str(int(exp))
        forms.append((re.escape(f"{mant} × 10 {exp.translate(_SUP)}"), ""))
        forms.append((re.escape(f"{mant}×10^{{{exp}}}"), ""))
    else:
        pct = format((Decimal(num) * 100).normalize(), "f")
        forms.append((re.escape(pct), "%"))
    return forms


def number_on(text: str, num: str, stars: str = "") -> bool:
    """True if ``num`` (as printed, followed by exactly ``stars``) is a whole number in ``text``."""
    for body, suffix in printed_forms(num):
        lead = r"(?<![\d.])" + ("" if num.startswith("-") else r"(?<!-)")
        tail = (re.escape(stars) + r"(?!\*)") if stars else r"(?!\.?\d)(?!\*)"
        if re.search(lead + body + (suffix or tail), text):
            return True
    return False


def table_section(lines: list[str], table: str) -> list[str]:
    """Lines from the caption ``Table <n> ...`` up to the next caption of another table."""
    caption = re.compile(r"^Table (\d+)\b")
    out, inside = [], False
    for line in lines:
        m = caption.match(line)
        if m:
            inside = m.group(1) == table
        if inside:
            out.append(line)
    return out


def locate(rec: dict, lines: list[str]) -> tuple[str | None, list[str], str]:
    """Find where a ledger row is printed.

    For a numbered table, ``row`` is the printed row label, or a path ``Block > Row`` for tables
    whose row labels repeat under block headings; each part must be a whole tab-separated cell of a
    line, searched in order within the table. For numbers outside tables (abstract, text, figures),
    ``row`` is a verbatim quote that contains the number.

    Returns
    -------
    (scope, section, problem)
        ``scope`` is the text the numbers must be in (None when not found), ``section`` the table's
        lines (to look for N), ``problem`` a message when the row cannot be found.
    """
    if rec["table"].isdigit():
        section = table_section(lines, rec["table"])
        if not section:
            return None, [], f"no caption 'Table {rec['table']}' in the paper"
        start = 0
        for part in rec["row"].split(" > "):
            for i in range(start, len(section)):
                if part in [c.strip() for c in section[i].split("\t")]:
                    start = i
                    break
            else:
                return None, section, f"row label {part!r} not found in Table {rec['table']}"
            start += 1
        return section[start - 1], section, ""
    if not any(rec["row"] in line for line in lines):
        return None, [], f"quote {rec['row']!r} not found in the paper"
    return rec["row"], [], ""


def check_against_paper(rec: dict, lines: list[str]) -> list[str]:
    """Problems found when looking for one ledger row (as-printed strings) in the paper text."""
    scope, section, problem = locate(rec, lines)
    where = f"{rec['table']}/{rec['column']}/{rec['term']}/{rec['quantity']}"
    if scope is None:
        return [f"{where}: {problem}"]
    out = []
    for field in CHECKED:
        num = rec[field]
        if not num or (field == "p_value" and rec["quantity"] == "p_value"):
            continue
        stars = rec["stars"] if field == "estimate" and rec["table"].isdigit() else ""
        if not number_on(scope, num, stars):
            out.append(f"{where}: {field} {num}{stars} not on the line {scope[:90]!r}...")
    if rec["n_obs"] and section and not any(number_on(line, rec["n_obs"]) for line in section):
        out.append(f"{where}: n_obs {rec['n_obs']} not printed in Table {rec['table']}")
    return out


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", params=STUDIES)
def study(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def ledger(study) -> pd.DataFrame:
    return load_ledger(study)


@pytest.fixture(scope="module")
def printed(study) -> pd.DataFrame:
    return load_ledger(study, as_printed=True)


def _est(ledger: pd.DataFrame, table, column, term, quantity) -> list[float]:
    return _get(ledger, table, column, term, quantity)["estimate"].tolist()


def _get(ledger: pd.DataFrame, table, column, term, quantity) -> pd.DataFrame:
    sel = ledger[(ledger["table"] == table) & (ledger["column"] == column)
                 & (ledger["term"] == term) & (ledger["quantity"] == quantity)]
    assert len(sel), f"missing ledger row {table}/{column}/{term}/{quantity}"
    return sel


# ----------------------------------------------------------------------------- shape and keys

def test_columns_and_required_fields(study, printed):
    assert list(printed.columns) == LEDGER_COLUMNS
    assert len(printed) > 0
    for col in REQUIRED:
        empty = printed.index[printed[col].str.strip() == ""].tolist()
        assert not empty, f"{study}: empty {col!r} in rows {empty[:10]}"
    assert (printed["study"] == study).all()
    assert set(printed["stars"]) <= {"", "*", "**", "***"}
    assert set(printed["flag"]) <= {"", "contradiction"}


def test_numbers_are_numeric_and_missing_is_empty(study, ledger, printed):
    assert ledger["estimate"].notna().all(), printed.loc[ledger["estimate"].isna(), KEY]
    for col in ["se", "ci_low", "ci_high", "p_value", "n_obs"]:
        # empty in the CSV <=> NaN after parsing: nothing is silently coerced
        assert ((printed[col] == "") == ledger[col].isna()).all(), col
    assert ((ledger["n_obs"].dropna() % 1) == 0).all()


def test_keys_unique_except_flagged(study, printed):
    dup = printed[printed.duplicated(KEY, keep=False)]
    unflagged = dup[dup["flag"] != "contradiction"]
    assert unflagged.empty, f"duplicate keys not flagged:\n{unflagged[KEY]}"


def test_flagged_rows_explain_themselves(study, printed):
    flagged = printed[printed["flag"] == "contradiction"]
    assert len(flagged) >= 2
    assert (flagged["note"].str.len() > 20).all()


# ----------------------------------------------------------------------------- provenance

def test_every_number_is_printed_on_its_row(study, printed):
    lines = paper_lines(study)
    problems = [p for rec in printed.to_dict("records") for p in check_against_paper(rec, lines)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("study_id, tables", [
    ("pooling-did", {"2", "3", "4", "5", "6", "7"}),
    ("smi-psm", {"1", "3", "4", "5", "6"}),
])
def test_provenance_check_covers_the_tables(study_id, tables):
    printed = load_ledger(study_id, as_printed=True)
    assert tables <= set(printed["table"])
    per_table = printed[printed["table"].isin(tables)].groupby("table").size()
    assert (per_table >= 1).all() and per_table.sum() >= 15


def test_checker_rejects_wrong_numbers():
    """The check must not pass a number that is only a prefix, a different sign, or other stars."""
    line = "Provincial-pooling of URRBMI\t0.653** (0.259)\t0.096** (0.038)\t-0.090 (0.041)"
    assert number_on(line, "0.653", "**")
    assert not number_on(line, "0.653", "*")
    assert not number_on(line, "0.653", "***")
    assert not number_on(line, "0.65", "**")
    assert not number_on(line, "0.038", "**")
    assert number_on(line, "0.038")
    assert not number_on(line, "0.090")
    assert number_on(line, "-0.090")
    assert not number_on(line, "0.09")
    assert number_on("enhances health by 24.5%, which", "0.245")
    assert not number_on("enhances health by 24.5 points", "0.245")
    assert number_on("Social integration\t-3.3 × 10 ⁻⁵\t33.220", "-3.3e-05")
    rec = dict(table="3", column="(2)", term="policy", quantity="ame",
               row="Provincial-pooling of URRBMI", estimate="0.096", se="0.037",
               ci_low="", ci_high="", p_value="", n_obs="6310", stars="**")
    lines = paper_lines("pooling-did")
    assert check_against_paper(rec, lines), "SE 0.037 is not printed in Table 3"


def test_missing_papers_folder_fails_not_skips(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "PAPERS_DIR", tmp_path / "nowhere")
    with pytest.raises(pytest.fail.Exception, match="paper text not found"):
        paper_lines("smi-psm")


# ----------------------------------------------------------------------------- named contradictions

def test_zhang_contradictions_flagged():
    led = load_ledger("pooling-did")
    t3 = _get(led, "3", "(2)", "policy", "ame")
    t5 = _get(led, "5", "benchmark", "policy", "ame")
    assert t3["se"].tolist() == [0.038] and t5["se"].tolist() == [0.037]
    assert (t3["estimate"].tolist() == t5["estimate"].tolist() == [0.096])
    for col, value in [("high_income", -0.090), ("new_generation", -0.116)]:
        abstract = _get(led, "abstract", col, "policy", "ame")
        table = _get(led, "6", col, "policy", "ame")
        assert abstract["estimate"].tolist() == [value]
        assert table["estimate"].tolist() == [-value]
        assert (abstract["flag"] == "contradiction").all()
        assert (table["flag"] == "contradiction").all()
    he = _get(led, "abstract", "high_education", "policy", "ame")
    assert he["estimate"].tolist() == [0.130] and he["flag"].tolist() == [""]
    old = _get(led, "6", "old_generation", "policy", "ame")
    assert old["n_obs"].tolist() == [5046] and old["flag"].tolist() == ["contradiction"]
    assert "6310" in old["note"].iloc[0]
    for sel in (t3, t5):
        assert sel["flag"].tolist() == ["contradiction"]
    assert _get(led, "fig3", "(2)", "policy", "p_value")["estimate"].tolist() == [0.011]
    assert _est(led, "fig2", "event_time_1", "policy", "ame") == [0.245]


def test_ma_contradictions_flagged():
    led = load_ledger("smi-psm")
    flagged = set(map(tuple, contradictions("smi-psm")[KEY[1:]].to_numpy()))
    expected = {
        ("6", "knn", "host_city_smi", "att"), ("text", "knn", "host_city_smi", "att"),
        ("text", "knn", "host_city_smi", "t"), ("6", "knn", "host_city_smi", "z"),
        ("6", "radius", "host_city_smi", "z"), ("6", "radius", "host_city_smi", "att"),
        ("1", "host_city", "integration_index", "mean"),
        ("3", "SMI of host city", "host_city_smi", "mean"),
        ("abstract", "SMI of host city", "host_city_smi", "mean"),
        ("1", "hometown", "integration_index", "mean"),
        ("3", "SMI of hometown", "host_city_smi", "mean"),
        ("1", "total", "integration_index", "n_indicators"),
        ("text", "total", "integration_index", "n_indicators"),
    }
    assert expected <= flagged, expected - flagged
    knn_table = _get(led, "6", "knn", "host_city_smi", "att").iloc[0]
    knn_text = _get(led, "text", "knn", "host_city_smi", "att").iloc[0]
    assert (knn_table["estimate"], knn_table["se"]) == (6.47, 2.017)
    assert (knn_text["estimate"], knn_text["se"]) == (6.47, 1.48)
    assert _est(led, "text", "knn", "host_city_smi", "t") == [5.32]
    assert _est(led, "6", "knn", "host_city_smi", "z") == [1.960]
    radius_z = _get(led, "6", "radius", "host_city_smi", "z").iloc[0]
    assert (radius_z["estimate"], radius_z["p_value"]) == (2.010, 0.003)
    assert _est(led, "1", "host_city", "integration_index", "mean") == [6.469]
    assert _est(led, "3", "SMI of host city", "host_city_smi", "mean") == [6.649]
    assert _est(led, "1", "hometown", "integration_index", "mean") == [-1.441]
    assert _est(led, "3", "SMI of hometown", "host_city_smi", "mean") == [-1.438]
    assert _est(led, "1", "total", "integration_index", "n_indicators") == [10]
    assert _est(led, "text", "total", "integration_index", "n_indicators") == [17]


# ----------------------------------------------------------------------------- loader API

def test_load_published_is_an_estimates_table(study, ledger):
    df = load_published(study)
    assert list(df.columns) == estimates.COLUMNS + estimates.DIAGNOSTIC_COLUMNS
    assert len(df) == len(ledger)
    assert (df["source"] == "published").all()
    assert (df["study"] == study).all()
    pd.testing.assert_series_equal(df["estimate"], ledger["estimate"], check_names=False)
    assert df["note"].str.startswith("row: ").all()
    flagged = df["note"].str.contains("flag: contradiction")
    assert flagged.sum() == (ledger["flag"] == "contradiction").sum()


def test_load_published_note_format():
    df = load_published("pooling-did")
    note = df[(df["table"] == "3") & (df["column"] == "(2)") & (df["term"] == "policy")
              & (df["quantity"] == "ame")]["note"].iloc[0]
    assert note.startswith("row: Provincial-pooling of URRBMI; stars: **; flag: contradiction; ")


def test_contradictions_returns_only_flagged(study):
    c = contradictions(study)
    assert list(c.columns) == LEDGER_COLUMNS
    assert len(c) and (c["flag"] == "contradiction").all()


def test_published_value_reads_one_cell():
    assert published_value("pooling-did", "3", "(2)", "policy", "beta") == 0.653
    assert published_value("pooling-did", "3", "(2)", "policy", "beta", field="se") == 0.259
    assert published_value("pooling-did", "3", "(2)", "policy", "beta", field="n_obs") == 6310
    # a flagged row is returned like any other; "0.090" as printed is the float 0.09
    assert published_value("pooling-did", "6", "high_income", "policy", "ame") == 0.09
    assert published_value("smi-psm", "1", "total", "integration_index", "mean") == -3.3e-05
    # a field the paper leaves empty is NaN
    assert np.isnan(published_value("smi-psm", "1", "host_city", "gender", "mean", field="se"))


def test_published_value_matches_every_ledger_row(study, ledger):
    for rec in ledger.itertuples(index=False):
        got = published_value(study, rec.table, rec.column, rec.term, rec.quantity)
        assert got == rec.estimate or (np.isnan(got) and np.isnan(rec.estimate)), rec


def test_published_value_rejects_missing_or_bad_keys():
    with pytest.raises(ValueError, match=r"0 rows.*'\(9\)'"):
        published_value("pooling-did", "3", "(9)", "policy", "beta")
    with pytest.raises(ValueError, match="numeric ledger column"):
        published_value("pooling-did", "3", "(2)", "policy", "beta", field="stars")


def test_published_table_is_term_by_column_in_printed_order():
    mean = published_table("pooling-did", "2", "mean")
    assert mean.index.name == "term" and mean.columns.name == "column"
    assert list(mean.columns) == ["treatment", "control"]
    assert mean.index[:3].tolist() == ["policy", "healthy", "neighbourhood_assistance"]
    assert mean.at["healthy", "treatment"] == 0.671 and mean.at["region", "control"] == 1.906
    assert np.isnan(mean.at["policy", "control"])  # printed '--'
    beta = published_table("pooling-did", "3", "beta")
    assert list(beta.columns) == ["(1)", "(2)"] and beta.at["age", "(2)"] == -0.059
    se = published_table("pooling-did", "3", "beta", field="se")
    assert se.at["policy", "(1)"] == 0.218
    # levels keep the paper's order within a term
    pct = published_table("smi-psm", "3", "pct").loc["education"].dropna()
    assert pct.tolist() == [65.6, 26.9, 7.5]


def test_published_table_agrees_with_published_value(study, ledger):
    for (table, quantity), rows in ledger.groupby(["table", "quantity"], sort=False):
        if rows.duplicated(["term", "column"]).any():
            continue
        wide = published_table(study, table, quantity)
        for rec in rows.itertuples(index=False):
            got = wide.at[rec.term, rec.column]
            assert got == rec.estimate or (np.isnan(got) and np.isnan(rec.estimate)), rec
        assert wide.notna().sum().sum() == rows["estimate"].notna().sum()


def test_published_table_rejects_unknown_or_ambiguous(monkeypatch):
    with pytest.raises(ValueError, match="no rows"):
        published_table("pooling-did", "2", "beta")
    with pytest.raises(ValueError, match="numeric ledger column"):
        published_table("pooling-did", "2", "mean", field="note")
    for fn, args in ((published_value, ("2", "treatment", "age", "mean")),
                     (published_table, ("2", "mean"))):
        with pytest.raises(ValueError, match=r"pooling-did.*smi-psm"):
            fn("no-such-study", *args)
    # two rows for one cell: neither helper picks one silently
    ledger = load_ledger("pooling-did")
    doubled = pd.concat([ledger, ledger[ledger["term"] == "age"].head(1)], ignore_index=True)
    monkeypatch.setattr(published, "_cached_ledger", lambda study: doubled)
    with pytest.raises(ValueError, match=r"more than one row.*\('age', 'treatment'\)"):
        published_table("pooling-did", "2", "mean")
    with pytest.raises(ValueError, match="2 rows"):
        published_value("pooling-did", "2", "treatment", "age", "mean")


@pytest.mark.parametrize("fn", [load_published, load_ledger, contradictions])
def test_unknown_study_lists_valid_ids(fn):
    with pytest.raises(ValueError, match=r"pooling-did.*smi-psm"):
        fn("no-such-study")
