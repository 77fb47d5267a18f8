"""``family = "t"``: the Bayesian DiD with a Student-t likelihood for heavy-tailed continuous
outcomes (spec ``models/did_t.toml``, prior on ``nu``), the frequentist side staying OLS.

On a generated panel with t(3) errors and a known effect the posterior interval of the effect
covers the truth, nu's posterior sits at heavy tails, and the rows' notes name the likelihood.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayes_pool as bp
from bayes_pool.errors import SpecError
from bayes_pool.specs import load_spec

EFFECT = 0.5


def heavy_tailed_panel(seed: int = 21, units: int = 16, periods: int = 4,
                       rows: int = 15) -> pd.DataFrame:
    """A unit x period panel (synthetic), half the units treated from period 3, unit levels,
    and t(3) errors: a few rows far out that a Normal likelihood would chase."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(units), periods * rows)
    period = np.tile(np.repeat(np.arange(1, periods + 1), rows), units)
    treated = (unit % 2 == 0) & (period >= 3)
    y = (rng.normal(0, 0.5, units)[unit] + 0.2 * period + EFFECT * treated
         + rng.standard_t(3, len(unit)))
    return pd.DataFrame({"unit": [f"u{u:02d}" for u in unit], "period": period,
                         "d": treated.astype(int), "y": y})


def test_student_t_posterior_covers_the_effect_and_the_frequentist_side_stays_ols():
    frame = heavy_tailed_panel()
    result = bp.did(frame, outcome="y", treatment="d", unit="unit", time="period", family="t",
                    seed=11, draws=300, tune=300, chains=2)
    rows = result.tidy()
    bayes = rows[(rows["source"] == "bayesian") & (rows["quantity"] == "ame")].iloc[0]
    freq = rows[(rows["source"] == "frequentist") & (rows["quantity"] == "ame")].iloc[0]
    assert bayes["ci_low"] < EFFECT < bayes["ci_high"]
    assert bayes["r_hat"] < 1.02 and bayes["ess_bulk"] > 150
    assert "Student-t likelihood" in bayes["note"]
    assert "OLS (least squares)" in freq["note"]
    nu = result.analysis.posteriors["tabledid_t"]["posterior"]["nu"]
    assert float(nu.mean()) < 8  # t(3) errors: the data pull nu far below the prior mean 20


def test_student_t_spec_has_a_nu_prior_and_is_for_the_plain_did_only():
    spec = load_spec("did_t")
    assert spec.family == "t"
    assert spec.priors["nu"] == {"dist": "Gamma", "alpha": 2, "beta": 0.1}
    # prior sets scale a t model's coefficients by sd(y), as a Normal model's
    from bayes_pool.priors import load_prior_set
    assert load_prior_set("vague").for_family("t")["treatment"]["sigma"] == {
        "ref": "sd_y", "times": 10.0}
    frame = heavy_tailed_panel(units=6, rows=2)
    frame["cohort"] = np.where(frame["unit"].str[1:].astype(int) % 2 == 0, 3, 0)
    with pytest.raises(SpecError, match="Student-t.*plain DiD only"):
        bp.staggered(frame, outcome="y", treatment="d", unit="unit", time="period",
                     cohort="cohort", family="t")
