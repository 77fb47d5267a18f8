"""Omitted-variable robustness value (Cinelli & Hazlett 2020) and E-values (VanderWeele & Ding
2017): issue 17 part 3, closed forms against the papers' worked examples. Milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_pool import robustness
from bayes_pool.errors import InputError
from bayes_pool.estimands import evalue, ovb

DARFUR_T, DARFUR_DOF = 4.18445, 783
"""Cinelli & Hazlett (2020, sec. 6; Table 1): 'directly harmed' on 'peace', t = 4.18, 783
residual degrees of freedom (t to 6 digits as ``sensemakr``'s Darfur example prints it)."""


def test_darfur_example_of_cinelli_hazlett():
    """Published: partial R^2 = 2.2%, RV_{q=1} = 13.9%, RV_{q=1, alpha=0.05} = 7.6% (Table 1);
    printed to 0.1 percentage point, so the tolerance is 0.05 points."""
    out = robustness.robustness_value(DARFUR_T, DARFUR_DOF)
    assert out["partial_r2"] == pytest.approx(0.022, abs=5e-4)
    assert out["rv_q"] == pytest.approx(0.139, abs=5e-4)
    assert out["rv_q_alpha"] == pytest.approx(0.076, abs=5e-4)
    # the rounded t of the paper's text gives the same printed values
    rounded = robustness.robustness_value(4.18, DARFUR_DOF)
    assert round(rounded["rv_q"], 3) == 0.139 and round(rounded["rv_q_alpha"], 3) == 0.076


def test_agrees_with_sensemakr():
    """``PySensemakr`` 0.0.8 (PyPI; skipped unless installed): the same closed form, to 1e-12,
    including the case where the bound on the outcome's partial R^2 binds (t = 60, dof = 50).
    Install with ``pip install --no-deps pysensemakr==0.0.8``: its other requirements are ours
    but for jupyter, which it does not import."""
    sm = pytest.importorskip("sensemakr")
    for t, dof, q, alpha in [(DARFUR_T, DARFUR_DOF, 1, 0.05), (2.5, 40, 0.5, 0.1),
                             (-3.1, 120, 1, 0.05), (1.5, 200, 1, 0.05), (60.0, 50, 1, 0.05)]:
        ref = float(np.asarray(sm.robustness_value(t_statistic=float(t), dof=dof, q=q,
                                                   alpha=alpha))[0])
        assert ovb.robustness_value(t, dof, q=q, alpha=alpha) == pytest.approx(ref, abs=1e-12)
        ref_r2 = float(np.asarray(sm.partial_r2(t_statistic=float(t), dof=dof)))
        assert ovb.partial_r2(t, dof) == pytest.approx(ref_r2, abs=1e-12)


def test_robustness_value_is_the_confounder_that_removes_the_estimate():
    """Derivation (their eqs. 17-18): a confounder with partial R^2 = RV with both treatment and
    outcome has a bias equal to the whole estimate, which at q = 1 means RV^2 / (1 - RV) =
    f^2 = t^2 / dof; checked to 1e-12 (rounding only)."""
    for t, dof in [(DARFUR_T, DARFUR_DOF), (2.0, 30), (10.0, 5000)]:
        rv = ovb.robustness_value(t, dof)
        assert rv ** 2 / (1 - rv) == pytest.approx(t * t / dof, rel=1e-12)


def test_rv_alpha_is_zero_when_not_significant():
    assert ovb.robustness_value(1.2, 500, alpha=0.05) == 0.0
    assert ovb.robustness_value(1.2, 500) > 0


def test_victora_example_of_vanderweele_ding():
    """VanderWeele & Ding (2017): formula feeding and respiratory death, RR = 3.9 (95% CI 1.8 to
    8.7): E-value 7.26, CI limit 3.0 (1.8 + sqrt(1.8 * 0.8) = 3.0 exactly); printed to the 2nd
    and 1st decimal, tolerance half of that."""
    out = robustness.e_value(3.9, 1.8, 8.7)
    assert out["e_value"] == pytest.approx(7.26, abs=5e-3)
    assert out["e_value_ci"] == pytest.approx(3.0, abs=1e-12)


def test_smoking_example_of_the_evalue_package():
    """R ``EValue`` vignette (Ding & VanderWeele 2016's smoking and lung cancer): RR = 10.73
    (8.02, 14.36) gives E-values 20.94777 and 15.52336 as printed (to 5e-6)."""
    out = robustness.e_value(10.73, 8.02, 14.36)
    assert out["e_value"] == pytest.approx(20.94777, abs=5e-6)
    assert out["e_value_ci"] == pytest.approx(15.52336, abs=5e-6)


def test_protective_ratio_and_interval_through_one():
    """A ratio below 1 is inverted (E(0.5) = E(2) = 2 + sqrt(2)); its CI limit is the upper one;
    an interval containing 1 has E-value 1."""
    out = robustness.e_value(0.5, 0.3, 0.8)
    assert out["e_value"] == pytest.approx(2 + np.sqrt(2), rel=1e-12)
    assert out["e_value_ci"] == pytest.approx(evalue.e_value_rr(1 / 0.8), rel=1e-12)
    assert robustness.e_value(1.4, 0.9, 2.2)["e_value_ci"] == 1.0


def test_common_outcome_odds_ratio_uses_its_square_root():
    """VanderWeele & Ding (2017, Table): for a common outcome RR ~ sqrt(OR); a rare one's OR is
    taken as the RR."""
    common = robustness.e_value(4.0, 2.25, 9.0, measure="OR", rare=False)
    assert common["risk_ratio"] == 2.0
    assert common["e_value"] == pytest.approx(2 + np.sqrt(2), rel=1e-12)
    assert common["e_value_ci"] == pytest.approx(1.5 + np.sqrt(0.75), rel=1e-12)
    assert robustness.e_value(4.0, measure="OR")["e_value"] == pytest.approx(4 + np.sqrt(12))


@pytest.mark.parametrize("call, key", [
    (lambda: robustness.e_value(-1.0), "estimate"),
    (lambda: robustness.e_value(2.0, measure="HR"), "measure"),
    (lambda: robustness.robustness_value(2.0, 1), "dof"),
    (lambda: robustness.robustness_value(2.0, 100, q=0), "q"),
])
def test_bad_input_names_the_argument(call, key):
    with pytest.raises(InputError, match=key):
        call()
