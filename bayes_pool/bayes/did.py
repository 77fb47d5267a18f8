r"""Bayesian DiD with Bambi: treatment and covariates as coefficients, time effects, and unit
intercepts partially pooled around the unit means of the regressors (correlated random effects).

.. math::

    \operatorname{logit} P(y_{it}=1) = \alpha + \beta D_{it} + X_{it}\gamma + \lambda_t
        + \bar Z_{k(i)} \xi + u_{k(i)} \;[+\, w_{k(i),t}],
    \qquad u_k \sim N(0, \sigma_u^2), \quad w_{kt} \sim N(0, \sigma_w^2)

(identity link and a Normal likelihood for ``family = "gaussian"``, a Student-t one for a
spec with ``family = "t"``, whose design is ``gaussian``). :math:`\bar Z_k` are the
unit means of the treatment, each covariate and the period dummies (:mod:`bayes_pool.mundlak`),
computed in :func:`build_model` from the frame it is given, so every refit with another
treatment (placebo, subgroup, prior set, SBC) recomputes them. With them :math:`\beta` is the
within-unit (fixed-effects) comparison the frequentist TWFE makes; without them
(``unit_effects = "exchangeable"``) the shrunken intercepts leave part of the level
differences between always-treated and never-treated units to :math:`\beta`. The unit x time
effect :math:`w_{kt}` is optional (``unit_time = true``). With ``unit_effects = "fixed"``
(a 2x2 or a handful of units, which cannot be partially pooled) the unit intercepts are unit
dummies ``C(unit)`` among the common terms, with the ``covariates`` prior, and nothing is
pooled: the linear model's posterior then centres on the TWFE estimate. Priors come by role
from a :class:`~bayes_pool.specs.ModelSpec`. Where the intercepts are centred (well-informed
units) the model is sampled with hierarchically centred unit levels
(:mod:`bayes_pool.bayes.levels`): the same posterior, without the ridge between the intercepts
and the means' coefficients.

The average marginal effect of a term is computed within each posterior draw -- the average
over the sample of p(D=1) - p(D=0) for that draw -- and then summarised, so its interval is the
interval of the AME itself. The unit means are unit-level covariates: they stay at their data
values when the treatment is switched (the AME compares each row's own unit with and without
the treatment, not a unit with another history).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import bambi as bmb
import numpy as np
import pandas as pd
from scipy.special import expit

from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.families import bambi_family
from bayes_pool.bayes.parameterization import (Parameterization, choose_after_unit_terms,
                                                choose_with_cells)
from bayes_pool.bayes.predictor import LinearPredictor, flat
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.design import PreparedDiD
from bayes_pool.errors import SpecError
from bayes_pool.mundlak import UnitMeans, with_unit_means
from bayes_pool.specs import LIKELIHOODS, ModelSpec, design_family

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitStructure:
    """How a fit models its units: the model frame (the prepared rows plus the unit-mean
    columns), the means kept and dropped (``None`` when exchangeable), whether the unit x time
    effect is on, and the intercepts' parameterization with its reason."""

    frame: pd.DataFrame
    unit_effects: str
    means: UnitMeans | None
    unit_time: bool
    parameterization: Parameterization
    sampled_as: str | None = None
    mass_matrix: str | None = None

    @property
    def mean_columns(self) -> list[str]:
        return self.means.columns if self.means is not None else []

    def mean_of(self, column: str) -> str | None:
        """Name of the unit-mean column of ``column`` (None if it has none)."""
        if self.means is None:
            return None
        return next((n for n, src in self.means.sources.items() if src == column), None)

    def to_dict(self) -> dict:
        """What the manifest records."""
        means = self.means.to_dict() if self.means is not None else {"means": {}, "dropped": {}}
        return {"unit_effects": self.unit_effects, "unit_means": means["means"],
                "unit_means_dropped": means["dropped"], "unit_time": self.unit_time,
                "parameterization": self.parameterization.to_dict(),
                "sampled_as": self.sampled_as, "mass_matrix": self.mass_matrix}


