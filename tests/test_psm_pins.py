"""REGRESSION PINS of the matching code on the smi-psm SYNTHETIC sample (issues 4 and 19).

These are not correctness tests: they pin numbers the code itself produced, so that a change
in matching, balance or the generator that moves them is noticed and re-documented (README,
the ``knn`` finding in ``tests/test_psm_balance.py``). Correctness is tested elsewhere against
independent references: psmatch2's walk re-implemented per unit, pstest's formulas by hand,
hand-computed weights and SEs (``tests/test_psm_balance.py``), known ATTs (``tests/test_psm.py``,
``tests/test_psm_bootstrap.py``). A pin that fails after an intended change is updated with
the new value and a note of why it moved.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bayes_pool.freq import psm as freq_psm
from bayes_pool.studies.smi_psm import contract, synthetic


@pytest.fixture(scope="module")
def default_balance():
    with threadpool_limits(1):
        prep = freq_psm.PSMDesign(contract.TREATMENT, contract.OUTCOME,
                                  contract.COVARIATES).prepare(synthetic.simulate().frame)
        ps = np.asarray(freq_psm.fit_propensity(prep).predict())
    return freq_psm.balance(prep, freq_psm.match(ps, prep.t, "knn"))


def test_pin_knn_leaves_migration_reason_at_11_8_pct_on_the_default_sample(default_balance):
    """PIN (value of the code at the commit that wrote it, to 0.1 point): the paper-style k-NN
    (k = 4, caliper 0.02, psmatch2 without ties) leaves migration_reason at +11.8% standardized
    bias on the default sample, above the 10% rule (the paper prints 7.1%); over seeds 1-8
    +11.3 +/- 3.4, below 10% on 3 of 8, so this is a property of this sample, not of the
    method. It replaces a strict xfail that asserted the opposite on this one seed."""
    assert default_balance.loc["migration_reason", "std_bias_pct_after"] == pytest.approx(
        11.75, abs=0.05)


def test_pin_knn_balances_the_other_covariates_on_the_default_sample(default_balance):
    """PIN: the other six covariates end below 10% after k-NN (largest: health_record 7.8%)."""
    others = default_balance.drop(index="migration_reason")["std_bias_pct_after"].abs()
    assert others.max() == pytest.approx(7.85, abs=0.05)
