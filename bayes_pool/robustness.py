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
- :func:`parallel_trends_bounds` -- parallel trends of an event study, frequentist: HonestDiD's
  confidence sets under relative magnitudes (C-LF) or smoothness (FLCI) over a grid of M.
- :func:`parallel_trends_posterior` -- the same, Bayesian: the posterior of the effect with a
  prior on the violation tied to each draw's pre-period coefficients, and its breakdown M;
  :func:`parallel_trends_summary` puts both side by side (Rambachan & Roth 2023).

The numerics (and the rho curve's two fitted steps) live in :mod:`bayes_pool.estimands`; this
module shapes their results into tables and dicts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .design.mediation import MediationDesign
from .estimands import evalue, mediation_sensitivity, ovb, rosenbaum
from .estimands import mediation_sensitivity_binary as ms_binary
from .estimands.mediation_sensitivity import RhoPrior
from .estimands.mediation_sensitivity_fit import StepDraws, band, shared_regressors
from .estimands.mediation_sensitivity_fit import fit_steps as fit_mediation_steps
from .estimands import parallel_trends as pt_sets
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


# -- Sequential ignorability: fitted steps, unit effects, a prior on rho ------------------------
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
    d = prepared.design
    x, groups = shared_regressors(prepared.frame, d.treatment, d.covariates, d.unit, d.time)
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
        lo, hi = band(sim_eff[k] if sims else None, level, len(r))
        curve[f"{k}_lower"], curve[f"{k}_upper"] = lo, hi
    curve["acme_control"], curve["ade_treated"] = eff["acme_control"][0], eff["ade_treated"][0]
    rho0 = float(point.rho_at_zero()[0])
    rho0_band = band(sim_rho0[:, None] if sims else None, level, 1)
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
        curve[f"{k}_lower"], curve[f"{k}_upper"] = band(eff[k], level, len(r))
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
        lo, hi = band(v[:, None], level, 1)
        info.update({k: float(np.median(v)), f"{k}_mean": float(v.mean()),
                     f"{k}_lower": float(lo[0]), f"{k}_upper": float(hi[0])})
    info["p_acme_positive"] = float((mixed["acme"][:, 0] > 0).mean())
    below = curve.loc[p_sign < 0.9, "rho"].to_numpy()
    info["rho_breakdown_p90"] = (float(below[np.argmin(np.abs(below))]) if below.size
                                 else None)
    rho0 = draws.rho_at_zero()
    lo, hi = band(rho0[:, None], level, 1)
    info.update({"rho_at_zero": float(np.median(rho0)), "rho_at_zero_lower": float(lo[0]),
                 "rho_at_zero_upper": float(hi[0])})
    curve.attrs.update(info)
    return curve, info


def _nearest_zero_crossing(curve: pd.DataFrame) -> float | None:
    """The grid's rho nearest 0 at which the ACME interval contains 0."""
    covers = (curve["acme_lower"] <= 0) & (curve["acme_upper"] >= 0)
    if not covers.any():
        return None
    rho = curve.loc[covers, "rho"]
    return float(rho.iloc[int(np.argmin(np.abs(rho.to_numpy())))])


# -- Parallel trends (Rambachan & Roth 2023) ---------------------------------------------------

DEFAULT_MBARS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def _n_pre(pre, post, n: int) -> int:
    """Number of pre-period coefficients from a count or a sequence of event times."""
    n_pre = int(pre) if isinstance(pre, (int, np.integer)) else len(pre)
    n_post = None if post is None else (int(post) if isinstance(post, (int, np.integer))
                                         else len(post))
    if n_post is not None and n_pre + n_post != n:
        raise InputError(f"pre/post: {n_pre} + {n_post} event times for {n} coefficients; "
                         "order the coefficients pre periods first, then post periods")
    return n_pre


def parallel_trends_bounds(coefs, cov, pre, post=None, m_grid=DEFAULT_MBARS, *,
                           restriction: str = "rm", l_vec=None, alpha: float = 0.05,
                           grid_points: int = 1000) -> pd.DataFrame:
    """Frequentist confidence sets for ``theta = l' tau_post`` (default: the first post period)
    when parallel trends may fail, one row per M: ``restriction="rm"`` (relative magnitudes,
    post-period changes at most M times the largest pre-period one; C-LF set) or ``"sd"``
    (smoothness, second differences at most M; FLCI), HonestDiD's defaults.

    ``coefs``/``cov``: the event-study coefficients without the reference period, pre periods
    first, and their covariance; ``pre``/``post``: their counts or event times. Columns ``m``,
    ``lower``, ``upper``; ``attrs``: the original interval and ``breakdown_m``, the smallest M of
    the grid whose set contains 0 (inf if none does).
    """
    es = pt_sets.EventStudy.of(coefs, cov, _n_pre(pre, post, np.size(coefs)), l_vec)
    if restriction not in pt_sets.RESTRICTIONS:
        raise InputError(f"restriction: {restriction!r} is not one of {pt_sets.RESTRICTIONS}")
    rows = []
    for m in np.asarray(m_grid, dtype=float):
        lo, hi = (pt_sets.rm_confidence_set(es, m, alpha=alpha, grid_points=grid_points)
                  if restriction == "rm" else pt_sets.flci(es, m, alpha)[:2])
        rows.append({"m": m, "lower": lo, "upper": hi})
    table = pd.DataFrame(rows)
    table.attrs.update(restriction=restriction, alpha=alpha, estimate=es.theta_hat,
                       original=pt_sets.original_ci(es, alpha),
                       breakdown_m=_first_m(table["m"],
                                            (table["lower"] <= 0) & (table["upper"] >= 0)))
    return table


def _first_m(ms, condition) -> float:
    hits = np.asarray(ms)[np.asarray(condition, dtype=bool)]
    return round(float(hits.min()), 10) if hits.size else float("inf")


def parallel_trends_posterior(draws, pre, post=None, m_grid=DEFAULT_MBARS, *,
                              restriction: str = "rm", l_vec=None, prob: float = 0.95,
                              seed: int = 0, m_step: float | None = None) -> pd.DataFrame:
    """Posterior of ``theta = l' tau_post`` adjusted for a violation of parallel trends, one row
    per M, from draws (draws x coefficients, pre periods first) of an event study.

    Each draw's pre-period coefficients are its violations; the post-period violation gets a
    uniform prior on each allowed step (RM: ``|delta_{t+1} - delta_t| <= M max_s
    |delta_{s+1} - delta_s|``; SD: second differences in ``[-M, M]`` around the linear
    extrapolation). Columns ``m``, ``mean``, ``lower``, ``upper`` (equal-tailed ``prob``
    interval), ``p_positive``, and ``bounds_lower``/``bounds_upper``: the robust-Bayes interval
    of the identified set (``(1-prob)/2`` quantile of its lower end to the ``(1+prob)/2``
    quantile of its upper end; no prior inside the set), ``bounds_p_positive`` (posterior
    probability that the whole set is above 0). ``attrs``: ``breakdown_p90`` (smallest
    M, in steps of ``m_step``, with ``P(theta > 0) < 0.9``), ``breakdown_ci`` (the interval
    first contains 0) and ``breakdown_bounds`` (the robust-Bayes interval first contains 0);
    inf when not reached below ``max(m_grid)``; ``m_step`` defaults to ``max(m_grid) / 200``
    (0.01 for Mbar up to 2). The same uniform draws serve every M. ``breakdown_p90`` is for a
    positive effect: for a negative one pass ``l_vec`` with the opposite sign.
    """
    draws = np.asarray(draws, dtype=float)
    n_pre = _n_pre(pre, post, draws.shape[1] if draws.ndim == 2 else -1)
    tails = ((1 - prob) / 2, (1 + prob) / 2)
    n_post = draws.shape[1] - n_pre if draws.ndim == 2 else 1
    uniforms = np.random.default_rng(seed).uniform(-1, 1, size=(len(draws), n_post))

    def at(m):
        theta = pt_sets.adjusted_draws(draws, n_pre, m, restriction, l_vec, uniforms=uniforms)
        lo_set, hi_set = pt_sets.identified_bounds(draws, n_pre, m, restriction, l_vec)
        lo, hi = np.quantile(theta, tails)
        return {"m": m, "mean": theta.mean(), "lower": lo, "upper": hi,
                "p_positive": float((theta > 0).mean()),
                "bounds_lower": np.quantile(lo_set, tails[0]),
                "bounds_upper": np.quantile(hi_set, tails[1]),
                "bounds_p_positive": float((lo_set > 0).mean())}

    grid = np.asarray(m_grid, dtype=float)
    table = pd.DataFrame([at(m) for m in grid])
    step = m_step if m_step is not None else grid.max() / 200 or 1.0
    fine = pd.DataFrame([at(m) for m in np.arange(0.0, grid.max() + step / 2, step)])
    contains = (fine["lower"] <= 0) & (fine["upper"] >= 0)
    table.attrs.update(
        restriction=restriction, prob=prob,
        breakdown_p90=_first_m(fine["m"], fine["p_positive"] < 0.9),
        breakdown_ci=_first_m(fine["m"], contains),
        breakdown_bounds=_first_m(fine["m"], (fine["bounds_lower"] <= 0)
                                  & (fine["bounds_upper"] >= 0)))
    return table


def parallel_trends_summary(freq_coefs, freq_cov, draws, pre, post, mbar_grid=DEFAULT_MBARS, *,
                            l_vec=None, alpha: float = 0.05, seed: int = 0
                            ) -> tuple[pd.DataFrame, dict]:
    """Relative-magnitudes sensitivity of one event study, frequentist and Bayesian side by side.

    Rows (``method``, ``mbar``, ``lower``, ``upper``, ``mean``, ``p_positive``): ``frequentist``
    (C-LF set), ``bayesian`` (uniform prior on the violation), ``bayesian_bounds`` (robust-Bayes
    interval of the identified set; ``p_positive`` is the posterior probability that the whole
    set is above 0), and ``frequentist_original``/``bayesian_original`` (parallel trends
    assumed; ``mbar`` NaN; the frequentist ``mean`` is the estimate). A frequentist set open at
    its grid's end has an infinite end; ``mean``/``p_positive`` are NaN where a method has
    none. ``freq_coefs``/``freq_cov`` and the columns of ``draws`` hold the
    coefficients without the reference period, pre periods first; ``draws`` may be None.
    Breakdowns: ``frequentist`` (smallest grid Mbar whose set contains 0), ``bayesian_p90``,
    ``bayesian_ci``, ``bayesian_bounds`` (see :func:`parallel_trends_posterior`).
    """
    n_pre = _n_pre(pre, post, np.size(freq_coefs))
    freq = parallel_trends_bounds(freq_coefs, freq_cov, n_pre, None, mbar_grid, l_vec=l_vec,
                                  alpha=alpha)
    o_lo, o_hi = freq.attrs["original"]
    rows = [{"method": "frequentist_original", "mbar": np.nan, "lower": o_lo, "upper": o_hi,
             "mean": freq.attrs["estimate"], "p_positive": np.nan}]
    rows += [{"method": "frequentist", "mbar": r.m, "lower": r.lower, "upper": r.upper,
              "mean": np.nan, "p_positive": np.nan} for r in freq.itertuples()]
    breakdown = {"frequentist": freq.attrs["breakdown_m"]}
    if draws is not None:
        draws = np.asarray(draws, dtype=float)
        theta = pt_sets.adjusted_draws(draws, n_pre, 0.0, "rm", l_vec)  # no violation
        lo, hi = np.quantile(theta, (alpha / 2, 1 - alpha / 2))
        rows.append({"method": "bayesian_original", "mbar": np.nan, "lower": lo, "upper": hi,
                     "mean": theta.mean(), "p_positive": float((theta > 0).mean())})
        bayes = parallel_trends_posterior(draws, n_pre, None, mbar_grid, l_vec=l_vec,
                                          prob=1 - alpha, seed=seed)
        for r in bayes.itertuples():
            rows.append({"method": "bayesian", "mbar": r.m, "lower": r.lower, "upper": r.upper,
                         "mean": r.mean, "p_positive": r.p_positive})
        for r in bayes.itertuples():
            rows.append({"method": "bayesian_bounds", "mbar": r.m, "lower": r.bounds_lower,
                         "upper": r.bounds_upper, "mean": np.nan,
                         "p_positive": r.bounds_p_positive})
        breakdown.update(bayesian_p90=bayes.attrs["breakdown_p90"],
                         bayesian_ci=bayes.attrs["breakdown_ci"],
                         bayesian_bounds=bayes.attrs["breakdown_bounds"])
    return pd.DataFrame(rows), breakdown
