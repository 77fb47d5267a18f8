r"""Hierarchically centred unit levels for a Bambi model with correlated random effects.

A Bambi formula with unit means (``y ~ D + X + mean_D + mean_X + (1|unit)``) samples the unit
intercepts around zero, :math:`u_k \sim N(0, \sigma_u^2)`, and the means' coefficients
:math:`\xi` as common terms. When each unit has many rows the data pin down its *level*
:math:`a_k = \alpha + \bar Z_k \xi + u_k`, while its split between :math:`u_k` and the
coefficients :math:`\xi` is set only by the prior of :math:`u_k`: a ridge in 16 or more
directions that NUTS's mass-matrix adaptation has to learn while tuning (on the benchmark
logit 2.3x the exchangeable model's leapfrog steps, almost all of it in tuning).

Hierarchical centring (Gelfand, Sahu & Carlin 1995) samples the levels themselves,

.. math::

    a_k \sim N(\alpha + \bar Z_k \xi,\ \sigma_u^2), \qquad
    \eta_{it} = X_{it} \beta + a_{k(i)},

so the data inform :math:`a_k` and the prior of :math:`a_k` informs :math:`(\alpha, \xi)`:
no ridge. It is the same posterior (a shift of :math:`u` by a function of the other
parameters, unit Jacobian): :math:`u_k = a_k - \alpha - \bar Z_k \xi` is kept under Bambi's name
(``1|unit``) as a deterministic, so every downstream reader of the trace (AMEs, diagnostics,
the log-likelihood) sees Bambi's variables. Everything else -- priors, centring of the
predictors, other group terms, the likelihood, the clean-up of the trace -- is Bambi's own
code: only the parent parameter's linear predictor is assembled here.

Used where the unit intercepts are centred (well-informed units, see
:mod:`bayes_pool.bayes.parameterization`); for weakly informed units the non-centred form
:math:`a_k = \alpha + \bar Z_k \xi + \sigma_u z_k` is what Bambi already samples.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from bambi.backend.model_components import (ConstantComponent, DistributionalComponent,
                                            ResponseComponent)
from bambi.backend.pymc import PyMCModel
from bambi.backend.terms import CommonTerm, GroupSpecificTerm, InterceptTerm
from bambi.backend.utils import get_distribution_from_prior, noncentered_default_for

LEVEL_SUFFIX = "_level"
"""The sampled levels are named ``<group term><LEVEL_SUFFIX>``, e.g. ``1|province_level``."""


def _constant_within(values: np.ndarray, index: np.ndarray, groups: int) -> bool:
    x = np.asarray(values, dtype=float).reshape(len(index), -1)
    lo = np.full((groups, x.shape[1]), np.inf)
    hi = np.full((groups, x.shape[1]), -np.inf)
    np.minimum.at(lo, index, x)
    np.maximum.at(hi, index, x)
    return bool(np.all(hi - lo <= 1e-12 * np.maximum(1.0, np.abs(hi))))


def unit_level_terms(model, unit_term: str) -> list[str]:
    """The common terms of ``model``'s parent parameter that are constant within the groups
    of ``unit_term`` (the unit means, and any other unit-level covariate): they move into the
    levels' prior mean."""
    comp = model.parameters[model.family.likelihood.parent]
    term = comp.group_specific_terms[unit_term]
    index = np.asarray(term.group_index)
    groups = int(index.max()) + 1
    return [name for name, t in comp.common_terms.items()
            if _constant_within(t.data, index, groups)]


def can_centre(model, unit_term: str) -> bool:
    """Whether hierarchical centring applies: an intercept, centred predictors, the plain
    intercept term ``unit_term`` and at least one unit-level common term."""
    comp = model.parameters[model.family.likelihood.parent]
    term = comp.group_specific_terms.get(unit_term)
    return (comp.intercept_term is not None and model.center_predictors and term is not None
            and np.asarray(term.predictor).ndim == 1 and np.all(np.asarray(term.predictor) == 1)
            and not comp.offset_terms and not comp.hsgp_terms
            and bool(unit_level_terms(model, unit_term)))


