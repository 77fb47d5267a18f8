"""Rosenbaum bounds for matched pairs (:mod:`bayes_pool.estimands.rosenbaum`, issue 17 part 3).

The published example is Morton et al.'s (1982) lead data, 33 exposed children each matched to a
control (Rosenbaum 2002, *Observational Studies*, 2nd ed., sec. 4.3; the same pairs are the
example of R's ``rbounds::psens`` and ``hlsens``). The rest are derivations: at Gamma = 1 the
bounds are the ordinary Wilcoxon test and Hodges-Lehmann estimate. Seconds, no fitting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_pool import robustness
from bayes_pool.errors import InputError
from bayes_pool.estimands import matching, rosenbaum

LEAD_EXPOSED = np.array([38, 23, 41, 18, 37, 36, 23, 62, 31, 34, 24, 14, 21, 17, 16, 20, 15, 10,
                         45, 39, 22, 35, 49, 48, 44, 35, 43, 39, 34, 13, 73, 25, 27], float)
LEAD_CONTROL = np.array([16, 18, 18, 24, 19, 11, 10, 15, 16, 18, 18, 13, 19, 10, 16, 16, 24, 13,
                         9, 14, 21, 19, 7, 18, 19, 12, 11, 22, 25, 16, 13, 11, 13], float)
LEAD = LEAD_EXPOSED - LEAD_CONTROL  # one zero difference (16 - 16) and many ties

WELDER = np.array([0.899, 1.233, 1.733, 3.156, 1.749, 0.431, 1.43, 1.283, 1.137, 1.728, 2.233,
                   2.021, 1.048, 1.248, 0.958, 0.954, 0.459, 1.106, 1.195, 1.818, 1.72, 2.373,
                   1.147, 0.915, 1.149, 0.983, 1.261, 1.234, 0.976, 3.476, 1.659, 0.76, 1.138,
                   1.692, 1.754, 0.78, 1.223, 0.942, 1.433])
WELDER_CONTROL = np.array([0.751, 0.875, 0.161, 0.63, 1.462, 0.702, 0.936, 0.567, 0.726, 0.74,
                           1.16, 0.924, 0.557, 0.954, 0.896, 0.537, 1.345, 0.792, 1.017, 0.951,
                           1.181, 0.582, 1.148, 0.982, 0.37, 0.87, 0.532, 0.86, 0.366, 1.199,
                           1.356, 1.086, 0.611, 0.489, 0.9, 0.511, 0.54, 1.132, 0.655])
"""Werfel et al. (1998): DNA damage (erpcp_p) of 39 welders and matched controls, the example
of Rosenbaum (2010), *Design of Observational Studies*, sec. 3.5 (``DOS2``'s ``werfel``)."""


def test_lead_example_reproduces_rosenbaum_2002_significance_bounds():
    """Rosenbaum (2002, sec. 4.3.3), lead pairs with the zero difference ranked with the rest
    (``zeros="rank"``; the 33 differences are those of ``DOS2``'s ``lead$dif``): upper bounds on
    the one-sided P-value < 0.0001, 0.0018, 0.0136, 0.0388 at Gamma = 1..4 and 0.0468 at 4.25,
    so the 5% conclusion holds at 4.25 and not at 5. Printed to 4 decimals: tolerance 5e-5."""
    t = robustness.rosenbaum_bounds(LEAD, gammas=[1, 2, 3, 4, 4.25, 5], zeros="rank")
    assert t.loc[0, "p_upper"] < 0.0001
    np.testing.assert_allclose(t["p_upper"][1:5], [0.0018, 0.0136, 0.0388, 0.0468], atol=5e-5)
    assert t.loc[5, "p_upper"] > 0.05
    assert 4.25 < t.attrs["breakdown_gamma"] < 5.0


def test_lead_example_reproduces_rosenbaum_2002_estimate_and_interval_bounds():
    """Rosenbaum (2002, sec. 4.3.4-4.3.5; the tables ``DOS2::senWilcox``'s help calls 4.3 and
    4.4), lead pairs: Hodges-Lehmann estimate 15 at Gamma = 1, ranging 8 to 23 at Gamma = 3 and
    6.5 to 25 at Gamma = 4; 95% interval 9.5 to 20.5 at Gamma = 1 and 4.5 to 27.5 at Gamma = 2.
    Every limit is a Walsh average of integer differences, printed exactly: compared exactly.

    Provenance caveat: these limits were typed from the engineer's recollection of the book's
    tables in a session without access to the printed page (the significance bounds above also
    match rbounds' example output); the Gamma = 2 estimate range, recalled as 10.5-19.5 while
    the midpoint rule gives 10.25-19.5, is left out. To be checked against the book."""
    t = robustness.rosenbaum_bounds(LEAD, gammas=[1, 2, 3, 4], zeros="rank")
    np.testing.assert_array_equal(t.loc[[0, 2, 3], ["hl_low", "hl_high"]].to_numpy(),
                                  [[15.0, 15.0], [8.0, 23.0], [6.5, 25.0]])
    np.testing.assert_array_equal(t.loc[[0, 1], ["ci_low", "ci_high"]].to_numpy(),
                                  [[9.5, 20.5], [4.5, 27.5]])


def test_lead_example_reproduces_rbounds_psens():
    """``rbounds::psens(trt, ctrl)`` (the package's help example, Gamma = 1..6) prints upper
    bounds 0.0000, 0.0018, 0.0131, 0.0367, 0.0694, 0.1073 and lower bounds 0: it drops the zero
    difference before ranking (``zeros="drop"``, the default). Tolerance: half the 4th decimal."""
    t = robustness.rosenbaum_bounds(LEAD, gammas=[1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(t["p_upper"], [0.0, 0.0018, 0.0131, 0.0367, 0.0694, 0.1073],
                               atol=5e-5)
    np.testing.assert_allclose(t["p_lower"], 0.0, atol=5e-5)


def test_welder_example_exact_interval_of_design_of_observational_studies():
    """Rosenbaum (2010), *Design of Observational Studies*, Table 3.3: at Gamma = 3 the exact
    one-sided 95% interval for an additive effect starts at 0.0935 (``DOS2::senWilcoxExact``'s
    help brackets it: not rejected at 0.0935, rejected at 0.0936). Exact computation, so the
    bracket is the test; the normal approximation's limit is a little lower, as ``DOS2`` notes."""
    d = WELDER - WELDER_CONTROL
    assert rosenbaum.exact_upper_p_value(d - 0.0935, 3.0) < 0.05
    assert rosenbaum.exact_upper_p_value(d - 0.0936, 3.0) > 0.05
    approx = rosenbaum.lower_limit(d, 3.0, stats.norm.ppf(0.95), zeros="rank")
    assert 0.0 < approx < 0.0935


def test_exact_bound_at_gamma_one_is_the_exact_wilcoxon_test():
    d = WELDER - WELDER_CONTROL
    ref = stats.wilcoxon(d, alternative="greater", method="exact").pvalue
    assert rosenbaum.exact_upper_p_value(d, 1.0) == pytest.approx(ref, rel=1e-9)
    with pytest.raises(InputError, match="tied"):
        rosenbaum.exact_upper_p_value(LEAD, 2.0)


@pytest.mark.parametrize("zeros, zero_method", [("drop", "wilcox"), ("rank", "pratt")])
def test_gamma_one_is_the_wilcoxon_test(zeros, zero_method):
    """At Gamma = 1 both bounds are the normal-approximation signed-rank test with tie-corrected
    variance (scipy's, no continuity correction): equal to rounding error."""
    ref = stats.wilcoxon(LEAD, zero_method=zero_method, correction=False,
                         alternative="greater", method="approx").pvalue
    low, up = rosenbaum.p_value_bounds(LEAD, 1.0, zeros=zeros)
    assert low == pytest.approx(ref, rel=1e-9) and up == pytest.approx(ref, rel=1e-9)


def test_gamma_one_estimate_is_the_median_walsh_average():
    """Without ties the Gamma = 1 Hodges-Lehmann estimate is the median of the Walsh averages
    (d_i + d_j)/2, i <= j; with an odd count of averages it is one of them exactly."""
    d = np.random.default_rng(17).normal(0.4, 1.0, 40)  # 820 Walsh averages
    walsh = np.add.outer(d, d)[np.triu_indices(len(d))] / 2
    t = robustness.rosenbaum_bounds(d, gammas=[1.0])
    assert t.loc[0, "hl_low"] == t.loc[0, "hl_high"] == pytest.approx(np.median(walsh), abs=1e-12)


def test_gamma_one_interval_is_the_walsh_order_statistic():
    """Without ties the Gamma = 1 interval inverts the normal-approximation test: its lower end
    is the Walsh average W_(N-m+1) with m = floor(n(n+1)/4 + z sqrt(n(n+1)(2n+1)/24)) + 1
    (ascending, 1-based), the upper end its mirror; exact (both are order statistics)."""
    d = np.random.default_rng(3).normal(1.0, 2.0, 25)
    n, walsh = len(d), np.sort(np.add.outer(d, d)[np.triu_indices(len(d))] / 2)
    z = stats.norm.ppf(0.975)
    m = int(np.floor(n * (n + 1) / 4 + z * np.sqrt(n * (n + 1) * (2 * n + 1) / 24))) + 1
    t = robustness.rosenbaum_bounds(d, gammas=[1.0])
    assert t.loc[0, "ci_low"] == walsh[len(walsh) - m]
    assert t.loc[0, "ci_high"] == walsh[m - 1]


def test_bounds_widen_with_gamma_and_breakdown_is_where_p_reaches_alpha():
    d = np.random.default_rng(5).normal(0.5, 1.0, 200)
    t = robustness.rosenbaum_bounds(d, gammas=np.arange(1.0, 4.01, 0.25))
    assert np.all(np.diff(t["p_upper"]) > 0) and np.all(np.diff(t["p_lower"]) < 0)
    assert np.all(np.diff(t["hl_low"]) <= 0) and np.all(np.diff(t["hl_high"]) >= 0)
    assert np.all(t["ci_low"] <= t["hl_low"]) and np.all(t["hl_high"] <= t["ci_high"])
    g = t.attrs["breakdown_gamma"]
    assert rosenbaum.p_value_bounds(d, g)[1] == pytest.approx(0.05, abs=1e-9)
    first_insignificant = t.loc[t["p_upper"] >= 0.05, "gamma"].min()
    assert t.loc[t["gamma"] < first_insignificant, "p_upper"].max() < 0.05
    assert first_insignificant - 0.25 < g <= first_insignificant


def test_breakdown_is_one_when_not_significant_without_bias():
    d = np.random.default_rng(2).normal(0.0, 1.0, 30)
    d = d - np.median(d)  # no effect in the sample
    assert rosenbaum.breakdown_gamma(d) == 1.0


def test_differences_from_a_knn_matching_are_treated_minus_mean_of_its_controls():
    """From a psmatch2-style k-NN :class:`Matching` (k = 2, caliper 0.2): treated outcome minus
    the mean of its matched controls -- two for the first two treated, one (0.95) for the third,
    whose second-nearest control (0.52) is outside the caliper."""
    ps = np.array([0.10, 0.50, 0.90, 0.11, 0.12, 0.49, 0.52, 0.95])
    t = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    y = np.array([10.0, 20.0, 30.0, 1.0, 3.0, 5.0, 7.0, 9.0])
    m = matching.match(ps, t, "knn", matching.MatchSettings(k=2, knn_caliper=0.2))
    np.testing.assert_allclose(rosenbaum.differences_from_matching(m, y),
                               [10 - 2.0, 20 - 6.0, 30 - 9.0])


def test_knn_differences_subtract_the_mean_of_the_matched_controls():
    diffs = rosenbaum.matched_differences([5.0, 3.0], np.array([[1.0, 3.0], [2.0, np.nan]]))
    np.testing.assert_array_equal(diffs, [3.0, 1.0])
    np.testing.assert_array_equal(rosenbaum.matched_differences([5.0], [[1.0, 2.0, 6.0]]), [2.0])
    with pytest.raises(InputError, match="y_controls"):
        rosenbaum.matched_differences([1.0, 2.0], [[1.0]])


@pytest.mark.parametrize("kwargs, key", [({"differences": [1.0]}, "differences"),
                                         ({"differences": [1.0, np.nan]}, "differences"),
                                         ({"differences": [1.0, 2.0], "gammas": [0.5]}, "gammas"),
                                         ({"differences": [1.0, 2.0], "zeros": "keep"}, "zeros")])
def test_bad_input_names_the_argument(kwargs, key):
    with pytest.raises(InputError, match=key):
        robustness.rosenbaum_bounds(**kwargs)


def test_table_columns_follow_stata_rbounds():
    t = robustness.rosenbaum_bounds(LEAD, gammas=[1, 2])
    assert isinstance(t, pd.DataFrame)
    assert list(t.columns) == ["gamma", "p_upper", "p_lower", "hl_low", "hl_high", "ci_low",
                               "ci_high"]
