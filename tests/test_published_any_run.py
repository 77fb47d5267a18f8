"""`--published FILE` on `did`, `psm` and `mediate`: a user's ledger joins the run's rows and
is compared with them as the built-in studies' ledgers are; malformed ledgers are refused
before anything is written."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool.cli import app
from bayes_pool.published import LEDGER_COLUMNS
from tests.conftest import make_panel

runner = CliRunner()


def _ledger(path, rows):
    """A ledger file with the given (table, column, term, quantity, estimate, se) rows."""
    records = [dict(zip(LEDGER_COLUMNS, ["my-paper", table, column, f"row {i}", term, quantity,
                                         estimate, se, "", "", "", 3000, "**", "", ""]))
               for i, (table, column, term, quantity, estimate, se) in enumerate(rows)]
    pd.DataFrame(records, columns=LEDGER_COLUMNS).to_csv(path, index=False)
    return path


def _did(data, *extra):
    return ["did", "--data", str(data), "--outcome", "y", "--treatment", "treated",
            "--unit", "county", "--time", "wave", "--covariates", "x1,x2",
            "--frequentist-only", *extra]


def test_did_published_writes_comparison_rows(tmp_path, outputs):
    frame, _ = make_panel(seed=11, n=1200)
    data = tmp_path / "user.csv"
    frame.to_csv(data, index=False)
    ledger = _ledger(tmp_path / "published.csv", [
        ("2", "(1)", "treated", "beta", 0.700, 0.250),
        ("2", "(1)", "treated", "ame", 0.150, 0.050),
        ("2", "(1)", "x1", "beta", 0.300, 0.100),
        ("2", "(9)", "treated", "beta", 1.000, 0.500),  # no fit labelled (9): listed
    ])
    res = runner.invoke(app, _did(data, "--table", "2", "--column", "(1)",
                                  "--published", str(ledger)))
    assert res.exit_code == 0, res.output
    assert "3 of 4 rows answered" in res.output and "2 / (9) / treated / beta" in res.output
    assert "comparison (" in res.output and "0.700" in res.output  # the printed comparison
    (run_dir,) = list((outputs / "did").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    pub = est[est["source"] == "published"]
    assert len(pub) == 4 and set(pub["study"]) == {"did"}
    assert pub["note"].str.contains("ledger my-paper").all()
    comp = pd.read_csv(run_dir / "comparison.csv").set_index(["term", "quantity"])
    for term, quantity, value, se in [("treated", "beta", 0.7, 0.25),
                                      ("treated", "ame", 0.15, 0.05), ("x1", "beta", 0.3, 0.1)]:
        r = comp.loc[(term, quantity)]
        assert r["published"] == value and r["published_se"] == se
        assert r["freq_diff_se"] == pytest.approx((r["frequentist"] - value) / se)
    assert "(9)" not in set(comp["column"])
    manifest = json.loads(run_dir.joinpath("manifest.json").read_text())
    assert manifest["facts"]["published"]["unanswered"] == ["2 / (9) / treated / beta"]
    assert manifest["invocation"]["args"]["published"] == str(ledger.resolve())
    assert "| 2 | (1) | treated | beta | 0.700 (0.250)" in (run_dir / "comparison.md").read_text()


@pytest.mark.parametrize("mutate, needles", [
    (lambda df: df.drop(columns="se"), ["se", "missing"]),
    (lambda df: df.assign(estimate="0.7x"), ["'estimate'", "0.7x"]),
    (lambda df: df.assign(quantity=""), ["'quantity'"]),
    (lambda df: df.assign(flag="typo"), ["'flag'", "typo"]),
])
def test_malformed_ledger_exits_2_naming_the_column(tmp_path, outputs, mutate, needles):
    frame, _ = make_panel(seed=1, n=400)
    data = tmp_path / "user.csv"
    frame.to_csv(data, index=False)
    ledger = _ledger(tmp_path / "published.csv", [("did", "gaussian", "treated", "beta", 1, 1)])
    mutate(pd.read_csv(ledger, dtype=str, keep_default_na=False)).to_csv(ledger, index=False)
    res = runner.invoke(app, _did(data, "--published", str(ledger)))
    assert res.exit_code == 2, res.output
    for needle in needles:
        assert needle in res.output
    assert not outputs.exists() or not any(outputs.rglob("*"))


def test_api_psm_and_mediate_take_published(tmp_path):
    """The API's psm and mediate join the ledger's rows under their own study labels and
    compare them (frequentist fits only: seconds)."""
    import bayes_pool as bp
    from bayes_pool import compare
    frame, _ = make_panel(seed=3, n=600)
    frame["m"] = frame["x1"] + 0.5 * frame["treated"]
    ledger = _ledger(tmp_path / "published.csv", [
        ("psm", "knn", "treated", "att", 0.10, 0.05),
        ("mediation", "m", "treated", "indirect", 0.02, 0.01),
    ])
    r = bp.psm(frame, treatment="treated", outcome="y", covariates=["x2"], bootstrap=5,
               backends="frequentist", published=ledger)
    comp = compare.comparison(r.tidy())
    (row,) = comp[(comp["column"] == "knn") & (comp["quantity"] == "att")].itertuples()
    assert row.published == 0.10 and row.freq_diff_se == pytest.approx((row.frequentist - .1) / .05)
    assert r.facts["published"]["unanswered"] == ["mediation / m / treated / indirect"]
    r = bp.mediate(frame, treatment="treated", mediator="m", outcome="y", family="gaussian",
                   bootstrap=5, backends="frequentist", published=ledger)
    comp = compare.comparison(r.tidy())
    (row,) = comp[comp["quantity"] == "indirect"].itertuples()
    assert row.study == "mediate" and row.published == 0.02
    assert r.facts["published"]["unanswered"] == ["psm / knn / treated / att"]