def unit_structure(prepared: PreparedDiD, spec: ModelSpec) -> UnitStructure:
    """The unit structure ``spec`` asks for, computed from ``prepared.frame``."""
    d = prepared.design
    frame, means = prepared.frame, None
    if spec.unit_effects == "fixed":
        if spec.unit_time:
            raise SpecError(f"spec {spec.name!r}: unit_time = true needs partially pooled "
                            "units; with unit_effects = \"fixed\" set unit_time = false")
        return UnitStructure(frame=frame, unit_effects="fixed", means=None, unit_time=False,
                             parameterization=Parameterization(
                                 noncentered=False, setting=spec.sampler.parameterization,
                                 reason="no partially pooled unit intercepts (fixed unit "
                                        "effects)"))
    if spec.unit_effects == "correlated":
        frame, means = with_unit_means(prepared.frame, d.unit, [d.treatment, *d.covariates],
                                       time=d.time)
    terms = means.columns if means is not None else []
    if spec.unit_time:
        par = choose_with_cells(frame, d.unit, d.time, spec.sampler.parameterization,
                                outcome=d.outcome, family=d.family, unit_terms=terms)
    else:
        par = choose_after_unit_terms(frame, d.unit, spec.sampler.parameterization,
                                      outcome=d.outcome, family=d.family, unit_terms=terms)
    return UnitStructure(frame=frame, unit_effects=spec.unit_effects, means=means,
                         unit_time=spec.unit_time, parameterization=par)


def formula(prepared: PreparedDiD, structure: UnitStructure | None = None) -> str:
    """The Bambi formula of the design (exchangeable intercepts when no ``structure``)."""
    d = prepared.design
    for name in d.columns[:len(d.columns) - len(d.cluster_column)]:
        if not name.isidentifier():
            raise SpecError(f"column name {name!r} is not a valid identifier; rename it in the "
                            "mapping file (e.g. to snake_case)")
    means = structure.mean_columns if structure is not None else []
    unit_time = [f"(1|{d.unit}:{d.time})"] if structure is not None and structure.unit_time \
        else []
    units = f"C({d.unit})" if _fixed(structure) else f"(1|{d.unit})"
    rhs = " + ".join([d.treatment, *d.covariates, f"C({d.time})", *means, units, *unit_time])
    return f"{d.outcome} ~ {rhs}"


def _fixed(structure: UnitStructure | None) -> bool:
    return structure is not None and structure.unit_effects == "fixed"


def _prior(spec: dict) -> bmb.Prior:
    params = {k: v for k, v in spec.items() if k != "dist"}
    return bmb.Prior(spec["dist"], **params)


GROUP_SD_ROLES = ("unit_sd", "unit_time_sd")


def priors(prepared: PreparedDiD, spec: ModelSpec, structure: UnitStructure | None = None
           ) -> dict:
    """Bambi priors keyed by term name, from the spec's priors keyed by role (roles of terms
    the model does not have, e.g. ``unit_time_sd`` without the unit x time effect, are
    skipped)."""
    d = prepared.design
    out = {}
    has_unit_time = structure is not None and structure.unit_time
    fixed = _fixed(structure)
    roles = {"intercept": ["Intercept"], "treatment": [d.treatment],
             "covariates": [*d.covariates, *([f"C({d.unit})"] if fixed else [])],
             "time": [f"C({d.time})"],
             "sigma": ["sigma"] if d.family == "gaussian" else [],
             "nu": ["nu"] if spec.family == "t" else [],
             "unit_means": structure.mean_columns if structure is not None else [],
             "unit_sd": [] if fixed else [f"1|{d.unit}"],
             "unit_time_sd": [f"1|{d.unit}:{d.time}"] if has_unit_time else []}
    for role, prior in spec.priors.items():
        if prior == "default":
            continue
        for term in roles[role]:
            out[term] = (bmb.Prior("Normal", mu=0.0, sigma=_prior(prior))
                         if role in GROUP_SD_ROLES else _prior(prior))
    return out


