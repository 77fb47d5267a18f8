"""Nonlinear (logit) ETWFE on short panels (issue 18): cohort dummies instead of unit effects
(Wooldridge 2023; R etwfe, Stata jwdid), both backends, and errors that name the columns.

The county panel is synthetic (generated here): 500 counties x 5 years, a county level with
SD 3 on the logit scale so that most counties never change outcome, staggered adoption in
2003-2005 and never-treated counties, effect 0.6 on the logit scale.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy.special import expit

from bayes_pool.bayes.etwfe import fit_etwfe as bayes_fit
from bayes_pool.errors import InputError
from bayes_pool.design.staggered import StaggeredDesign, effect_level
from bayes_pool.freq.etwfe import fit_etwfe
from bayes_pool.specs import Convergence, load_spec
from bayes_pool.staggered_workflow import analyse_event_study, analyse_staggered

YEARS = range(2001, 2006)


@pytest.fixture(scope="module")
def county() -> pd.DataFrame:
    rng = np.random.default_rng(18)
    n = 500
    first = rng.choice([2003, 2004, 2005, 0], size=n, p=[0.15, 0.15, 0.15, 0.55])
    level = rng.normal(-1.0, 3.0, n)
    rows = []
    for i in range(n):
        for t in YEARS:
            d = int(first[i] > 0 and t >= first[i])
            p = expit(level[i] + 0.15 * (t - 2003) + 0.6 * d)
            rows.append({"county": f"c{i:03d}", "year": t, "first_treat": first[i], "treat": d,
                         "employed": rng.binomial(1, p)})
    return pd.DataFrame(rows)


def _prepared(frame):
    return StaggeredDesign("employed", "treat", "county", "year", "first_treat").prepare(frame)


def test_county_panel_is_what_the_issue_describes(county):
    constant = (county.groupby("county")["employed"].nunique() == 1).mean()
    assert constant > 0.5
    level, why = effect_level(_prepared(county).event_frame, "county", "bernoulli")
    assert level == "cohort" and "short panel" in why


def test_logit_etwfe_equals_handwritten_glm_with_cohort_and_year_dummies(county):
    """ATT of the default (cohort-dummy, not-yet-treated) logit ETWFE equals a statsmodels GLM
    with cohort and year dummies and one dummy per treated cohort x year cell, to 1e-6."""
    res = fit_etwfe(_prepared(county), cov_type="nonrobust")
    assert res.level == "cohort" and res.dropped_units == ()
    frame = county.copy()
    cells = []
    for g in (2003, 2004, 2005):
        for t in YEARS:
            if t >= g:
                cells.append(f"c{g}_{t}")
                frame[cells[-1]] = ((frame["first_treat"] == g) & (frame["year"] == t)) * 1.0
    glm = smf.glm("employed ~ C(first_treat) + C(year) + " + " + ".join(cells), data=frame,
                  family=sm.families.Binomial()).fit()
    treated = frame[frame["treat"] == 1]
    untreated = treated.assign(**{c: 0.0 for c in cells})
    att = float(np.mean(glm.predict(treated) - glm.predict(untreated)))
    assert res.att.loc["overall", "estimate"] == pytest.approx(att, abs=1e-6)
    g, t = 2004, 2005
    rows = treated[(treated["first_treat"] == g) & (treated["year"] == t)]
    cell = float(np.mean(glm.predict(rows) - glm.predict(rows.assign(**{f"c{g}_{t}": 0.0}))))
    assert res.att.loc[f"g{g}_t{t}", "estimate"] == pytest.approx(cell, abs=1e-6)


def test_bayesian_logit_etwfe_matches_glm(county):
    """Same design (cohort dummies, no county effects), NUTS: the posterior mean ATT is within
    0.25 posterior SD of the frequentist ATT, and the fit converges."""
    spec = load_spec("did_logit").with_sampler(chains=2, draws=300, tune=300)
    spec = dataclasses.replace(spec, convergence=Convergence(max_r_hat=1.05, min_ess_bulk=100,
                                                             min_ess_tail=100))
    prepared = _prepared(county)
    freq = fit_etwfe(prepared, cov_type="nonrobust").att.loc["overall", "estimate"]
    bay = bayes_fit(prepared, spec, seed=3)
    assert "(1|county)" not in str(bay.model.formula)
    row = bay.tidy(study="toy").set_index("column").loc["etwfe"]
    assert row["converged"] and row["divergences"] == 0
    assert abs(row["estimate"] - freq) < 0.25 * row["se"], (row["estimate"], freq, row["se"])
    assert "cohort dummies: logit on a short panel" in row["note"]


def test_workflow_runs_both_staggered_models_on_the_county_panel(county):
    kw = dict(outcome="employed", treatment="treat", unit="county", time="year",
              cohort="first_treat", seed=1, study="toy", bayesian=False)
    stag = analyse_staggered(county, **kw)
    assert stag.facts["staggered"]["level"].startswith("cohort dummies")
    assert "cohort dummies" in stag.estimates.loc[stag.estimates["column"] == "etwfe",
                                                  "note"].iloc[0]
    es = analyse_event_study(county, control="never", **kw).estimates
    lead = es[(es["column"] == "event_time_-2") & (es["quantity"] == "beta")].iloc[0]
    assert lead["ci_low"] <= 0 <= lead["ci_high"]  # no effect before adoption


def test_separated_cell_is_named(county):
    """A cohort x year cell whose rows all have outcome 0 makes the logit separated: the error
    names that cell, not a bare 'Singular matrix'."""
    bad = county.copy()
    bad.loc[(bad["first_treat"] == 2004) & (bad["year"] == 2005), "employed"] = 0
    with pytest.raises(InputError, match=r"separated.*g2004_t2005"):
        fit_etwfe(_prepared(bad))


def test_singular_unit_design_is_named(county):
    """Unit effects asked for on the county panel: after the counties whose outcome never varies
    are dropped, a cohort x year cell with no rows left is named."""
    keep = county[~((county["first_treat"] == 2005)
                    & (county.groupby("county")["employed"].transform("nunique") > 1))]
    with pytest.raises(InputError, match=r"no rows.*g2005_t2005"):
        fit_etwfe(_prepared(keep), level="unit")