class _LevelComponent(DistributionalComponent):
    """Bambi's distributional component with the ``unit_term`` intercepts sampled as levels."""

    def __init__(self, component, unit_term: str, between: list[str]):
        super().__init__(component)
        self.unit_term, self.between = unit_term, between

    def build(self, pymc_backend, bmb_model):
        self.add_response_coords(pymc_backend, bmb_model)
        comp = self.component
        with pymc_backend.model:
            intercept = InterceptTerm(comp.intercept_term).build(bmb_model)
            coefs, columns = {}, {}
            for name, term in comp.common_terms.items():
                common = CommonTerm(term)
                for dim, values in common.coords.items():
                    pymc_backend.model.add_coords({dim: values})
                coefs[name] = pt.atleast_1d(common.build(bmb_model))
                columns[name] = np.asarray(term.data, dtype=float).reshape(len(term.data), -1)
            # as Bambi: centre every common column, keep the raw matrix to uncentre the
            # intercept in the trace's clean-up
            raw = np.column_stack(list(columns.values()))
            self.design_matrix_without_intercept = raw
            centre = dict(zip(columns, np.split(raw.mean(0), np.cumsum(
                [c.shape[1] for c in columns.values()])[:-1])))
            within = [n for n in columns if n not in self.between]

            unit = comp.group_specific_terms[self.unit_term]
            index = np.asarray(unit.group_index)
            first = np.unique(index, return_index=True)[1]
            level_mean = intercept + self._dot(self.between, columns, centre, coefs, first)
            gterm = GroupSpecificTerm(unit, noncentered=False)
            for dim, values in gterm.coords.items():
                if dim not in pymc_backend.model.coords:
                    pymc_backend.model.add_coords({dim: values})
            dims = list(gterm.coords)
            sigma_prior = unit.prior.args["sigma"]
            sigma = get_distribution_from_prior(sigma_prior)(f"{gterm.name}_sigma",
                                                             **sigma_prior.args)
            level = pm.Normal(f"{gterm.name}{LEVEL_SUFFIX}", mu=level_mean, sigma=sigma,
                              dims=dims)
            pm.Deterministic(gterm.name, level - level_mean, dims=dims)

            eta = level[index] + self._dot(within, columns, centre, coefs)
            noncentered = noncentered_default_for(bmb_model, comp.name)
            for name, term in comp.group_specific_terms.items():
                if name == self.unit_term:
                    continue
                other = GroupSpecificTerm(term, noncentered)
                for dim, values in other.coords.items():
                    if dim not in pymc_backend.model.coords:
                        pymc_backend.model.add_coords({dim: values})
                coef = other.build(bmb_model)
                eta = eta + coef[np.asarray(term.group_index)] * np.asarray(term.predictor)
            self.output = eta

    @staticmethod
    def _dot(names, columns, centre, coefs, rows=slice(None)):
        """The centred columns ``names`` (rows ``rows``) times their coefficients, one
        matrix product."""
        if not names:
            return 0.0
        X = np.column_stack([columns[n][rows] - centre[n] for n in names])
        return pt.dot(X, pt.concatenate([coefs[n] for n in names]))


class _LevelBackend(PyMCModel):
    """Bambi's PyMC backend whose parent component is a :class:`_LevelComponent`."""

    def __init__(self, unit_term: str, between: list[str]):
        super().__init__()
        self.unit_term, self.between = unit_term, between

    def build(self, spec):
        """:meth:`PyMCModel.build` with the parent parameter's component swapped."""
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


def centre_unit_levels(model, unit_term: str) -> list[str] | None:
    """Rebuild the built Bambi ``model`` with its ``unit_term`` intercepts hierarchically
    centred (in place: ``model.backend`` is replaced) and return the unit-level terms moved
    into the levels' mean; ``None`` (model untouched) when :func:`can_centre` says no."""
    if not can_centre(model, unit_term):
        return None
    between = unit_level_terms(model, unit_term)
    backend = _LevelBackend(unit_term, between)
    backend.build(model)
    model.backend = backend
    return between
