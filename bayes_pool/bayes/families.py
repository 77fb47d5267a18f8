r"""Bambi families for the toolkit's models: Bambi's own, except a faster Bernoulli-logit.

Bambi's Bernoulli family hands PyMC the probability :math:`p = \operatorname{logit}^{-1}(\eta)`
(clipped away from 0 and 1), and PyMC's Bernoulli then evaluates both :math:`\log p` and
:math:`\log(1 - p)` for every row. The logit log-likelihood is the same function written on
the linear predictor,

.. math:: \ell(\eta) = \sum_i y_i \eta_i - \log(1 + e^{\eta_i}),

with :math:`\log(1 + e^{\eta}) = (\eta + |\eta|)/2 + \log(1 + e^{-|\eta|})`, so one exp and one
log1p a row serve both the value and (through the shared exp) its gradient. On the benchmark
DiD logit this is the same log density and gradient to rounding, computed 1.7x faster (263 ->
155 us a gradient, 2026-12-04), and needs no clipping. :class:`LogitBernoulli` keeps Bambi's
family name, link, priors and every post-processing path; only the PyMC likelihood changes.
"""

from __future__ import annotations

import bambi as bmb
import pymc as pm
import pytensor.tensor as pt
from bambi.families.univariate import Bernoulli

def log1p_exp(eta):
    """``log(1 + exp(eta))`` as ``(eta + |eta|) / 2 + log1p(exp(-|eta|))``: one exp shared by
    the value and its gradient, and no overflow. Written with ``|eta|`` rather than
    ``max(eta, 0)`` so the automatic gradient is right at ``eta = 0`` too (1/2, since the
    gradient of ``|eta|`` there is 0), where every row sits at the usual initial point."""
    a = pt.abs(eta)
    return 0.5 * (eta + a) + pt.log1p(pt.exp(-a))


def bernoulli_logit_logp(value, eta):
    """Bernoulli log-density of ``value`` in {0, 1} given the log-odds ``eta``."""
    return value * eta - log1p_exp(eta)


def _bernoulli_logit_dist(eta, size):
    return pm.Bernoulli.dist(logit_p=eta, size=size)


def bernoulli_logit(name: str, eta, *, observed, dims=None):
    """``pm.Bernoulli(name, logit_p=eta, observed=...)`` with :func:`bernoulli_logit_logp` as
    its log-density; draws (prior and posterior predictive) are PyMC's Bernoulli's."""
    return pm.CustomDist(name, eta, dist=_bernoulli_logit_dist, logp=bernoulli_logit_logp,
                         observed=observed, dims=dims)


class LogitLikelihood:
    """The response distribution Bambi builds: ``LogitLikelihood(name, eta=..., observed=...)``
    in the model; ``LogitLikelihood.dist(p=...)`` where Bambi evaluates the fitted model on
    probabilities (pointwise log-likelihood, posterior predictive)."""

    def __new__(cls, name, *, eta, observed, dims=None):
        return bernoulli_logit(name, eta, observed=observed, dims=dims)

    @staticmethod
    def dist(p, **kwargs):
        return pm.Bernoulli.dist(p=p, **kwargs)


class LogitBernoulli(Bernoulli):
    """Bambi's ``bernoulli`` family (logit link) whose PyMC likelihood takes the linear
    predictor itself: Bambi passes the family the predictor before the inverse link
    (``transform_backend_eta``), the family hands it to :class:`LogitLikelihood`."""

    def __init__(self):
        super().__init__("bernoulli", bmb.Likelihood("Bernoulli", params=["p"], parent="p",
                                                     dist=LogitLikelihood), "logit")

    def transform_backend_eta(self, eta, kwargs):
        kwargs["eta"] = eta
        return eta

    @staticmethod
    def transform_backend_kwargs(kwargs):
        kwargs.pop("p")  # the probability stays in the model as Bambi's deterministic
        return kwargs


def bambi_family(name: str):
    """What to pass as ``bmb.Model(family=...)`` for the toolkit's family ``name``."""
    return LogitBernoulli() if name == "bernoulli" else name
