r"""Bayesian sensitivity of a mediation to sequential ignorability: rho given a prior.

rho (the correlation of the mediator and outcome errors) is not identified: the data update
only the *identified* parameters of the two steps (the mediator model and the outcome model
given the mediator), and in that "transparent" parameterisation (Gustafson 2005) the
posterior of rho is its prior. So the posterior of the ACME under a prior on rho is sampled
by pairing each posterior draw of the identified parameters with an independent prior draw
of rho and evaluating the closed form there -- a prior over the sensitivity parameter
propagated through the posterior of the identified ones (McCandless, Gustafson & Levy 2007,
"Bayesian sensitivity analysis"). No extra MCMC over rho.

The identified parameters come from the joint model of :mod:`bayes_pool.bayes.mediation`
(same priors, unit effects, time effects):

- linear outcome: its posterior draws as they are (``a``, ``b``, ``d``, the two residual SDs),
  into the closed form of :mod:`bayes_pool.estimands.mediation_sensitivity`;
- binary outcome: the sensitivity model is the latent-variable *probit*
  (:mod:`bayes_pool.estimands.mediation_sensitivity_binary`), so the joint model is refit
  with a probit outcome link (:func:`build_probit_model`; the outcome priors of the spec,
  written for the logit scale, are kept: wider than needed on the probit scale). The
  observed-mediator model only (no measurement model).

References
----------
Gustafson, P. (2005). On model expansion, model contraction, identifiability and prior
information. *Statistical Science* 20(2), 111-140.
McCandless, L. C., Gustafson, P. & Levy, A. (2007). Bayesian sensitivity analysis for
unmeasured confounding in observational studies. *Statistics in Medicine* 26(11), 2331-2347.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.dist_math import normal_lcdf

from bayes_pool import robustness
from bayes_pool.bayes.mediation import (DEFAULT_MEDIATOR_PRIORS, DEFAULT_OUTCOME_PRIORS,
                                        DEFAULT_PATH_PRIORS, BayesMediationResult,
                                        MediationData, MediationSpec, _draws, _linear,
                                        _predictor, _resolve, _rv, fit_mediation, model_data)
from bayes_pool.bayes.diagnostics import check, divergences, summarize
from bayes_pool.bayes.sampling import sample_pymc
from bayes_pool.design.mediation import PreparedMediation
from bayes_pool.errors import InputError
from bayes_pool.estimates import CI_PROB
from bayes_pool.estimands.mediation_sensitivity import RhoPrior
from bayes_pool.estimands.mediation_sensitivity_fit import StepDraws


def linear_step_draws(result: BayesMediationResult) -> StepDraws:
    """Posterior draws of a linear-outcome joint model as the closed form takes them.

    On the model's scale (mediator in SDs, or the latent factor's residual SD in the
    measurement model; the closed form is unchanged by rescaling the mediator), outcome
    quantities in the data's units."""
    d = result.prepared.design
    if d.family != "gaussian":
        raise InputError(f"family {d.family!r}: the binary outcome's sensitivity model is a "
                         "probit; use probit_step_draws(*fit_probit_mediation(...))")
    post = result.idata["posterior"]
    data = model_data(result.prepared, result.spec.model.unit_effects,
                      result.spec.model.unit_time)
    a = _draws(post, "med_treatment")
    sigma_m = np.ones_like(a) if result.latent else _draws(post, "med_sigma")
    return StepDraws(b2=a, b=_draws(post, "out_mediator") * data.y_scale,
                     b3=_draws(post, "out_treatment") * data.y_scale, sigma_m=sigma_m,
                     sigma_y=_draws(post, "out_sigma") * data.y_scale)


def build_probit_model(prepared: PreparedMediation, spec: MediationSpec,
                       data: MediationData) -> pm.Model:
    """The joint model of :func:`bayes_pool.bayes.mediation.build_model` with a probit
    outcome: ``P(Y = 1) = Phi(eta)`` (observed mediator only)."""
    with pm.Model(coords=data.coords) as model:
        mu_m = _linear("med", data, spec.mediator_priors, DEFAULT_MEDIATOR_PRIORS)
        sigma_m = _rv("med_sigma", _resolve(spec.mediator_priors, DEFAULT_MEDIATOR_PRIORS,
                                             "sigma"))
        pm.Normal("mediator", mu=mu_m, sigma=sigma_m, observed=data.m, dims="obs")
        eta = _linear("out", data, spec.model.priors, DEFAULT_OUTCOME_PRIORS)
        b = _rv("out_mediator", _resolve(spec.path_priors, DEFAULT_PATH_PRIORS, "mediator"))
        pm.CustomDist("outcome", eta + b * data.m, logp=_probit_logp, observed=data.y,
                      dims="obs")
    return model


