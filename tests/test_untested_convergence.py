"""The ``converged`` flag of posterior rows on draws whose quality is known by construction.

No sampler: the draws are built so that R-hat, ESS and divergences are known to pass or to
fail the spec's default thresholds (R-hat <= 1.01, bulk and tail ESS >= 400, no divergences),
so a flag that is misreported in either direction fails here in the fast tier.
"""

from __future__ import annotations

import arviz_base as azb
import numpy as np
import pytest

from bayes_pool.bayes.diagnostics import posterior_rows
from bayes_pool.specs import Convergence

ROWS = dict(thresholds=Convergence(), study="s", table="t", column="c", n_obs=100)


def _idata(draws: np.ndarray, diverging: np.ndarray | None = None):
    stats = {"diverging": diverging if diverging is not None else np.zeros(draws.shape, bool)}
    return azb.from_dict({"posterior": {"theta": draws}, "sample_stats": stats})


def _row(idata):
    return posterior_rows(idata, {"theta": ("theta", "beta")}, **ROWS).iloc[0]


def test_independent_well_mixed_draws_are_converged():
    """4 chains x 1000 independent N(1, 1) draws: R-hat about 1.00 (its sampling SD is far
    below 0.01 at this size) and ESS about 4000, ten times the 400 required."""
    draws = np.random.default_rng(0).normal(1.0, 1.0, (4, 1000))
    row = _row(_idata(draws))
    assert row["r_hat"] < 1.01 and row["ess_bulk"] > 2000 and row["ess_tail"] > 2000
    assert row["converged"] and "NOT CONVERGED" not in row["note"]
    assert row["estimate"] == pytest.approx(draws.mean()) and row["divergences"] == 0


@pytest.mark.parametrize("case", ["chains_disagree", "few_draws", "divergent"])
def test_failing_draws_are_flagged_not_converged(case):
    """Each case fails exactly one threshold by a wide margin: chains centred 0 and 3
    (R-hat far above 1.01), 4 x 50 independent draws (ESS at most 200 < 400), and well-mixed
    draws with 5 divergent transitions (more than the 0 allowed)."""
    rng = np.random.default_rng(1)
    draws = rng.normal(0.0, 1.0, (4, 1000))
    diverging = None
    if case == "chains_disagree":
        draws[2:] += 3.0
    elif case == "few_draws":
        draws = draws[:, :50]
    else:
        diverging = np.zeros(draws.shape, bool)
        diverging[0, :5] = True
    row = _row(_idata(draws, diverging))
    assert not row["converged"], row
    assert "NOT CONVERGED" in row["note"]
    if case == "chains_disagree":
        assert row["r_hat"] > 1.5
    elif case == "few_draws":
        assert row["ess_bulk"] < 400 and row["r_hat"] < 1.1
    else:
        assert row["divergences"] == 5 and row["r_hat"] < 1.01 and row["ess_bulk"] > 2000
