"""Propensity-score matching and the Bayesian propensity models, on data with a known ATT.

Fast tier: one real Bayesian analysis (2 chains x 300 draws, 60 re-matched propensity draws,
200 Bayesian-bootstrap replicates for IPW / DR) of the smi-psm synthetic sample, shared by the
recovery and structure tests; everything else is frequentist. Coverage and size over many
worlds are in the slow tests of tests/test_psm_bootstrap.py and tests/test_psm_ai2016.py. Tolerances come from each estimate's own SE or posterior SD. The shared analysis
adds, as the study pipeline does, the refined k-NN with exact matching on migration_reason
(column ``knn_exact``, beyond the paper).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bayes_pool.errors import InputError
from bayes_pool.estimands.matching import KERNEL_BANDWIDTH
from bayes_pool.freq import psm as freq_psm
from bayes_pool.psm_workflow import analyse_psm, psm_figures
from bayes_pool.published import load_ledger, load_published
from bayes_pool.specs import load_spec
from bayes_pool import compare, estimates
from bayes_pool.studies.smi_psm import contract, pipeline, synthetic

STUDY = contract.STUDY_ID
SMALL = dict(chains=2, draws=300, tune=300)


@pytest.fixture(scope="session")
def study_data():
    return synthetic.simulate()


@pytest.fixture(scope="session")
def study_analysis(study_data):
    spec = load_spec("propensity_logit").with_sampler(**SMALL)
    return analyse_psm(study_data.frame, treatment=contract.TREATMENT, outcome=contract.OUTCOME,
                       covariates=contract.COVARIATES, seed=11, study=STUDY, table="6",
                       balance_table="5", spec=spec, bootstrap=60, propensity_draws=60,
                       bayes_bootstrap=200, exact=pipeline.EXACT, exact_note=pipeline.EXACT_NOTE)


def _att(est: pd.DataFrame, source: str, column: str) -> pd.Series:
    rows = est[(est["quantity"] == "att") & (est["source"] == source) & (est["column"] == column)]
    assert len(rows) == 1, (source, column, len(rows))
    return rows.iloc[0]


ESTIMATORS = [("frequentist", "knn"), ("frequentist", "radius"), ("frequentist", "kernel"),
              ("frequentist", "knn_exact"),
              ("bayesian", "knn"), ("bayesian", "radius"), ("bayesian", "kernel"),
              ("bayesian", "knn_exact"),
              ("bayesian", "bayes_ipw"), ("bayesian", "bayes_dr"),
              ("bayesian", "bayes_regression")]


@pytest.mark.parametrize(("source", "column"), ESTIMATORS)
def test_every_att_estimator_recovers_the_sample_att(study_analysis, study_data, source, column):
    r = _att(study_analysis.estimates, source, column)
    truth = study_data.truth["att"]
    assert r["se"] > 0
    assert abs(r["estimate"] - truth) < 2 * r["se"], (r["estimate"], r["se"], truth)
    assert r["ci_low"] < r["estimate"] < r["ci_high"]


def test_bayesian_rows_carry_diagnostics(study_analysis):
    bay = study_analysis.estimates.query("source == 'bayesian'")
    assert set(bay["column"]) >= {"knn", "radius", "kernel", "knn_exact", "bayes_ipw",
                                  "bayes_dr", "bayes_regression", "propensity_logit"}
    for col in ["r_hat", "ess_bulk", "ess_tail", "divergences"]:
        assert bay[col].notna().all(), col
    assert bay["converged"].notna().all()
    att = bay[bay["quantity"] == "att"]
    assert (att["r_hat"] < 1.05).all(), att[["column", "r_hat"]]
    assert set(study_analysis.posteriors) == {
        "psm_propensity", "psm_outcome_regression", "psm_matching_att", "psm_bootstrap_att"}
    facts = study_analysis.facts["psm"]
    assert facts["kernel"]["bandwidth"] == KERNEL_BANDWIDTH
    assert set(facts["off_support"]) == {"knn", "radius", "kernel", "knn_exact"}
    assert facts["propensity_draws_rematched"] == 60
    assert facts["bayes_bootstrap_replicates"] == 200


def test_every_bayesian_att_row_says_what_it_is(study_analysis):
    """Issue 14: the matching rows are two-step plug-ins, IPW/DR a Bayesian bootstrap that
    refits the score per replicate; each note says so."""
    bay = study_analysis.estimates.query("source == 'bayesian' and quantity == 'att'")
    notes = bay.set_index("column")["note"]
    for col in ["knn", "radius", "kernel", "knn_exact"]:
        assert notes[col].startswith("TWO-STEP ('cut') PLUG-IN"), notes[col]
        assert "Abadie-Imbens 2016" in notes[col]
    for col in ["bayes_ipw", "bayes_dr"]:
        assert "Bayesian bootstrap" in notes[col] and "refitted by weighted ML" in notes[col]
    boot = study_analysis.posteriors["psm_bootstrap_att"]
    assert boot["posterior"]["att_ipw"].shape == (4, 50)
    assert int(np.asarray(boot["sample_stats"]["diverging"]).sum()) == 0


def test_psmatch2_default_se_sits_next_to_the_honest_se(study_analysis):
    """Issue 14: every matching ATT also carries psmatch2's approximate SE (the kind the paper
    published), as its own quantity with the same estimate, labelled as not shown valid; the
    knn row's own SE is the Abadie-Imbens 2016 one."""
    est = study_analysis.estimates.query("source == 'frequentist'")
    main = est[est["quantity"] == "att"].set_index("column")
    p2 = est[est["quantity"] == "att_psmatch2_se"].set_index("column")
    assert set(p2.index) == {"knn", "radius", "kernel", "knn_exact"}
    np.testing.assert_allclose(p2.loc[main.index, "estimate"], main["estimate"])
    assert (p2["se"] != main.loc[p2.index, "se"]).all()
    assert p2["note"].str.contains("psmatch2's default approximate SE").all()
    assert p2["note"].str.contains("not called valid").all()
    assert "Abadie-Imbens (2016)" in main.loc["knn", "note"]
    assert "ignores caliper()" in main.loc["kernel", "note"]