def _probit_logp(value, eta):
    """Bernoulli-probit log-density, ``log Phi(+-eta)`` computed stably in the tails."""
    return pt.switch(pt.eq(value, 1), normal_lcdf(0.0, 1.0, eta), normal_lcdf(0.0, 1.0, -eta))


def fit_probit_mediation(prepared: PreparedMediation, spec: MediationSpec, *, seed: int,
                         progressbar: bool = False):
    """Sample the probit joint model with the spec's sampler; returns ``(idata, data)``."""
    if prepared.design.items:
        raise InputError("items: the probit sensitivity model takes an observed mediator, "
                         "not the measurement model")
    data = model_data(prepared, spec.model.unit_effects, spec.model.unit_time)
    model = build_probit_model(prepared, spec, data)
    idata = sample_pymc(model, spec.sampler, seed=seed, progressbar=progressbar,
                        what="the probit mediation model")
    return idata, data


def probit_step_draws(idata, data: MediationData) -> StepDraws:
    """Posterior draws of the probit joint model as the closed form takes them: per draw the
    outcome index at every row with treatment 0 / 1 and the mediator at its mean under it."""
    post = idata["posterior"]
    a, b = _draws(post, "med_treatment"), _draws(post, "out_mediator")
    d = _draws(post, "out_treatment")
    base = _predictor(post, "out", data)
    mu0 = _predictor(post, "med", data)
    index0 = base + b[:, None] * mu0
    index1 = index0 + (d + b * a)[:, None]
    return StepDraws(b2=a, b=b, sigma_m=_draws(post, "med_sigma"), index0=index0,
                     index1=index1)


def rho_posterior(prepared: PreparedMediation, spec: MediationSpec, *, seed: int,
                  rho_prior: RhoPrior = RhoPrior(), rhos=robustness.DEFAULT_RHOS,
                  level: float = CI_PROB, result: BayesMediationResult | None = None,
                  progressbar: bool = False) -> tuple[pd.DataFrame, dict]:
    """The Bayesian sensitivity analysis of a mediation design: fit (or reuse ``result``, a
    linear-outcome fit) and return :func:`bayes_pool.robustness.mediation_rho_posterior`'s
    curve and summary, the summary with the fit's convergence (divergences, worst R-hat and
    ESS of the identified parameters, ``converged`` against the spec's thresholds)."""
    if prepared.design.family == "gaussian":
        result = result or fit_mediation(prepared, spec, seed=seed, progressbar=progressbar)
        draws, idata = linear_step_draws(result), result.idata
    else:
        idata, data = fit_probit_mediation(prepared, spec, seed=seed, progressbar=progressbar)
        draws = probit_step_draws(idata, data)
    curve, info = robustness.mediation_rho_posterior(draws, rho_prior=rho_prior, rhos=rhos,
                                                     level=level, seed=seed)
    info.update(_convergence(idata, spec))
    curve.attrs.update(info)
    return curve, info


IDENTIFIED = ("med_treatment", "out_mediator", "out_treatment", "med_sigma", "out_sigma")
"""The identified parameters the closed forms take (those the model has), whose convergence
the summary reports."""


def _convergence(idata, spec: MediationSpec) -> dict:
    """Divergences, worst R-hat and ESS of :data:`IDENTIFIED`, and whether they meet the spec."""
    n_div = divergences(idata)
    rows = summarize(idata, [v for v in IDENTIFIED if v in idata["posterior"]])
    return {"divergences": n_div, "max_r_hat": float(rows["r_hat"].max()),
            "min_ess_bulk": float(rows["ess_bulk"].min()),
            "min_ess_tail": float(rows["ess_tail"].min()),
            "converged": all(check(r, n_div, spec.convergence) for _, r in rows.iterrows())}
