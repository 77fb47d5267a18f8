"""How robust is an estimate to its identifying assumption? The Python API of the breakdown numbers.

- :func:`rosenbaum_bounds` -- unconfoundedness of a matched estimate: Rosenbaum bounds for the
  Wilcoxon signed-rank test and the Hodges-Lehmann estimate over a grid of Gamma (Rosenbaum
  2002, ch. 4; Stata's ``rbounds`` after ``psmatch2``) and the breakdown Gamma.
- :func:`robustness_value` -- unconfoundedness of an OLS coefficient: partial R^2 and the
  robustness values (Cinelli & Hazlett 2020).
- :func:`e_value` -- unconfoundedness of a risk or odds ratio (VanderWeele & Ding 2017).
- :func:`mediation_rho_curve` -- sequential ignorability of a mediation: ACME and ADE as
  functions of the error correlation rho, linear outcome (Imai, Keele & Yamamoto 2010) or
  binary outcome (latent probit, Imai, Keele & Tingley 2010; R's ``medsens``).
- :func:`mediation_sensitivity_summary` -- the rho curve with intervals fitted on a frame and a
  :class:`~bayes_pool.design.mediation.MediationDesign` (unit and time fixed effects), and the
  rho where the ACME vanishes.
- :func:`mediation_rho_posterior` -- the Bayesian version: a prior on rho propagated through
  posterior draws of the two steps (:mod:`bayes_pool.bayes.mediation_sensitivity`).

The numerics live in :mod:`bayes_pool.estimands` (numpy/scipy, and the two least-squares /
probit steps the rho curve takes); this module only shapes their results into tables and dicts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .design.mediation import MediationDesign, PreparedMediation
from .estimands import evalue, mediation_sensitivity, ovb, rosenbaum
from .estimands import mediation_sensitivity_binary as ms_binary
from .estimands.mediation_sensitivity import RhoPrior
from .estimands.mediation_sensitivity_fit import StepDraws
from .estimands.mediation_sensitivity_fit import fit_steps as fit_mediation_steps
from .errors import InputError
from .estimates import CI_PROB

DEFAULT_GAMMAS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
DEFAULT_RHOS = np.round(np.linspace(-0.9, 0.9, 37), 10)


def rosenbaum_bounds(differences, gammas=DEFAULT_GAMMAS, *, alpha: float = 0.05,
                     zeros: rosenbaum.Zeros = "drop") -> pd.DataFrame:
    """Rosenbaum bounds for matched treated-minus-control differences, one row per Gamma.

    ``differences``: one per treated unit (with k-NN matching, the treated outcome minus the
    mean of its matched controls: :func:`bayes_pool.estimands.rosenbaum.matched_differences`).
    Columns: ``gamma``, ``p_upper`` / ``p_lower`` (bounds on the one-sided signed-rank P-value
    of no effect against a positive effect), ``hl_low`` / ``hl_high`` (bounds on the
    Hodges-Lehmann estimate), ``ci_low`` / ``ci_high`` (bounds on the two-sided ``1 - alpha``
    interval). ``attrs["breakdown_gamma"]`` is the Gamma at which ``p_upper`` reaches ``alpha``
    (continuous, not restricted to the grid). Ties as R's ``rbounds`` (``zeros="drop"``) or as
    Rosenbaum (2002) (``zeros="rank"``). Source: Rosenbaum (2002), *Observational Studies*,
    ch. 4; DiPrete & Gangl (2004).
    """
    table = pd.DataFrame(rosenbaum.rosenbaum_table(differences, gammas, alpha=alpha, zeros=zeros))
    table.attrs["breakdown_gamma"] = rosenbaum.breakdown_gamma(differences, alpha=alpha,
                                                               zeros=zeros)
    table.attrs["alpha"] = alpha
    return table


def robustness_value(t: float, dof: float, q: float = 1.0, alpha: float = 0.05) -> dict:
    """Partial R^2 of the treatment with the outcome, ``RV_q`` and ``RV_{q,alpha}`` of an OLS
    coefficient from its t-statistic and residual degrees of freedom (shares, not percent).

    Source: Cinelli & Hazlett (2020), *JRSS B* 82(1), eqs. 18-19.
    """
    return {"t": float(t), "dof": float(dof), "q": q, "alpha": alpha,
            "partial_r2": ovb.partial_r2(t, dof),
            "rv_q": ovb.robustness_value(t, dof, q=q),
            "rv_q_alpha": ovb.robustness_value(t, dof, q=q, alpha=alpha)}


def e_value(estimate: float, lower: float | None = None, upper: float | None = None, *,
            measure: str = "RR", rare: bool = True) -> dict:
    """E-value of a risk ratio (``measure="RR"``) or odds ratio (``"OR"``; ``rare=False``
    converts a common outcome's OR by its square root) and of its CI limit nearest 1.

    Source: VanderWeele & Ding (2017), *Annals of Internal Medicine* 167(4), 268-274.
    """
    return evalue.e_values(estimate, lower, upper, measure=measure, rare=rare)


def mediation_rho_curve(b2: float, g: float, sigma_m: float, sigma_y: float = 1.0,
                        b3: float = 0.0, rhos=DEFAULT_RHOS, *, outcome_family: str = "gaussian",
                        index0=None, index1=None) -> pd.DataFrame:
    """ACME and ADE of a mediation as functions of ``rho = corr(e_M, e_Y)``.

    Linear outcome (``outcome_family="gaussian"``): from the mediator fit (``b2``: treatment
    coefficient, ``sigma_m``: residual SD) and the outcome fit (``g``: mediator coefficient,
    ``b3``: treatment coefficient, ``sigma_y``: residual SD on the same scale as
    ``sigma_m``); columns ``rho``, ``acme``, ``ade``. Source: Imai, Keele & Yamamoto (2010),
    *Statistical Science* 25(1), sec. 4 (Theorem 2).

    Binary outcome (``"bernoulli"``): the latent-variable probit model; ``g`` is the
    mediator's coefficient in the outcome probit, ``index0`` / ``index1`` its index at each
    row with the treatment at 0 / 1 and the mediator at its mean under that treatment
    (``sigma_y`` and ``b3`` are not used: the latent error has SD 1). Columns ``rho``,
    ``acme`` (ACME(1)), ``ade`` (ADE(0)), ``acme_control``, ``ade_treated``, ``total``, on
    the probability scale (:mod:`bayes_pool.estimands.mediation_sensitivity_binary`).

    With unit (and time) effects the same formulas apply to the fits that include them.
    ``attrs["rho_at_zero"]`` is the rho at which the ACME vanishes.
    """
    r = np.asarray(rhos, dtype=float)
    if r.ndim != 1 or r.size == 0:
        raise InputError("rhos: give a one-dimensional grid of error correlations in (-1, 1)")
    if outcome_family == "bernoulli":
        if index0 is None or index1 is None:
            raise InputError("index0 and index1: a binary outcome's curve needs the outcome "
                             "probit's index at every row under treatment 0 and 1")
        eff = ms_binary.probit_effects(r, np.asarray(index0, float)[None, :],
                                       np.asarray(index1, float)[None, :], b2, g, sigma_m)
        curve = pd.DataFrame({"rho": r, **{k: eff[k][0] for k in BINARY_COLUMNS}})
        curve.attrs["rho_at_zero"] = ms_binary.probit_rho_at_zero(g, sigma_m)
        return curve
    if outcome_family != "gaussian":
        raise InputError(f"outcome_family: 'gaussian' or 'bernoulli', got {outcome_family!r}")
    acme = mediation_sensitivity.acme_at(r, b2, g, sigma_m, sigma_y)
    curve = pd.DataFrame({"rho": r, "acme": acme, "ade": b3 + b2 * g - acme})
    curve.attrs["rho_at_zero"] = mediation_sensitivity.rho_at_zero(g, sigma_m, sigma_y)
    return curve


# ------------------------------------ sequential ignorability: fits, unit effects, rho prior ---

BINARY_COLUMNS = ("acme", "ade", "acme_control", "ade_treated", "total")
"""Effects of the probit curve: ACME(1), ADE(0) (the toolkit's indirect and direct),
ACME(0), ADE(1) and the total effect."""


def mediation_sensitivity_summary(frame: pd.DataFrame, design: MediationDesign, *,
                                  rhos=DEFAULT_RHOS, sims: int = 1000, seed: int = 0,
                                  level: float = CI_PROB) -> tuple[pd.DataFrame, dict]:
    """ACME(rho) and ADE(rho) of a mediation design on a data frame, with intervals.

    Fits the two steps on ``design.prepare(frame)``'s rows with the same regressors in both
    (treatment, covariates, unit fixed effects or an intercept, time fixed effects): OLS of
    the mediator, then OLS of a ``gaussian`` outcome or a *probit* of a ``bernoulli`` one
    (the sensitivity model is the latent-variable probit, not the toolkit's logit; units
    whose binary outcome never varies are dropped from that step). The curve's estimate is
    the closed form at the point estimates; ``*_lower`` / ``*_upper`` are the ``level``
    quantiles over ``sims`` simulated parameter draws (``medsens``; clustered by unit).

    Returns the curve (columns ``rho``, ``acme``, ``acme_lower``, ``acme_upper``, ``ade``,
    ``ade_lower``, ``ade_upper``, ``total``, ``total_lower``, ``total_upper``,
    ``acme_control``, ``ade_treated``; effects on the outcome's scale, probability for a
    binary outcome) and a dict: ``rho_at_zero`` (and its interval), ``acme_at_rho0`` (the
    ordinary estimate), ``rho_ci_zero`` (the grid's rho nearest 0 whose ACME interval
    contains 0, None if none does), the model, rows and settings.
    """
    prepared = design.prepare(frame)
    x, groups = _sensitivity_matrix(prepared)
    d = prepared.design
    probit = d.family == "bernoulli"
    steps = fit_mediation_steps(x, prepared.frame[d.mediator].to_numpy(float),
                                prepared.frame[d.outcome].to_numpy(float), probit=probit,
                                groups=groups)
    r = mediation_sensitivity.check_rhos(rhos)
    point = steps.draws(x)
    eff = point.effects(r)
    curve = pd.DataFrame({"rho": r})
    sim_eff = sim_rho0 = None
    if sims:
        sim = steps.draws(x, sims, np.random.default_rng(seed))
        sim_eff, sim_rho0 = sim.effects(r), sim.rho_at_zero()
    for k in ("acme", "ade", "total"):
        curve[k] = eff[k][0]
        lo, hi = _band(sim_eff[k] if sims else None, level, len(r))
        curve[f"{k}_lower"], curve[f"{k}_upper"] = lo, hi
    curve["acme_control"], curve["ade_treated"] = eff["acme_control"][0], eff["ade_treated"][0]
    rho0 = float(point.rho_at_zero()[0])
    rho0_band = _band(sim_rho0[:, None] if sims else None, level, 1)
    info = {
        "family": d.family, "outcome_model": "probit" if probit else "linear (OLS)",
        "rho_at_zero": rho0, "rho_at_zero_lower": float(rho0_band[0][0]),
        "rho_at_zero_upper": float(rho0_band[1][0]),
        "acme_at_rho0": float(point.effects([0.0])["acme"][0, 0]),
        "rho_ci_zero": _nearest_zero_crossing(curve),
        "unit_effects": f"{d.unit} fixed effects" if d.unit else "none",
        "time_effects": f"{d.time} fixed effects" if d.time else "none",
        "n_obs": int(len(steps.rows)), "n_dropped_rows": int(prepared.n_obs - len(steps.rows)),
        "sims": int(sims), "seed": seed, "level": level,
        "source": ("Imai, Keele & Yamamoto (2010) sec. 4; Imai, Keele & Tingley (2010) "
                   "Appendix; medsens (R mediation)"),
    }
    curve.attrs.update(info)
    return curve, info


def mediation_rho_posterior(draws: StepDraws, *, rho_prior: RhoPrior = RhoPrior(),
                            rhos=DEFAULT_RHOS, level: float = CI_PROB,
                            seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Bayesian sensitivity analysis: a prior on rho propagated through posterior draws.

    ``draws``: posterior draws of the identified parameters of the two steps (a
    :class:`~bayes_pool.estimands.mediation_sensitivity_fit.StepDraws`, e.g. from
    :func:`bayes_pool.bayes.mediation_sensitivity.linear_step_draws` or ``probit_step_draws``). rho is not
    identified by the data, so its posterior is its prior; each posterior draw is paired with
    an independent draw of rho from ``rho_prior`` and the ACME computed there, which samples
    the posterior of the ACME averaged over the prior (McCandless, Gustafson & Levy 2007;
    Gustafson 2005's "transparent" parameterisation: the data update only the identified
    parameters).

    Returns the curve (per rho on the grid: posterior median and ``level`` interval of
    ``acme``, ``ade``, ``total`` and ``p_acme_positive``) and a dict with the ACME, ADE and
    total averaged over the prior (``acme``, ``acme_lower``, ``acme_upper``,
    ``p_acme_positive``, ...), the posterior of the rho at which the ACME vanishes,
    ``rho_breakdown_p90`` (the grid rho nearest 0 at which the posterior probability of the
    ACME's sign at rho = 0 falls below 0.9; None if it never does) and the prior's label.
    """
    r = mediation_sensitivity.check_rhos(rhos)
    eff = draws.effects(r)
    curve = pd.DataFrame({"rho": r})
    for k in ("acme", "ade", "total"):
        curve[k] = np.median(eff[k], axis=0)
        curve[f"{k}_lower"], curve[f"{k}_upper"] = _band(eff[k], level, len(r))
    curve["p_acme_positive"] = (eff["acme"] > 0).mean(axis=0)
    # the sign the posterior favours at rho = 0, and the grid rho nearest 0 where it stops
    # being favoured with probability 0.9
    sign_at_0 = np.sign(np.median(draws.effects([0.0])["acme"]))
    p_sign = curve["p_acme_positive"] if sign_at_0 >= 0 else 1 - curve["p_acme_positive"]
    rho_s = rho_prior.draw(np.random.default_rng(seed), len(draws.b))
    mixed = draws.effects(rho_s[:, None])
    info = {"prior": rho_prior.label(), "n_draws": int(len(draws.b)), "level": level,
            "seed": seed, "outcome_model": "probit" if draws.probit else "linear"}
    for k in ("acme", "ade", "total"):
        v = mixed[k][:, 0]
        lo, hi = _band(v[:, None], level, 1)
        info.update({k: float(np.median(v)), f"{k}_mean": float(v.mean()),
                     f"{k}_lower": float(lo[0]), f"{k}_upper": float(hi[0])})
    info["p_acme_positive"] = float((mixed["acme"][:, 0] > 0).mean())
    below = curve.loc[p_sign < 0.9, "rho"].to_numpy()
    info["rho_breakdown_p90"] = (float(below[np.argmin(np.abs(below))]) if below.size
                                 else None)
    rho0 = draws.rho_at_zero()
    lo, hi = _band(rho0[:, None], level, 1)
    info.update({"rho_at_zero": float(np.median(rho0)), "rho_at_zero_lower": float(lo[0]),
                 "rho_at_zero_upper": float(hi[0])})
    curve.attrs.update(info)
    return curve, info


def _sensitivity_matrix(prepared: PreparedMediation) -> tuple[np.ndarray, np.ndarray | None]:
    """Regressors both steps share -- treatment, covariates, unit dummies (or an intercept),
    time dummies (first period dropped) -- and the unit codes for clustering."""
    d = prepared.design
    f = prepared.frame
    parts = [f[[d.treatment, *d.covariates]].to_numpy(float)]
    parts.append(pd.get_dummies(f[d.unit], dtype=float).to_numpy() if d.unit
                 else np.ones((len(f), 1)))
    if d.time:
        parts.append(pd.get_dummies(f[d.time], drop_first=True, dtype=float).to_numpy())
    groups = pd.factorize(f[d.unit], sort=True)[0] if d.unit else None
    return np.column_stack(parts), groups


def _band(values, level: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``level`` quantiles over draws (axis 0) of (S, R) values; NaN without."""
    if values is None:
        return np.full(size, np.nan), np.full(size, np.nan)
    q = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return q[0], q[1]


def _nearest_zero_crossing(curve: pd.DataFrame) -> float | None:
    """The grid's rho nearest 0 at which the ACME interval contains 0."""
    covers = (curve["acme_lower"] <= 0) & (curve["acme_upper"] >= 0)
    if not covers.any():
        return None
    rho = curve.loc[covers, "rho"]
    return float(rho.iloc[int(np.argmin(np.abs(rho.to_numpy())))])