def build(prepared: PreparedDiD, spec: ModelSpec) -> tuple[bmb.Model, UnitStructure]:
    """The Bambi model for a prepared design and a spec (built, not sampled) and its unit
    structure."""
    structure = unit_structure(prepared, spec)
    model = bmb.Model(formula(prepared, structure), structure.frame,
                      family=bambi_family(spec.family),
                      priors=priors(prepared, spec, structure),
                      noncentered=structure.parameterization.noncentered)
    model.build()
    return model, structure


def build_model(prepared: PreparedDiD, spec: ModelSpec) -> bmb.Model:
    """The built Bambi model of :func:`build` (without the structure record)."""
    return build(prepared, spec)[0]


@dataclass
class BayesDiDResult:
    """A sampled Bayesian DiD: the Bambi model, the InferenceData (with AME draws added)
    and the unit structure it was fitted with."""

    prepared: PreparedDiD
    spec: ModelSpec
    model: bmb.Model
    idata: object
    structure: UnitStructure | None = None

    @property
    def terms(self) -> list[str]:
        return self.prepared.design.terms

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
                              note=self.model_note())

    def model_note(self) -> str:
        """The model, units and sampler, for the rows' note."""
        family = self.spec.family
        kind = "regression" if _fixed(self.structure) else "hierarchical"
        head = (f"Bambi {family} {kind}" if family != "t" else
                f"Bambi {kind} with a {LIKELIHOODS['t']}")
        return f"{head}; {self.unit_note()}; {self.spec.sampler.backend}"

    def unit_note(self) -> str:
        """How the units were modelled, for the rows' note."""
        st = self.structure
        if _fixed(st):
            return f"fixed unit effects: one dummy per {self.prepared.design.unit}, not pooled"
        if st is None or st.unit_effects == "exchangeable":
            text = "exchangeable unit intercepts (no unit means)"
        else:
            text = ("correlated unit effects: intercepts around the unit means of "
                    + ", ".join(st.means.sources.values()))
        return text + ("; unit x time effect" if st is not None and st.unit_time else "")


def fit_did(prepared: PreparedDiD, spec: ModelSpec, *, seed: int, progressbar: bool = False
            ) -> BayesDiDResult:
    """Sample the posterior and add the AME draws of the treatment and covariates."""
    s, d = spec.sampler, prepared.design
    if design_family(spec.family) != d.family:
        raise SpecError(f"spec {spec.name!r} is for family {spec.family!r} but the design "
                        f"asks for {d.family!r}")
    model, structure = build(prepared, spec)
    idata = sample_bambi(model, s, seed=seed, progressbar=progressbar,
                         what=f"the DiD {d.family} model of {d.outcome}",
                         unit_term=None if _fixed(structure) else f"1|{d.unit}")
    attrs = idata["posterior"].attrs
    structure = replace(structure,
                        sampled_as=attrs.get("unit_levels", "Bambi's model as written"),
                        mass_matrix=attrs.get("mass_matrix", spec.sampler.backend))
    add_ame_draws(model, idata, prepared)
    return BayesDiDResult(prepared=prepared, spec=spec, model=model, idata=idata,
                          structure=structure)


def add_ame_draws(model: bmb.Model, idata, prepared: PreparedDiD) -> None:
    """Add ``ame_<term>`` (chain, draw) variables to the posterior.

    For a logit, the linear predictor of every row and draw comes from the design
    (:class:`~bayes_pool.bayes.predictor.LinearPredictor`); a 0/1 term's AME is the mean of
    expit(eta + b(1 - x)) - expit(eta - b x) (the discrete change, valid because each term
    enters linearly and without interactions), a continuous term's the mean derivative
    b p (1 - p). For a linear model the AME is b. Only the term itself moves: the unit-mean
    columns of the design stay at their data values.
    """
    d = prepared.design
    post = idata["posterior"]
    terms = d.terms
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