def test_knn_matching_reduces_the_imbalance(study_analysis):
    bal = study_analysis.results["psm"].balance
    assert bal["std_bias_pct_after"].abs().mean() < 10
    big = bal[bal["std_bias_pct_before"].abs() > 15]
    assert len(big) >= 4
    assert (big["std_bias_pct_after"].abs() < 10).all(), big
    assert (big["bias_reduction_pct"] > 50).all()


def test_knn_exact_on_migration_reason_balances_every_covariate_below_10pct(study_analysis):
    """Issue 4's acceptance item, met by refining the matching: k-NN within the cells of
    migration_reason (measured on the default sample: max |bias| 7.8%, short_stay_intention)."""
    bal = study_analysis.results["psm"].balance_for("knn_exact")
    assert (bal["std_bias_pct_after"].abs() < 10).all(), bal["std_bias_pct_after"]
    assert bal.loc["migration_reason", "std_bias_pct_after"] == 0
    rows = study_analysis.estimates.query("table == '5' and column == 'after_knn_exact' and "
                                          "quantity == 'std_bias_pct'").set_index("term")
    np.testing.assert_allclose(rows.loc[bal.index, "estimate"], bal["std_bias_pct_after"])


def test_knn_exact_pairs_share_the_exact_covariate(study_analysis):
    res = study_analysis.results["psm"]
    m = res.matchings["knn_exact"]
    x = res.prepared.frame["migration_reason"].to_numpy()
    assert len(m.pair_t) > 3 * m.n_on_support  # mostly 4 controls per treated
    np.testing.assert_array_equal(x[m.treated[m.pair_t]], x[m.controls[m.pair_c]])
    # the paper's k-NN is the one that crosses reasons
    knn = res.matchings["knn"]
    assert (x[knn.treated[knn.pair_t]] != x[knn.controls[knn.pair_c]]).any()


def test_knn_exact_is_labelled_beyond_the_paper_and_never_compared(study_analysis):
    est = study_analysis.estimates
    ex = est[est["column"].isin(["knn_exact", "after_knn_exact"])]
    assert set(ex["source"]) == {"frequentist", "bayesian"}
    assert ex["note"].str.contains("BEYOND THE PAPER").all()
    assert ex["note"].str.contains("migration_reason balance").all()
    comp = compare.comparison(estimates.concat(load_published(STUDY), est))
    mine = comp[comp["column"].isin(["knn_exact", "after_knn_exact"])]
    assert len(mine) and mine["published"].isna().all()
    knn = comp.query("table == '6' and column == 'knn' and quantity == 'att'")
    assert knn["published"].notna().all()  # the published comparison stays on the paper's knn
    facts = study_analysis.facts["psm"]["knn_exact"]
    assert facts["exact"] == ["migration_reason"]
    assert sum(c["n_treated"] for c in facts["cells"]) == study_analysis.facts["psm"]["n_treated"]


@pytest.mark.parametrize("method", ["radius", "kernel"])
def test_radius_and_kernel_balance_every_covariate(study_analysis, method):
    bal = study_analysis.results["psm"].balance_for(method)
    assert (bal["std_bias_pct_after"].abs() < 10).all(), bal["std_bias_pct_after"]


