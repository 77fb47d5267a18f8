"""Worlds built to break the mediation estimators, and the tests that they do what theory says.

``confounded_mediation`` adds a mediator and an outcome to :func:`tests.worlds.confounded_panel`
(its Gaussian outcome *is* the mediator here): unit levels of both the mediator and the
outcome track treatment (always-treated units shifted, three switchers with few rows), so
exchangeable unit intercepts leak level differences into the paths; ``confounder`` adds an
unobserved row-level variable raising both the mediator and the outcome (a mediator-outcome
confounder, which no adjustment in the model can remove). All data here are synthetic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from bayes_pool.freq import mediation as freq_mediation
from tests.worlds import confounded_panel

SHIFT = 0.8


def confounded_mediation(seed: int, *, n: int = 3000, a: float = 0.5, b: float = 0.6,
                         direct: float = 0.3, shock_sd: float = 0.0, confounder: float = 0.0,
                         family: str = "bernoulli", **panel) -> tuple[pd.DataFrame, dict]:
    """Repeated cross-sections (columns ``region``, ``wave``, ``d``, ``x``, ``m``, ``y``) with
    a linear mediator ``m`` (``a`` per unit of ``d``, residual SD 1, plus ``confounder`` x U)
    and a logit (or, ``family="gaussian"``, linear with residual SD 1) outcome
    ``y ~ direct d + b m + confounder U + ...``, U ~ N(0, 1) unobserved.

    ``panel`` goes to :func:`~tests.worlds.confounded_panel` (e.g. ``adoption``).

    Truth: the paths ``a``, ``b``, ``d`` and the sample natural effects given every row's
    realised mediator residual and U: :math:`\\bar Y(t, M(t'))` with
    :math:`M_i(t') = m_i + a (t' - d_i)`, the rows' own residuals kept.
    """
    panel, base_truth = confounded_panel(seed, n=n, effect=a, shock_sd=shock_sd,
                                         family="gaussian", resid_sd=1.0, level_shift=SHIFT,
                                         **panel)
    rng = np.random.default_rng([seed, 7])
    units = int(panel["region"].str[1:].astype(int).max()) + 1
    unit = panel["region"].str[1:].astype(int).to_numpy()
    shift = np.zeros(units)
    shift[[int(r[1:]) for r in base_truth["always_treated"]]] = SHIFT
    shift[[int(r[1:]) for r in base_truth["switchers"]]] = SHIFT / 2
    level_y = rng.normal(0.0, 0.5, units) + shift
    u = rng.normal(0.0, 1.0, len(panel))
    t = panel["d"].to_numpy(float)
    m = panel["y"].to_numpy() + confounder * u
    base = (-0.5 + level_y[unit] + 0.1 * (panel["wave"].to_numpy() - 2)
            + 0.3 * panel["x"].to_numpy() + confounder * u)

    def mean_y(tt, tm):
        eta = base + direct * tt + b * (m + a * (tm - t))
        return float(np.mean(expit(eta) if family == "bernoulli" else eta))

    eta_obs = base + direct * t + b * m
    if family == "bernoulli":
        y = rng.binomial(1, expit(eta_obs))
    else:
        y = eta_obs + rng.normal(0.0, 1.0, len(panel))
    frame = panel.drop(columns="y").assign(m=m, y=y)
    indirect, nde = mean_y(1, 1) - mean_y(1, 0), mean_y(1, 0) - mean_y(0, 0)
    return frame, {"a": a, "b": b, "d": direct, "indirect": indirect, "direct": nde,
                   "total": indirect + nde, "switchers": base_truth["switchers"]}


def prepare(frame: pd.DataFrame, family: str = "bernoulli"):
    return freq_mediation.MediationDesign(
        outcome="y", treatment="d", mediator="m", covariates=("x",), unit="region",
        time="wave", family=family).prepare(frame)


def test_mediator_outcome_confounder_biases_as_theory_says():
    """An unobserved U raising both m and y (coefficient c each) biases the outcome step the
    way the omitted-variable formula says, in a linear world where it is exact: within
    units, m's residual is e + cU (variance 1 + c^2) and shares c^2 with y's error, so
    b -> b + c^2 / (1 + c^2), d -> d - a c^2 / (1 + c^2): the indirect effect a b is
    overstated and the direct one understated by a c^2 / (1 + c^2) (0.5 with a = 1,
    c = 1: the direct effect 0.3 turns to -0.2); a and the total are unbiased. Every estimate is within 3 SEs (clustered; Sobel
    for the indirect effect) of its biased limit and, where biased, more than 3 SEs from the
    truth in the direction theory gives. Sixteen switchers with full-size samples keep the
    direct effect's SE (about 0.06) well below its bias."""
    c = 1.0
    frame, truth = confounded_mediation(5, n=6000, a=1.0, confounder=c, family="gaussian",
                                        adoption=(2,) * 8 + (3,) * 8, switcher_share=1.0)
    res = freq_mediation.fit_mediation(prepare(frame, "gaussian"), bootstrap=0)
    bias_b = c**2 / (1 + c**2)
    shift = truth["a"] * bias_b
    a_hat, se_a = res.mediator_step.coef["d"], res.mediator_step.se["d"]
    b_hat, se_b = res.outcome_step.coef["m"], res.outcome_step.se["m"]
    d_hat, se_d = res.outcome_step.coef["d"], res.outcome_step.se["d"]
    se_ind = res.sobel["se"]
    eff = res.effects
    assert abs(a_hat - truth["a"]) < 3 * se_a
    assert abs(b_hat - (truth["b"] + bias_b)) < 3 * se_b
    assert b_hat - truth["b"] > 3 * se_b, "b is not overstated"
    assert abs(d_hat - (truth["d"] - shift)) < 3 * se_d
    assert truth["d"] - d_hat > 3 * se_d, "d is not understated"
    assert abs(eff["indirect"] - (truth["indirect"] + shift)) < 3 * se_ind
    assert eff["indirect"] - truth["indirect"] > 3 * se_ind, "indirect is not overstated"
    assert truth["direct"] - eff["direct"] > 3 * se_d, "direct is not understated"
    assert abs(eff["total"] - truth["total"]) < 3 * np.hypot(se_d, se_ind)
