"""Control groups of the staggered designs (issue 18): ``notyet`` is the not-yet-treated ETWFE,
equal to the imputation estimator (Borusyak, Jaravel & Spiess 2024) for a linear outcome
without covariates; ``never`` is the never-treated one, checked against a hand-written
statsmodels regression and against the 2x2 cohort-mean DiDs it must equal on a balanced panel.

The panel is synthetic (generated here): balanced, unit and period effects, an effect that
differs by cohort and period, so the two control groups give different numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from bayes_pool.design.staggered import StaggeredDesign
from bayes_pool.freq.etwfe import fit_etwfe
from bayes_pool.staggered_workflow import analyse_event_study, analyse_staggered

PERIODS = range(1, 7)
COHORTS = {3: 12, 4: 12, 5: 12, 0: 24}
"""Units per adoption period (0: never treated)."""


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """Synthetic balanced linear panel: 60 units x 6 periods, effect 1 + 0.5 (t - g) + 0.3 g."""
    rng = np.random.default_rng(41)
    first = np.repeat(list(COHORTS), list(COHORTS.values()))
    rows = []
    level = rng.normal(0, 1, len(first))
    trend = {t: 0.3 * t + rng.normal(0, 0.2) for t in PERIODS}
    for i, g in enumerate(first):
        for t in PERIODS:
            d = int(g > 0 and t >= g)
            effect = d * (1 + 0.5 * (t - g) + 0.3 * g)
            rows.append({"unit": f"u{i:02d}", "period": t, "first": g, "d": d,
                         "y": level[i] + trend[t] + effect + rng.normal(0, 0.5)})
    return pd.DataFrame(rows)


def _prepared(panel):
    return StaggeredDesign("y", "d", "unit", "period", "first", family="gaussian").prepare(panel)


def test_notyet_equals_imputation_estimator(panel):
    """Unit and period effects fitted on the untreated rows only, Y(0) imputed for the treated
    rows: the mean gap is the ATT, overall and per cell, to rounding."""
    res = fit_etwfe(_prepared(panel), control="notyet", level="unit")
    untreated = panel[panel["d"] == 0]
    fe = smf.ols("y ~ C(unit) + C(period)", data=untreated).fit()
    treated = panel[panel["d"] == 1]
    gap = treated["y"] - fe.predict(treated)
    assert res.att.loc["overall", "estimate"] == pytest.approx(gap.mean(), abs=1e-8)
    for (g, t), cell_gap in gap.groupby([treated["first"], treated["period"]]):
        assert res.att.loc[f"g{g}_t{t}", "estimate"] == pytest.approx(cell_gap.mean(), abs=1e-8)
    assert set(res.att.index) == {"overall"} | {f"g{g}_t{t}" for g in (3, 4, 5)
                                               for t in PERIODS if t >= g}


def test_never_equals_handwritten_never_treated_regression(panel):
    """Unit and period dummies plus one dummy per cohort and period except g - 1: each post
    cell is the 2x2 DiD of cohort means against the never treated, base period g - 1."""
    res = fit_etwfe(_prepared(panel), control="never", level="unit")
    frame = panel.copy()
    names = []
    for g in (3, 4, 5):
        for t in PERIODS:
            if t != g - 1:
                names.append(f"c{g}_{t}")
                frame[names[-1]] = ((frame["first"] == g) & (frame["period"] == t)).astype(float)
    ols = smf.ols("y ~ C(unit) + C(period) + " + " + ".join(names), data=frame).fit()
    means = panel.groupby(["first", "period"])["y"].mean()
    weights = []
    for g in (3, 4, 5):
        for t in PERIODS:
            if t < g - 1 or t >= g:
                label, coef = f"g{g}_t{t}", ols.params[f"c{g}_{t}"]
                assert res.att.loc[label, "estimate"] == pytest.approx(coef, abs=1e-8)
                did = (means[g, t] - means[g, g - 1]) - (means[0, t] - means[0, g - 1])
                assert coef == pytest.approx(did, abs=1e-8)
                if t >= g:
                    weights.append((coef, COHORTS[g]))
    overall = sum(c * n for c, n in weights) / sum(n for _, n in weights)
    assert res.att.loc["overall", "estimate"] == pytest.approx(overall, abs=1e-8)
    notyet = fit_etwfe(_prepared(panel), control="notyet", level="unit")
    # the two control groups are different estimators here (heterogeneous effects, noise)
    assert abs(notyet.att.loc["overall", "estimate"] - overall) > 1e-3


def test_workflow_default_is_notyet_and_says_so(panel):
    kw = dict(outcome="y", treatment="d", unit="unit", time="period", cohort="first",
              family="gaussian", seed=1, study="toy", bayesian=False)
    est = analyse_staggered(panel, **kw).estimates
    etwfe = est[est["column"] == "etwfe"].iloc[0]
    expected = fit_etwfe(_prepared(panel), control="notyet").att.loc["overall", "estimate"]
    assert etwfe["estimate"] == pytest.approx(expected, abs=1e-10)
    assert "not-yet-treated (R etwfe's default" in etwfe["note"]
    never = analyse_staggered(panel, control="never", **kw).estimates
    assert "controls: never-treated" in never.loc[never["column"] == "etwfe", "note"].iloc[0]
    es = analyse_event_study(panel, **kw).estimates
    assert {int(c.rsplit("_", 1)[1]) for c in es["column"]} == {0, 1, 2, 3}  # lags only
    assert es["note"].str.contains("not-yet-treated").all()
    es_never = analyse_event_study(panel, control="never", **kw).estimates
    assert {int(c.rsplit("_", 1)[1]) for c in es_never["column"]} == {-2, 0, 1, 2, 3}


def test_cli_refuses_an_unknown_control_group(panel, tmp_path, outputs):
    """``--control`` takes notyet or never; anything else stops before any fit or folder."""
    from typer.testing import CliRunner

    from bayes_pool.cli import app
    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    res = CliRunner().invoke(app, ["did", "--data", str(path), "--outcome", "y", "--treatment",
                                   "d", "--unit", "unit", "--time", "period", "--family",
                                   "gaussian", "--cohort", "first", "--staggered",
                                   "--control", "sometimes"])
    assert res.exit_code != 0
    assert "--control must be notyet or never, got 'sometimes'" in res.output
    assert not outputs.exists()
