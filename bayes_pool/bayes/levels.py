r"""Sampling a correlated-random-effects Bambi model through its unit levels.

A Bambi formula with unit means (``y ~ D + X + mean_D + mean_X + (1|unit)``) has unit
intercepts :math:`u_k \sim N(0, \sigma_u^2)` beside the means' coefficients :math:`\xi` and the
intercept :math:`\alpha`. When each unit has many rows the data pin down its *level*
:math:`a_k = \alpha + \bar Z_k \xi + u_k`, while its split between :math:`u_k` and
:math:`(\alpha, \xi)` is set only by the prior of :math:`u_k`: a ridge in as many directions as
there are unit-level terms, which NUTS's mass-matrix adaptation has to learn while tuning (on
the benchmark logit 2.3x the leapfrog steps of the model without means).

NUTS here samples the same posterior through the levels (the *sampling vehicle*; Bambi's model
stays what the rest of the toolkit sees):

- **collapsed** (all of :math:`\alpha, \xi` with Normal priors, the default priors and every
  Normal prior set): :math:`(\alpha, \xi)` are integrated out,
  :math:`a \sim N(\bar Z m_0, \bar Z S \bar Z^\top + \sigma_u^2 I)`, and drawn afterwards,
  draw by draw, from their exact Normal conditional given :math:`(a, \sigma_u)` (Rao-Blackwell
  style, as a Gibbs step would); NUTS has fewer parameters than the model without means;
- **centred levels** (other priors): :math:`a_k \sim N(\alpha + \bar Z_k \xi, \sigma_u^2)` with
  :math:`\alpha, \xi` sampled (hierarchical centring; Gelfand, Sahu & Carlin 1995).

Either way :func:`CollapsedLevels.complete` returns the trace in Bambi's variables (``Intercept``
of the centred predictors, each mean's coefficient, ``1|unit`` = :math:`a_k - \alpha - \bar Z_k
\xi`), ready for Bambi's own clean-up. Priors, predictor centring, other group terms (the unit x
time effect) and the likelihood are built by Bambi's code; only the parent parameter's linear
predictor is assembled here. Used where the unit intercepts are centred (well-informed units,
:mod:`bayes_pool.bayes.parameterization`); for weakly informed units Bambi's non-centred form is
kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from bambi.backend.model_components import (ConstantComponent, DistributionalComponent,
                                            ResponseComponent)
from bambi.backend.pymc import PyMCModel
from bambi.backend.terms import CommonTerm, GroupSpecificTerm, InterceptTerm
from bambi.backend.utils import get_distribution_from_prior, noncentered_default_for

LEVEL_SUFFIX = "_level"
"""The sampled levels are named ``<group term><LEVEL_SUFFIX>``, e.g. ``1|province_level``."""


def _constant_within(values, index: np.ndarray, groups: int) -> bool:
    x = np.asarray(values, dtype=float).reshape(len(index), -1)
    lo = np.full((groups, x.shape[1]), np.inf)
    hi = np.full((groups, x.shape[1]), -np.inf)
    np.minimum.at(lo, index, x)
    np.maximum.at(hi, index, x)
    return bool(np.all(hi - lo <= 1e-12 * np.maximum(1.0, np.abs(hi))))


def _parent(model):
    return model.parameters[model.family.likelihood.parent]


def unit_level_terms(model, unit_term: str) -> list[str]:
    """The common terms of ``model``'s parent parameter that are constant within the groups
    of ``unit_term`` (the unit means, and any other unit-level covariate)."""
    comp = _parent(model)
    term = comp.group_specific_terms[unit_term]
    index = np.asarray(term.group_index)
    groups = int(index.max()) + 1
    return [name for name, t in comp.common_terms.items()
            if _constant_within(t.data, index, groups)]


def _eligible(model, unit_term: str) -> bool:
    comp = _parent(model)
    term = comp.group_specific_terms.get(unit_term)
    return (term is not None and not noncentered_default_for(model, comp.name)
            and comp.intercept_term is not None and model.center_predictors
            and np.all(np.asarray(term.predictor) == 1)
            and not comp.offset_terms and not comp.hsgp_terms)


def applies(model, unit_term: str) -> bool:
    """Whether the levels vehicle applies: centred unit intercepts (Bambi's flag), an
    intercept, centred predictors, a plain intercept group term ``unit_term`` and at least one
    unit-level common term."""
    return _eligible(model, unit_term) and bool(unit_level_terms(model, unit_term))


def _normal_args(prior, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, SD) of a Normal prior with fixed parameters, broadcast to ``width``."""
    args = prior.args
    if prior.name != "Normal" or set(args) != {"mu", "sigma"} or any(
            not isinstance(v, (int, float, np.ndarray, np.number)) for v in args.values()):
        return None
    return (np.broadcast_to(np.asarray(args["mu"], float), width).copy(),
            np.broadcast_to(np.asarray(args["sigma"], float), width).copy())


def _marginal_logp(W: np.ndarray, s2: np.ndarray):
    """log N(a | mu, sigma^2 I + W S W') with S = diag(s2), for K levels and q unit-level
    columns, without factorising anything while sampling: with S^(1/2) W'W S^(1/2) = V L V'
    (computed once) and g = V' S^(1/2) W' (a - mu), the determinant lemma and Woodbury's
    identity give

        log|Sigma| = K log sigma^2 + sum_i log(1 + l_i / sigma^2),
        r' Sigma^-1 r = r'r / sigma^2 - sum_i g_i^2 / (sigma^2 (sigma^2 + l_i)),

    elementwise in the q eigenvalues: a gradient costs two matrix-vector products."""
    K = W.shape[0]
    root = np.sqrt(s2)
    lam, V = np.linalg.eigh((W * root).T @ (W * root))
    lam = np.clip(lam, 0.0, None)
    G = V.T @ (W * root).T  # q x K
    const = K * np.log(2 * np.pi)

    def logp(value, mu, sigma):
        r = value - mu
        s2_level = sigma ** 2
        g = pt.dot(G, r)
        quad = pt.dot(r, r) / s2_level - pt.sum(g ** 2 / (s2_level * (s2_level + lam)))
        logdet = K * pt.log(s2_level) + pt.sum(pt.log1p(lam / s2_level))
        return -0.5 * (const + logdet + quad)
    return logp


def _at_mean(rv, size, mu, sigma):
    return mu


@dataclass
class CollapsedLevels:
    """The PyMC model NUTS samples for a Bambi model, and how to turn its trace back into
    Bambi's variables."""

    model: pm.Model
    unit_term: str
    between: list[str]
    collapsed: bool
    level_design: np.ndarray  # (units, 1 + unit-level columns), centred as Bambi centres
    widths: dict[str, int]
    dims: list[str]
    prior_mean: np.ndarray | None = None
    prior_sd: np.ndarray | None = None
    term_dims: dict[str, list[str]] = field(default_factory=dict)

    @property
    def form(self) -> str:
        """What the manifest records."""
        kind = ("collapsed: intercept and unit-level coefficients integrated out, drawn from "
                "their conditional" if self.collapsed else "hierarchically centred levels")
        return f"sampled through the unit levels ({kind}); unit-level terms: " + \
            ", ".join(self.between)

    @property
    def level(self) -> str:
        return f"{self.unit_term}{LEVEL_SUFFIX}"

    def complete(self, idata):
        """Add ``Intercept`` (centred), the unit-level coefficients and ``unit_term`` to the
        posterior and drop the levels: Bambi's variables, before Bambi's clean-up."""
        post = idata["posterior"].to_dataset()
        a = np.asarray(post[self.level].transpose("chain", "draw", ...))
        chains, draws, units = a.shape
        a = a.reshape(chains * draws, units)
        W = self.level_design
        if self.collapsed:
            sigma = np.asarray(post[f"{self.unit_term}_sigma"]).reshape(-1)
            theta = self._conditional_draws(a, sigma, self._rng(a))
        else:
            theta = np.column_stack(
                [np.asarray(post["Intercept"]).reshape(chains * draws, -1)]
                + [np.asarray(post[n]).reshape(chains * draws, -1) for n in self.between])
        u = a - theta @ W.T
        new = {self.unit_term: (["chain", "draw", *self.dims], u.reshape(chains, draws, units))}
        if self.collapsed:
            cols = np.split(theta, np.cumsum([1, *self.widths.values()])[:-1], axis=1)
            for name, values in zip(["Intercept", *self.widths], cols):
                dims = self.term_dims.get(name, [])
                shape = (chains, draws) + ((values.shape[1],) if dims else ())
                new[name] = (["chain", "draw", *dims], values.reshape(shape))
        post = post.drop_vars(self.level).assign(
            {k: xr.DataArray(v, dims=d, coords={c: post[c] for c in ("chain", "draw")})
             for k, (d, v) in new.items()})
        idata["posterior"] = post
        return idata

    def conditional(self, a: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and precision of theta = (alpha, xi) given levels ``a`` (draws x units) and
        ``sigma`` (draws): N(P^-1 (S^-1 m0 + W'a / sigma^2), P^-1), P = S^-1 + W'W / sigma^2
        (the Normal prior S = diag(prior_sd^2) updated by the levels' regression on W)."""
        W, m0, s2 = self.level_design, self.prior_mean, self.prior_sd ** 2
        prec = np.diag(1 / s2)[None] + (W.T @ W)[None] / sigma[:, None, None] ** 2
        rhs = (m0 / s2)[None] + (a @ W) / sigma[:, None] ** 2
        return np.linalg.solve(prec, rhs[..., None])[..., 0], prec

    def _conditional_draws(self, a, sigma, rng) -> np.ndarray:
        """One draw of theta from :meth:`conditional` per posterior draw."""
        mean, prec = self.conditional(a, sigma)
        chol = np.linalg.cholesky(prec)
        z = rng.standard_normal(mean.shape)
        # L' x = z gives x with covariance (L L')^-1 = P^-1
        return mean + np.linalg.solve(np.swapaxes(chol, 1, 2), z[..., None])[..., 0]

    @staticmethod
    def _rng(a: np.ndarray) -> np.random.Generator:
        """Seeded by the trace itself, so the same trace gives the same draws."""
        return np.random.default_rng(int.from_bytes(
            hashlib.sha256(np.ascontiguousarray(a).tobytes()).digest()[:8], "little"))


class _LevelComponent(DistributionalComponent):
    """Bambi's distributional component with the unit intercepts sampled as levels."""

    def __init__(self, component, unit_term: str, between: list[str]):
        super().__init__(component)
        self.unit_term, self.between = unit_term, between
        self.vehicle: CollapsedLevels | None = None

    def build(self, pymc_backend, bmb_model):
        self.add_response_coords(pymc_backend, bmb_model)
        comp, m = self.component, pymc_backend.model
        columns = {n: np.asarray(t.data, float).reshape(len(t.data), -1)
                   for n, t in comp.common_terms.items()}
        centre = {n: c.mean(0) for n, c in columns.items()}  # as Bambi centres
        unit = comp.group_specific_terms[self.unit_term]
        index = np.asarray(unit.group_index)
        first = np.unique(index, return_index=True)[1]
        W = np.column_stack([np.ones(len(first))]
                            + [columns[n][first] - centre[n] for n in self.between])
        widths = {n: columns[n].shape[1] for n in self.between}
        priors = [_normal_args(comp.intercept_term.prior, 1)] + [
            _normal_args(comp.common_terms[n].prior, widths[n]) for n in self.between]
        collapsed = all(p is not None for p in priors)
        gterm = GroupSpecificTerm(unit, noncentered=False)
        with m:
            self._coords(m, gterm.coords)
            coefs, term_dims = {}, {}
            build = [n for n in columns if not (collapsed and n in self.between)]
            for name in build:
                common = CommonTerm(comp.common_terms[name])
                self._coords(m, common.coords)
                coefs[name] = pt.atleast_1d(common.build(bmb_model))
            for name in self.between:
                term_dims[name] = list(CommonTerm(comp.common_terms[name]).coords)
            sigma_prior = unit.prior.args["sigma"]
            sigma = get_distribution_from_prior(sigma_prior)(f"{gterm.name}_sigma",
                                                             **sigma_prior.args)
            dims = list(gterm.coords)
            if collapsed:
                m0 = np.concatenate([p[0] for p in priors])
                sd = np.concatenate([p[1] for p in priors])
                level = pm.CustomDist(f"{gterm.name}{LEVEL_SUFFIX}", W @ m0, sigma,
                                      logp=_marginal_logp(W, sd ** 2),
                                      support_point=_at_mean, signature="(k),()->(k)",
                                      dims=dims)
            else:
                intercept = pt.atleast_1d(InterceptTerm(comp.intercept_term).build(bmb_model))
                theta = pt.concatenate([intercept, *(coefs[n] for n in self.between)])
                level = pm.Normal(f"{gterm.name}{LEVEL_SUFFIX}", mu=pt.dot(W, theta),
                                  sigma=sigma, dims=dims)
            within = [n for n in columns if n not in self.between]
            eta = level[index]
            if within:
                X = np.column_stack([columns[n] - centre[n] for n in within])
                eta = eta + pt.dot(X, pt.concatenate([coefs[n] for n in within]))
            noncentered = noncentered_default_for(bmb_model, comp.name)
            for name, term in comp.group_specific_terms.items():
                if name != self.unit_term:
                    other = GroupSpecificTerm(term, noncentered)
                    self._coords(m, other.coords)
                    coef = other.build(bmb_model)
                    eta = eta + coef[np.asarray(term.group_index)] * np.asarray(term.predictor)
            self.output = eta
        self.vehicle = CollapsedLevels(
            model=m, unit_term=gterm.name, between=self.between, collapsed=collapsed,
            level_design=W, widths=widths, dims=dims, term_dims=term_dims,
            prior_mean=np.concatenate([p[0] for p in priors]) if collapsed else None,
            prior_sd=np.concatenate([p[1] for p in priors]) if collapsed else None)

    @staticmethod
    def _coords(m: pm.Model, coords: dict) -> None:
        for dim, values in coords.items():
            if dim not in m.coords:
                m.add_coords({dim: values})


class _LevelBackend(PyMCModel):
    """Bambi's PyMC backend with the parent parameter's component swapped (a copy of
    :meth:`PyMCModel.build`'s loop)."""

    def __init__(self, unit_term: str, between: list[str]):
        super().__init__()
        self.unit_term, self.between = unit_term, between

    def build(self, spec):
        self.model, self.components = pm.Model(), {}
        for name, values in spec.response_term.coords.items():
            if name not in self.model.coords:
                self.model.add_coords({name: values})
        parent = spec.family.likelihood.parent
        with self.model:
            for name, component in spec.marginal_parameters.items():
                self.components[name] = ConstantComponent(component)
                self.components[name].build(self, spec)
            for name, component in spec.conditional_parameters.items():
                self.components[name] = (
                    _LevelComponent(component, self.unit_term, self.between)
                    if name == parent else DistributionalComponent(component))
                self.components[name].build(self, spec)
            self.response_component = ResponseComponent(spec.response_term)
            self.response_component.build(self, spec)
            self.build_potentials(spec)
        self.spec = spec


def level_vehicle(model, unit_term: str) -> CollapsedLevels | None:
    """The levels vehicle of the built Bambi ``model`` (which is left as it is), or ``None``
    when :func:`applies` says no."""
    between = unit_level_terms(model, unit_term) if _eligible(model, unit_term) else []
    if not between:
        return None
    backend = _LevelBackend(unit_term, between)
    backend.build(model)
    return backend.components[model.family.likelihood.parent].vehicle
