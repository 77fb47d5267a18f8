r"""Bayesian linear regression with Bambi: the Bayesian twin of :func:`bayes_pool.freq.ols.fit_ols`.

.. math::

    y_i \sim N(\alpha + \beta D_i + X_i \gamma, \sigma^2)

Priors come by role (``intercept``, ``treatment``, ``covariates``, ``sigma``) from a
:class:`~bayes_pool.specs.ModelSpec`; ``"default"`` keeps Bambi's weakly informative priors,
auto-scaled to the data (for a slope, Normal(0, 2.5 sd(y) / sd(x))). The standardised coefficient
``beta_std = beta sd(x) / sd(y)`` is computed within each draw and summarised like the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import bambi as bmb
import pandas as pd

from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.errors import InputError, SpecError
from bayes_pool.specs import ModelSpec


def _prior(spec: dict) -> bmb.Prior:
    return bmb.Prior(spec["dist"], **{k: v for k, v in spec.items() if k != "dist"})


def priors(spec: ModelSpec, *, treatment: str, covariates: Sequence[str]) -> dict:
    """Bambi priors keyed by term, from the spec's priors keyed by role."""
    roles = {"intercept": ["Intercept"], "treatment": [treatment],
             "covariates": list(covariates), "sigma": ["sigma"]}
    unusable = sorted(set(spec.priors) - set(roles))
    if unusable:
        raise SpecError(f"spec {spec.name!r}: prior role(s) {unusable} have no term in a linear "
                        f"regression; valid roles: {sorted(roles)}")
    return {term: _prior(prior) for role, prior in spec.priors.items() if prior != "default"
            for term in roles[role]}


def build_model(frame: pd.DataFrame, *, outcome: str, treatment: str,
                covariates: Sequence[str], spec: ModelSpec) -> bmb.Model:
    """The Bambi model on the complete rows (built, not sampled)."""
    terms = [treatment, *covariates]
    missing = [c for c in [outcome, *terms] if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {missing} not in the frame; columns: {sorted(frame.columns)}")
    for name in [outcome, *terms]:
        if not name.isidentifier():
            raise SpecError(f"column name {name!r} is not a valid identifier; rename it")
    if spec.family != "gaussian":
        raise SpecError(f"spec {spec.name!r} has family {spec.family!r}; a linear regression "
                        "needs family 'gaussian'")
    data = frame[[outcome, *terms]].dropna().astype(float).reset_index(drop=True)
    model = bmb.Model(f"{outcome} ~ {' + '.join(terms)}", data, family="gaussian",
                      priors=priors(spec, treatment=treatment, covariates=covariates))
    model.build()
    return model


@dataclass
class BayesLinearResult:
    """A sampled Bayesian linear regression (``beta_std_<term>`` draws added)."""

    outcome: str
    terms: list[str]
    spec: ModelSpec
    model: bmb.Model
    idata: object
    n_obs: int

    @property
    def divergences(self) -> int:
        return divergences(self.idata)

    def tidy(self, *, study: str, table: str, column: str) -> pd.DataFrame:
        """Rows ``beta`` (intercept and terms) and ``beta_std`` (terms), with diagnostics."""
        variables = {"Intercept": ("intercept", "beta")}
        for t in self.terms:
            variables[t] = (t, "beta")
            variables[f"beta_std_{t}"] = (t, "beta_std")
        return posterior_rows(self.idata, variables, thresholds=self.spec.convergence,
                              study=study, table=table, column=column, n_obs=self.n_obs,
                              note=f"Bambi gaussian ({self.spec.name}); {self.spec.sampler.backend}")


def fit_linear(frame: pd.DataFrame, *, outcome: str, treatment: str, covariates: Sequence[str],
               spec: ModelSpec, seed: int, progressbar: bool = False) -> BayesLinearResult:
    """Sample the posterior of the linear regression and add standardised-coefficient draws."""
    s = spec.sampler
    model = build_model(frame, outcome=outcome, treatment=treatment, covariates=covariates,
                        spec=spec)
    idata = sample_bambi(model, s, seed=seed, progressbar=progressbar,
                         what=f"the linear regression of {outcome}")
    terms = [treatment, *covariates]
    sd = model.data.std(ddof=1)
    post = idata["posterior"].to_dataset()
    idata["posterior"] = post.assign(
        {f"beta_std_{t}": post[t] * sd[t] / sd[outcome] for t in terms})
    return BayesLinearResult(outcome=outcome, terms=terms, spec=spec, model=model, idata=idata,
                             n_obs=len(model.data))
