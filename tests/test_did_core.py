"""The generic DiD core without sampling: design checks, frequentist recovery, specs, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_pool import estimates
from bayes_pool.bayes.did import build, formula, priors
from bayes_pool.compare import comparison, to_markdown
from bayes_pool.design import DiDDesign
from bayes_pool.errors import InputError, SpecError
from bayes_pool.freq.did import fit_did
from bayes_pool.specs import load_spec, spec_from_dict
from tests.conftest import make_panel

DESIGN = DiDDesign(outcome="y", treatment="treated", unit="county", time="wave",
                   covariates=("x1", "x2"))


def test_frequentist_ame_recovers_truth_within_2_se(panel):
    frame, truth = panel
    res = fit_did(DESIGN.prepare(frame))
    ame = res.margeff.loc["treated"]
    assert abs(ame["ame"] - truth["ame"]) < 2 * ame["se"]
    tidy = res.tidy(study="s", table="t", column="c")
    assert list(tidy.columns) == estimates.COLUMNS + estimates.DIAGNOSTIC_COLUMNS
    assert set(tidy["quantity"]) == {"beta", "ame"}
    assert (tidy["source"] == "frequentist").all()


def test_frequentist_ame_matches_manual_discrete_change(panel):
    frame, _ = panel
    res = fit_did(DESIGN.prepare(frame))
    fr = res.prepared.frame
    p1 = res.result.predict(fr.assign(treated=1))
    p0 = res.result.predict(fr.assign(treated=0))
    assert res.margeff.loc["treated", "ame"] == pytest.approx(float((p1 - p0).mean()), rel=1e-10)


def test_gaussian_frequentist_recovers_effect():
    frame, truth = make_panel(seed=3, family="gaussian", effect=0.5)
    d = DiDDesign("y", "treated", "county", "wave", ("x1", "x2"), family="gaussian")
    res = fit_did(d.prepare(frame))
    m = res.margeff.loc["treated"]
    assert abs(m["ame"] - truth["ame"]) < 2 * m["se"]


@pytest.mark.parametrize("mutate, needle", [
    (lambda f: f.drop(columns="x1"), "x1"),
    (lambda f: f.assign(y=f["y"] * 2), "'y'"),
    (lambda f: f.assign(treated=1), "never varies"),
    (lambda f: f.assign(treated=(f["county"] < "c03").astype(int)), "never changes within"),
    (lambda f: f.assign(wave=f["wave"].where(f.index > 5)), "missing"),
])
def test_design_rejects_bad_input_naming_the_column(panel, mutate, needle):
    frame, _ = panel
    with pytest.raises(InputError, match=needle):
        DESIGN.prepare(mutate(frame.copy()))


def test_non_binary_outcome_message_lists_values_and_count(panel):
    frame, _ = panel
    bad = frame.copy()
    bad.loc[:9, "y"] = 7
    with pytest.raises(InputError) as err:
        DESIGN.prepare(bad)
    assert "10 row(s)" in str(err.value) and "'7'" in str(err.value)


def test_incomplete_controls_are_dropped_and_counted(panel):
    frame, _ = panel
    f = frame.copy()
    f.loc[:99, "x1"] = np.nan
    prep = DESIGN.prepare(f)
    assert prep.n_incomplete == 100 and prep.n_obs == len(f) - 100


def test_spec_priors_map_roles_to_bambi_terms(panel):
    frame, _ = panel
    spec = load_spec("did_logit")
    prep = DESIGN.prepare(frame)
    pri = priors(prep, spec)
    assert set(pri) == {"treated", "C(wave)", "1|county"}
    assert formula(prep) == "y ~ treated + x1 + x2 + C(wave) + (1|county)"
    model, structure = build(prep, spec)
    assert formula(prep, structure) == ("y ~ treated + x1 + x2 + C(wave) + "
                                        + " + ".join(structure.mean_columns) + " + (1|county)")
    assert structure.mean_of("treated") == "mean_treated"
    # The graph is valid: the log-density gradient is finite at the initial point.
    m = model.backend.model
    point = m.initial_point()
    assert np.all(np.isfinite(m.compile_dlogp()(point)))


def test_spec_errors_name_the_problem():
    with pytest.raises(SpecError, match="unknown prior role"):
        spec_from_dict({"model": {"name": "x"}, "priors": {"slope": "default"}})
    with pytest.raises(SpecError, match="backend"):
        spec_from_dict({"model": {"name": "x"}, "sampler": {"backend": "stan"}})
    with pytest.raises(SpecError, match="not found"):
        load_spec("no_such_spec")


def test_comparison_differences_in_published_se():
    rows = [
        estimates.row(study="s", table="3", column="(2)", term="policy", quantity="ame",
                      source="published", estimate=0.10, se=0.04),
        estimates.row(study="s", table="3", column="(2)", term="policy", quantity="ame",
                      source="frequentist", estimate=0.14, se=0.03),
        estimates.row(study="s", table="3", column="(2)", term="policy", quantity="ame",
                      source="bayesian", estimate=0.06, se=0.03, ci_low=0.0, ci_high=0.12,
                      r_hat=1.0, ess_bulk=900, ess_tail=900, divergences=0, converged=True),
    ]
    comp = comparison(estimates.frame(rows))
    assert comp.loc[0, "freq_diff_se"] == pytest.approx(1.0)
    assert comp.loc[0, "bayes_diff_se"] == pytest.approx(-1.0)
    md = to_markdown(comp, title="T", synthetic=True)
    assert "SYNTHETIC DATA" in md and "0.140 (0.030)" in md


def test_estimates_frame_rejects_unknown_columns():
    with pytest.raises(ValueError, match="unknown columns"):
        estimates.frame(pd.DataFrame({"study": ["s"], "bogus": [1]}))


def test_estimates_csv_reads_back_text_columns_as_text(tmp_path):
    rows = estimates.frame([estimates.row(study="s", table="3", column="(2)", term="policy",
                                          quantity="ame", source="frequentist", estimate=0.1,
                                          se=0.02, n_obs=100)])
    path = tmp_path / "estimates.csv"
    estimates.write_csv(rows, path)
    back = estimates.read_csv(path)
    assert back["table"].tolist() == ["3"] and back["column"].tolist() == ["(2)"]
    pd.testing.assert_frame_equal(back, rows)
