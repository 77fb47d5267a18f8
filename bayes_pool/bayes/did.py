r"""Bayesian DiD with Bambi: treatment and covariates as coefficients, time effects, and unit
intercepts partially pooled.

.. math::

    \operatorname{logit} P(y_{it}=1) = \alpha + \beta D_{it} + X_{it}\gamma + \lambda_t + u_{k(i)},
    \qquad u_k \sim N(0, \sigma_u^2)

(identity link and a Normal likelihood for ``family = "gaussian"``). Priors come by role from a
:class:`~bayes_pool.specs.ModelSpec`. The average marginal effect of the treatment is computed
within each posterior draw -- the average over the sample of p(D=1) - p(D=0) for that draw --
and then summarised, so its interval is the interval of the AME itself (averaging per-row
intervals would not be).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import bambi as bmb
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.families import bambi_family
from bayes_pool.bayes.parameterization import noncentered
from bayes_pool.bayes.predictor import LinearPredictor, flat
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.design import PreparedDiD
from bayes_pool.errors import SpecError
from bayes_pool.specs import ModelSpec

log = logging.getLogger(__name__)


def formula(prepared: PreparedDiD) -> str:
    """The Bambi formula of the design."""
    d = prepared.design
    for name in d.columns:
        if not name.isidentifier():
            raise SpecError(f"column name {name!r} is not a valid identifier; rename it in the "
                            "mapping file (e.g. to snake_case)")
    rhs = " + ".join([d.treatment, *d.covariates, f"C({d.time})", f"(1|{d.unit})"])
    return f"{d.outcome} ~ {rhs}"


def _prior(spec: dict) -> bmb.Prior:
    params = {k: v for k, v in spec.items() if k != "dist"}
    return bmb.Prior(spec["dist"], **params)


def priors(prepared: PreparedDiD, spec: ModelSpec) -> dict:
    """Bambi priors keyed by term name, from the spec's priors keyed by role."""
    d = prepared.design
    out = {}
    roles = {"intercept": ["Intercept"], "treatment": [d.treatment],
             "covariates": list(d.covariates), "time": [f"C({d.time})"],
             "sigma": ["sigma"] if d.family == "gaussian" else []}
    for role, prior in spec.priors.items():
        if prior == "default":
            continue
        if role == "unit_sd":
            out[f"1|{d.unit}"] = bmb.Prior("Normal", mu=0.0, sigma=_prior(prior))
        else:
            for term in roles[role]:
                out[term] = _prior(prior)
    return out


def build_model(prepared: PreparedDiD, spec: ModelSpec) -> bmb.Model:
    """The Bambi model for a prepared design and a spec (built, not sampled)."""
    model = bmb.Model(formula(prepared), prepared.frame,
                      family=bambi_family(prepared.design.family), priors=priors(prepared, spec),
                      noncentered=noncentered(prepared.frame, prepared.design.unit,
                                              spec.sampler.parameterization))
    model.build()
    return model


@dataclass
class BayesDiDResult:
    """A sampled Bayesian DiD: the Bambi model, the InferenceData (with AME draws added)."""

    prepared: PreparedDiD
    spec: ModelSpec
    model: bmb.Model
    idata: object

    @property
    def terms(self) -> list[str]:
        d = self.prepared.design
        return [d.treatment, *d.covariates]

    @property
    def divergences(self) -> int:
        return divergences(self.idata)

    def tidy(self, *, study: str, table: str, column: str) -> pd.DataFrame:
        """Rows of the estimates table: ``beta`` and ``ame`` for treatment and covariates,
        each with R-hat, ESS and divergences."""
        variables = {}
        for t in self.terms:
            variables[t] = (t, "beta")
            variables[f"ame_{t}"] = (t, "ame")
        return posterior_rows(self.idata, variables, thresholds=self.spec.convergence,
                              study=study, table=table, column=column,
                              n_obs=self.prepared.n_obs,
                              note=f"Bambi {self.spec.family} hierarchical; {self.spec.sampler.backend}")


def fit_did(prepared: PreparedDiD, spec: ModelSpec, *, seed: int, progressbar: bool = False
            ) -> BayesDiDResult:
    """Sample the posterior and add the AME draws of the treatment and covariates."""
    s, d = spec.sampler, prepared.design
    if spec.family != d.family:
        raise SpecError(f"spec {spec.name!r} is for family {spec.family!r} but the design "
                        f"asks for {d.family!r}")
    model = build_model(prepared, spec)
    idata = sample_bambi(model, s, seed=seed, progressbar=progressbar,
                         what=f"the DiD {d.family} model of {d.outcome}")
    add_ame_draws(model, idata, prepared)
    return BayesDiDResult(prepared=prepared, spec=spec, model=model, idata=idata)


def add_ame_draws(model: bmb.Model, idata, prepared: PreparedDiD) -> None:
    """Add ``ame_<term>`` (chain, draw) variables to the posterior.

    For a logit, the linear predictor of every row and draw comes from the design
    (:class:`~bayes_pool.bayes.predictor.LinearPredictor`); a 0/1 term's AME is the mean of
    expit(eta + b(1 - x)) - expit(eta - b x) (the discrete change, valid because each term
    enters linearly and without interactions), a continuous term's the mean derivative
    b p (1 - p). For a linear model the AME is b.
    """
    d = prepared.design
    post = idata["posterior"]
    terms = [d.treatment, *d.covariates]
    if d.family == "gaussian":
        new = {f"ame_{t}": post[t] for t in terms}
    else:
        lp = LinearPredictor(model, post)
        xs = {t: prepared.frame[t].to_numpy(dtype=float) for t in terms}
        bs = {t: flat(post[t]) for t in terms}
        # 0/1 term: s = 1 - 2x flips to the other arm, so the row's discrete change is
        # s * (expit(eta + s b) - p); one expit per term and draw.
        signs = {t: 1 - 2 * x for t, x in xs.items() if set(np.unique(x)) <= {0.0, 1.0}}
        ame = {t: np.empty(lp.n_draws) for t in terms}
        for rows, eta in lp.chunks():
            p = expit(eta)
            slope = (p * (1 - p)).mean(axis=1)
            for t in terms:
                b = bs[t][rows]
                if t in signs:
                    s = signs[t]
                    ame[t][rows] = ((expit(eta + b[:, None] * s) - p) * s).mean(axis=1)
                else:
                    ame[t][rows] = b * slope
        new = {f"ame_{t}": lp.draws(v) for t, v in ame.items()}
    idata["posterior"] = idata["posterior"].to_dataset().assign(new)
