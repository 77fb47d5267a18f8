"""Randomization inference by permuting the data's adoption schedule: what the draws keep, and
RI-t / RI-beta p-values against an independent statsmodels computation.

World: ``tests/worlds.confounded_panel`` (SYNTHETIC; 30 regions, three always treated from wave
1, three switchers adopting in waves 2, 3, 3 with half an average region's rows, no effect), so
the data's schedule is {1, 1, 1, 2, 3, 3} and three regions switch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from threadpoolctl import threadpool_limits

from bayes_pool.design import DiDDesign
from bayes_pool.errors import InputError
from bayes_pool.freq.placebo import adoption_schedule, placebo
from worlds import confounded_panel

DESIGN = DiDDesign(outcome="y", treatment="d", unit="region", time="wave", covariates=("x",),
                   family="bernoulli")
SCHEDULE = [1, 1, 1, 2, 3, 3]


@pytest.fixture(scope="module")
def prepared():
    frame, _ = confounded_panel(seed=21, n=2400, effect=0.0)
    return DESIGN.prepare(frame)


def _treatment(frame: pd.DataFrame, units: str, years: str) -> np.ndarray:
    """The draw's treatment rebuilt from its listed units and adoption years."""
    adopt = dict(zip(units.split(";"), map(float, years.split(";"))))
    a = frame["region"].map(adopt).to_numpy(dtype=float)
    wave = pd.to_numeric(frame["wave"]).to_numpy(dtype=float)
    return np.where(np.isnan(a), 0, wave >= a).astype(int)


def _switchers(frame: pd.DataFrame, d: np.ndarray) -> set:
    varies = pd.Series(d).groupby(frame["region"].to_numpy()).nunique()
    return set(varies.index[varies > 1])


def test_ri_draws_keep_the_datas_switchers_count_and_adoption_years(prepared):
    frame = prepared.frame
    assert sorted(adoption_schedule(frame, "region", "wave", "d").replace(np.inf, 0)
                  .loc[lambda s: s > 0]) == SCHEDULE
    r = placebo(prepared, seed=4, n_draws=25)
    assert r.assignment == "permute" and r.n_switching == 3
    seen = set()
    for rec in r.draws.itertuples():
        assert sorted(map(int, rec.adoption_years.split(";"))) == SCHEDULE
        d = _treatment(frame, rec.treated_units, rec.adoption_years)
        switch = _switchers(frame, d)
        assert len(switch) == 3 == rec.n_switching
        seen |= switch
    # the switcher role moves around: 25 draws of 3 from 30 regions reach many of them
    assert len(seen) >= 20


def test_ri_draws_matched_on_size_give_switcher_roles_to_small_regions(prepared):
    """The three switchers have half an average region's rows, so they are the three smallest
    of 30; with three size strata of ten every placebo switcher must come from the smallest
    ten regions (ties in row count broken by label, as documented)."""
    frame = prepared.frame
    sizes = frame["region"].value_counts().sort_index()
    smallest = set(sizes.sort_values(kind="stable").index[:10])
    assert _switchers(frame, frame["d"].to_numpy()) <= smallest
    r = placebo(prepared, seed=5, n_draws=15, match_size=3)
    for rec in r.draws.itertuples():
        assert _switchers(frame, _treatment(frame, rec.treated_units, rec.adoption_years)) \
            <= smallest


def test_ri_t_and_ri_beta_equal_the_definition_on_independent_statsmodels_refits(prepared):
    """RI-t is (1 + #{|t_b| >= |t|}) / (1 + B) with t the clustered t of each refit (MacKinnon &
    Webb 2020); RI-beta the same with the coefficient. Both are recomputed from plain
    statsmodels formula fits of every draw's assignment, not from the module's numbers. On
    this world the two differ (the switchers are small regions, whose coefficients are noisy),
    so a module that did not studentize would fail here."""
    frame = prepared.frame
    groups = pd.factorize(frame["region"], sort=True)[0]
    r = placebo(prepared, seed=6, n_draws=19)

    def fit(d):
        with threadpool_limits(limits=1):
            res = smf.logit("y ~ d + x + C(region) + C(wave)", data=frame.assign(d=d)).fit(
                disp=0, cov_type="cluster", cov_kwds={"groups": groups})
        return float(res.params["d"]), float(res.tvalues["d"])

    b0, t0 = fit(frame["d"].to_numpy())
    refits = np.array([fit(_treatment(frame, rec.treated_units, rec.adoption_years))
                       for rec in r.draws.itertuples()])
    B = len(refits)
    ri_beta = (1 + np.sum(np.abs(refits[:, 0]) >= abs(b0))) / (1 + B)
    ri_t = (1 + np.sum(np.abs(refits[:, 1]) >= abs(t0))) / (1 + B)
    assert ri_beta != ri_t
    assert r.ri_p_value == pytest.approx(ri_beta) and r.ri_t_p_value == pytest.approx(ri_t)
    rows = r.tidy(study="test").set_index("quantity")
    assert rows.at["ri_t_p_value", "p_value"] == pytest.approx(ri_t)
    assert "RI-t" in rows.at["ri_t_p_value", "note"] and "RI-beta" in rows.at["ri_p_value", "note"]


def test_permutation_placebo_needs_a_staggered_treatment(prepared):
    frame = prepared.frame.copy()
    # region r03 (a switcher from wave 2) is made untreated again in wave 3
    frame.loc[(frame["region"] == "r03") & (pd.to_numeric(frame["wave"]) == 3), "d"] = 0
    rows = int((frame["region"] == "r03").sum())
    with pytest.raises(InputError, match=rf"'d' is not a staggered.*1 region.*{rows} rows.*r03"):
        placebo(DESIGN.prepare(frame), seed=1, n_draws=1)
    with pytest.raises(InputError, match="match_size"):
        placebo(prepared, seed=1, n_draws=1, match_size=31)