def test_balance_rows_use_the_ledger_keys(study_analysis):
    ledger = load_ledger(STUDY)
    pub = ledger[ledger["table"] == "5"]
    ours = study_analysis.estimates.query("table == '5'")
    keys = set(zip(ours["column"], ours["term"], ours["quantity"]))
    missing = set(zip(pub["column"], pub["term"], pub["quantity"])) - keys
    assert not missing
    att_pub = ledger[(ledger["table"] == "6") & (ledger["quantity"] == "att")]
    freq_cols = set(study_analysis.estimates.query("source == 'frequentist' and "
                                                   "quantity == 'att'")["column"])
    assert set(att_pub["column"]) <= freq_cols


def test_balance_before_matching_is_the_plain_two_group_comparison(study_data):
    f = study_data.frame
    prep = freq_psm.PSMDesign(contract.TREATMENT, contract.OUTCOME,
                              contract.COVARIATES).prepare(f)
    ps = np.asarray(freq_psm.fit_propensity(prep).predict())
    bal = freq_psm.balance(prep, freq_psm.match(ps, prep.t, "knn"))
    x = f["migrant_time"]
    xt, xc = x[f[contract.TREATMENT] == 1], x[f[contract.TREATMENT] == 0]
    expected = 100 * (xt.mean() - xc.mean()) / np.sqrt((xt.var() + xc.var()) / 2)
    assert bal.loc["migrant_time", "std_bias_pct_before"] == pytest.approx(expected)


def test_bootstrap_is_reproducible_with_a_fixed_seed(study_data):
    prep = freq_psm.PSMDesign(contract.TREATMENT, contract.OUTCOME,
                              contract.COVARIATES).prepare(study_data.frame)
    s = freq_psm.MatchSettings()
    a = freq_psm.bootstrap(prep, s, n_boot=8, seed=3)
    b = freq_psm.bootstrap(prep, s, n_boot=8, seed=3)
    c = freq_psm.bootstrap(prep, s, n_boot=8, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())


def make_user_csv(path, seed: int = 5, n: int = 4000, att: float = 2.0) -> str:
    """A user file that is not the study: other names, confounded assignment, constant ATT."""
    rng = np.random.default_rng(seed)
    age = rng.normal(50, 10, n)
    income = rng.normal(0, 1, n)
    urban = rng.binomial(1, 0.4, n)
    enrolled = rng.binomial(1, expit(-1.0 + 0.04 * (age - 50) + 0.6 * income + 0.5 * urban))
    score = 10 + 0.1 * age + 1.5 * income - 1.0 * urban + att * enrolled + rng.normal(0, 3, n)
    frame = pd.DataFrame({"enrolled": enrolled, "score": score, "age": age, "income": income,
                          "urban": urban})
    frame.to_csv(path, index=False)
    return path


def test_generic_user_csv_recovers_a_constant_att(tmp_path):
    frame = pd.read_csv(make_user_csv(tmp_path / "user.csv"))
    naive = frame.groupby("enrolled")["score"].mean().diff().iloc[-1]
    a = analyse_psm(frame, treatment="enrolled", outcome="score",
                    covariates=["age", "income", "urban"], seed=2, study="user",
                    bootstrap=40, bayesian=False)
    for col in ["knn", "radius", "kernel"]:
        r = _att(a.estimates, "frequentist", col)
        assert abs(r["estimate"] - 2.0) < 2 * r["se"], (col, r["estimate"], r["se"])
    assert abs(naive - 2.0) > 4 * _att(a.estimates, "frequentist", "knn")["se"]  # confounded


def test_bad_treatment_coding_names_the_column():
    frame = pd.DataFrame({"d": [0, 1, 2, 1], "y": [1.0, 2, 3, 4], "x": [1.0, 2, 3, 5]})
    with pytest.raises(InputError, match="'d'.*0/1"):
        freq_psm.PSMDesign("d", "y", ("x",)).prepare(frame)
    with pytest.raises(InputError, match="not in the data"):
        freq_psm.PSMDesign("d", "y", ("z",)).prepare(frame)


def test_exact_columns_must_be_covariates():
    frame = pd.DataFrame({"d": [0, 1, 0, 1], "y": [1.0, 2, 3, 4], "x": [1.0, 2, 3, 5],
                          "g": [1, 1, 2, 2]})
    prep = freq_psm.PSMDesign("d", "y", ("x",)).prepare(frame)
    with pytest.raises(InputError, match=r"exact=\['g'\] are not among"):
        prep.cells(["g"])
    with pytest.raises(ValueError, match="settings.exact"):
        from bayes_pool.bayes.propensity import fit_propensity_models
        fit_propensity_models(prep, seed=1, methods=("knn_exact",))


