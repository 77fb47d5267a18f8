"""Clustered SEs of the linear ETWFE and event study follow fixest's CRV1 (unit dummies nested
in the unit clusters not counted in K, t(G - 1) p-values and intervals), checked against
pyfixest (a test-only dependency) on a generated staggered panel, as
``test_freq_conventions.py`` does for the TWFE DiD.

For a linear outcome a cell's (or bin's) ATT is its coefficient, so every row must equal
pyfixest's coefficient, SE, p-value and interval to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_pool.design.staggered import StaggeredDesign, cell_columns
from bayes_pool.freq.etwfe import fit_etwfe
from bayes_pool.freq.event_study import fit_event_study

DESIGN = StaggeredDesign(outcome="y", treatment="d", unit="unit", time="period", cohort="adopt",
                         covariates=("x",), family="gaussian")


def staggered_panel(seed: int = 5, *, units: int = 40, periods: int = 5) -> pd.DataFrame:
    """A balanced linear panel (synthetic): adoption in period 3 or 4, never, or before the
    first period (always treated); unit levels and unit x period shocks, so clustering
    matters; the effect grows with time since adoption."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(units), periods)
    period = np.tile(np.arange(1, periods + 1), units)
    adopt = rng.choice([3, 4, 0, -1], size=units, p=[0.3, 0.3, 0.3, 0.1])
    adopt = np.where(adopt == -1, 1, adopt)[unit]  # adopting in period 1: always treated
    d = ((adopt > 0) & (period >= adopt)).astype(int)
    x = rng.normal(0, 1, len(unit))
    level = rng.normal(0, 1, units)[unit]
    y = (level + 0.2 * period + 0.5 * x + d * (0.3 + 0.2 * (period - adopt))
         + rng.normal(0, 0.5, len(unit)) + rng.normal(0, 1, len(unit)))
    return pd.DataFrame({"unit": [f"u{u:02d}" for u in unit], "period": period,
                         "adopt": adopt, "d": d, "x": x, "y": y})


def _assert_rows_match(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    for term, row in ours.iterrows():
        ref = theirs.loc[term]
        assert row["estimate"] == pytest.approx(ref["Estimate"], abs=1e-8), term
        assert row["se"] == pytest.approx(ref["Std. Error"], abs=1e-6), term
        assert row["p_value"] == pytest.approx(ref["Pr(>|t|)"], abs=1e-6), term
        assert row["ci_low"] == pytest.approx(ref["2.5%"], abs=1e-6), term
        assert row["ci_high"] == pytest.approx(ref["97.5%"], abs=1e-6), term
        assert "CRV1" in row["note"] and "t(G-1)" in row["note"], term


@pytest.mark.parametrize("control", ["notyet", "never"])
def test_linear_etwfe_cells_equal_pyfixest_crv1(control):
    pf = pytest.importorskip("pyfixest")
    prepared = DESIGN.prepare(staggered_panel())
    rows = fit_etwfe(prepared, control=control, level="unit").tidy(study="t")
    frame = prepared.event_frame.copy()
    cells = cell_columns(frame, control=control)
    ref = pf.feols(f"y ~ {' + '.join(cells)} + x | unit + period", data=frame,
                   vcov={"CRV1": "unit"}).tidy()
    ref.index = [cells[c]["label"] for c in ref.index[:len(cells)]] + list(ref.index[len(cells):])
    ours = rows[rows["column"].isin(ref.index)].set_index("column")
    assert len(ours) == len(cells) >= 3
    _assert_rows_match(ours, ref)


def test_linear_event_study_bins_equal_pyfixest_crv1():
    pf = pytest.importorskip("pyfixest")
    prepared = DESIGN.prepare(staggered_panel())
    rows = fit_event_study(prepared, control="never", level="unit").tidy(study="t")
    terms = prepared.event_terms
    ref = pf.feols(f"y ~ {' + '.join(terms)} + x | unit + period", data=prepared.event_frame,
                   vcov={"CRV1": "unit"}).tidy()
    ref.index = [f"event_time_{k}" for k in prepared.event_times] + list(ref.index[len(terms):])
    for quantity in ("beta", "ame"):  # linear: the bin's AME is its coefficient
        ours = rows[rows["quantity"] == quantity].set_index("column")
        assert len(ours) == len(terms) >= 3
        _assert_rows_match(ours, ref)


def test_logit_etwfe_and_event_study_cluster_as_stata_logit():
    """A logit ETWFE / event study clusters as Stata's ``logit, vce(cluster)`` (G/(G - 1) on
    the sandwich, nothing else), as the TWFE DiD logit does: every coefficient's SE equals
    statsmodels' uncorrected cluster sandwich times sqrt(G/(G - 1)) (it used statsmodels'
    default, which also multiplies by (N - 1)/(N - K))."""
    from statsmodels.stats.sandwich_covariance import cov_cluster

    panel = staggered_panel(7, units=60)
    panel["y"] = (panel["y"] > panel["y"].median()).astype(int)
    design = StaggeredDesign(outcome="y", treatment="d", unit="unit", time="period",
                             cohort="adopt", covariates=("x",), family="bernoulli")
    prep = design.prepare(panel)
    for fit in (fit_etwfe(prep), fit_event_study(prep, control="never")):
        r = fit.result
        used = r.model.data.frame
        groups = pd.factorize(used["unit"])[0]
        g = len(np.unique(groups))
        se = np.sqrt(np.diag(cov_cluster(r, groups, use_correction=False)) * g / (g - 1))
        np.testing.assert_allclose(np.asarray(r.bse), se, rtol=1e-8)
        rows = fit.tidy(study="t")
        assert rows["note"].str.contains("Stata logit vce\\(cluster\\)").all()