def test_figures_show_the_balance_table_and_the_att_rows(study_analysis, tmp_path, monkeypatch):
    """What each figure shows: love-plot markers at |bias| of the balance table, one per
    covariate label; overlap legend counts of the sample; forest points at the ATT rows with
    their labels; the synthetic banner in every title."""
    from bayes_pool.figures import psm as psm_figs
    figs, real_save = {}, psm_figs.save
    monkeypatch.setattr(psm_figs, "save",
                        lambda fig, path: figs.setdefault(path.stem, fig) and real_save(fig, path))
    published = load_published(STUDY)
    paths = psm_figures(study_analysis, tmp_path, synthetic=True, published=published)
    assert all(p.exists() for p in paths.values())
    for fig in figs.values():
        assert fig.axes[0].get_title().startswith("SYNTHETIC DATA\n")

    res = study_analysis.results["psm"]
    ax = figs["psm_love_plot"].axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(res.balance.index)
    y = ax.get_yticks()
    before, after, exact = (c.get_offsets() for c in ax.collections[:3])
    bal_exact = res.balance_for("knn_exact")
    for pts, col, table in [(before, "std_bias_pct_before", res.balance),
                            (after, "std_bias_pct_after", res.balance),
                            (exact, "std_bias_pct_after", bal_exact)]:
        np.testing.assert_allclose(pts[:, 1], y)
        np.testing.assert_allclose(pts[:, 0], table.loc[labels, col].abs())
    assert ax.get_xlabel() == "|standardized bias| (%)"

    legend = [t.get_text() for t in figs["psm_overlap"].axes[0].get_legend().get_texts()]
    n1 = study_analysis.facts["psm"]["n_treated"]
    assert legend == [f"control (n = {study_analysis.facts['psm']['n_control']})",
                      f"treated (n = {n1})"]

    ax = figs["psm_att_forest"].axes[0]
    table = estimates.concat(published, study_analysis.estimates)
    att = table[table["quantity"].isin(["att", "att_psmatch2_se"])]
    shown = dict(zip([t.get_text() for t in ax.get_yticklabels()], ax.get_yticks()))
    assert len(shown) == len(att)
    points = {round(float(yy), 6): float(xx) for c in ax.collections
              for xx, yy in c.get_offsets()}
    lines = {round(float(ln.get_ydata()[0]), 6): tuple(ln.get_xdata()) for ln in ax.lines
             if len(ln.get_xdata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]}
    for r in att.itertuples():
        se = ", psmatch2 SE" if r.quantity == "att_psmatch2_se" else ""
        y_row = round(float(shown[f"{r.source}: {r.column}{se} (table {r.table})"]), 6)
        assert points[y_row] == pytest.approx(r.estimate)
        if r.source == "frequentist":  # estimate +- 1.96 SE
            np.testing.assert_allclose(lines[y_row], (r.ci_low, r.ci_high))


@pytest.mark.slow
def test_full_size_bayesian_psm_converges_and_recovers(study_data, tmp_path):
    a = analyse_psm(study_data.frame, treatment=contract.TREATMENT, outcome=contract.OUTCOME,
                    covariates=contract.COVARIATES, seed=2023, study=STUDY,
                    exact=pipeline.EXACT, exact_note=pipeline.EXACT_NOTE)
    bay = a.estimates.query("source == 'bayesian' and quantity == 'att'")
    assert "knn_exact" in set(bay["column"])
    assert bay["converged"].all(), bay[["column", "r_hat", "ess_bulk", "ess_tail"]]
    for r in bay.itertuples():
        assert abs(r.estimate - study_data.truth["att"]) < 2 * r.se, (r.column, r.estimate)


@pytest.mark.slow
def test_generic_user_csv_bayesian_recovers_a_constant_att(tmp_path):
    frame = pd.read_csv(make_user_csv(tmp_path / "user.csv"))
    spec = load_spec("propensity_logit").with_sampler(chains=2, draws=500, tune=500)
    a = analyse_psm(frame, treatment="enrolled", outcome="score",
                    covariates=["age", "income", "urban"], seed=2, study="user", spec=spec,
                    bootstrap=50, propensity_draws=100)
    bay = a.estimates.query("source == 'bayesian' and quantity == 'att'")
    for r in bay.itertuples():
        assert abs(r.estimate - 2.0) < 2 * r.se, (r.column, r.estimate, r.se)
