r"""Bayesian mediation: one joint PyMC model of the mediator and the outcome, with natural
effects on the outcome's scale computed within every posterior draw.

.. math::

    M_i &= \alpha_0 + a D_i + X_i\gamma + \tau_{t(i)} + u_{k(i)} + \sigma_M \zeta_i,
           \qquad u_k \sim N(0, \sigma_u^2),\ \zeta_i \sim N(0, 1) \\
    g(E[Y_i]) &= \beta_0 + d D_i + b M_i + X_i\delta + \nu_{t(i)} + v_{k(i)},
           \qquad v_k \sim N(0, \sigma_v^2)

``g`` is the logit (``family="bernoulli"``) or the identity with a Normal likelihood
(``"gaussian"``); unit intercepts are partially pooled (non-centred), time effects are
fixed with the first period as reference; without a unit or a time column those terms drop.

*Unit effects* (``[model] unit_effects``). ``"correlated"`` (the default): each equation's
unit intercepts are pooled around the unit means of its regressors (correlated random
effects, :mod:`bayes_pool.mundlak`): :math:`u_k = \bar z_k \xi_M + e_k` with
:math:`\bar z_k` the unit means of the treatment, each covariate and the period dummies, and
:math:`v_k = \bar z'_k \xi_Y + e'_k` with the unit mean of the (observed) mediator added, so
``a``, ``b`` and ``d`` are within-unit slopes, the estimands of the fixed-effects steps of
:mod:`bayes_pool.freq.mediation`. ``"exchangeable"``: :math:`u_k, v_k` as above with no
means, which leaks between-unit level differences into the paths wherever the levels are
related to treatment (the always-treated units). The means are standardised; their
coefficients take the prior role ``unit_means``. With ``[model] unit_time = true`` both
equations get a partially pooled unit x time effect (prior role ``unit_time_sd``), so the
posterior carries shocks shared by a unit's rows in one period.

*Measurement model* (``items`` given): the mediator is a latent factor :math:`\eta_i`
(the first line above with :math:`\alpha_0 = 0,\ \sigma_M = 1`, so its units are SDs of the
factor's residual) measured by its items, z-scored on the untreated rows and treated as
normal (an approximation for ordinal items):
:math:`z_{ij} = \nu_j + \lambda_j \eta_i + \psi_j \epsilon_{ij}`, loadings
:math:`\lambda_j > 0`. The outcome depends on :math:`\eta_i`, so the items' measurement error
is carried into ``b`` and the indirect effect instead of attenuating them as a regression
on an error-laden index does.

Covariates, the observed mediator and a Gaussian outcome are standardised inside the model
(priors in ``models/mediation.toml`` are on that scale); coefficients are reported back in
the data's units. Natural indirect/direct/total effects and the proportion mediated are
computed for each draw by :func:`bayes_pool.estimands.mediation.natural_effects` (g-computation
over the sample, the mediator's normal residual integrated out by Gauss-Hermite quadrature
-- the same formula as the frequentist plug-in) and summarised with their diagnostics.

Over 400 lines on purpose: the spec, the model data, the joint PyMC model and its per-draw
effects are the parts of one model and change together.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy.special import expit

from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.families import bernoulli_logit
from bayes_pool.bayes.sampling import sample_pymc
from bayes_pool.design.mediation import PreparedMediation
from bayes_pool.errors import SpecError
from bayes_pool.estimands.mediation import EFFECTS, natural_effects
from bayes_pool.mundlak import UnitMeans, unit_means
from bayes_pool.specs import MODELS_DIR, ModelSpec, spec_from_dict

log = logging.getLogger(__name__)


def _default_priors(coefficients: float, unit_sd: float, unit_time_sd: float) -> dict:
    """Priors by role for roles set to "default": Normal(0, ``coefficients``) on the
    intercept, treatment, covariate and time coefficients, Normal(0, 2.5) on the unit means'
    coefficients, HalfNormal SDs (the residual's 1)."""
    def normal(sigma):
        return {"dist": "Normal", "mu": 0.0, "sigma": sigma}

    def half_normal(sigma):
        return {"dist": "HalfNormal", "sigma": sigma}
    return {"intercept": normal(coefficients), "treatment": normal(coefficients),
            "covariates": normal(coefficients), "time": normal(coefficients),
            "unit_sd": half_normal(unit_sd), "sigma": half_normal(1.0),
            "unit_means": normal(2.5), "unit_time_sd": half_normal(unit_time_sd)}


DEFAULT_OUTCOME_PRIORS = _default_priors(coefficients=2.5, unit_sd=2.5, unit_time_sd=1.0)
"""Outcome-model priors used for roles set to "default" (logit or standardised scale)."""
DEFAULT_MEDIATOR_PRIORS = _default_priors(coefficients=1.0, unit_sd=1.0, unit_time_sd=0.5)
"""Mediator-model priors (standardised mediator) used for roles set to "default"."""
DEFAULT_PATH_PRIORS = {
    "mediator": {"dist": "Normal", "mu": 0.0, "sigma": 2.5},
    "loading": {"dist": "HalfNormal", "sigma": 1.0},
    "item_sigma": {"dist": "HalfNormal", "sigma": 1.0},
}
"""Priors outside :data:`bayes_pool.specs.PRIOR_ROLES`: the mediator's coefficient in the
outcome model (per SD of the mediator), the items' loadings and residual SDs."""
EXTRA_TABLES = {"mediator_priors": DEFAULT_MEDIATOR_PRIORS, "mediation_priors": DEFAULT_PATH_PRIORS}


# ------------------------------------------------------------------------------- spec ---

@dataclass(frozen=True)
class MediationSpec:
    """A :class:`~bayes_pool.specs.ModelSpec` (outcome priors, sampler, convergence) plus the
    mediator model's priors and the path/measurement priors, read from the same TOML file."""

    model: ModelSpec
    mediator_priors: dict = field(default_factory=dict)
    path_priors: dict = field(default_factory=dict)

    @property
    def sampler(self):
        return self.model.sampler

    @property
    def convergence(self):
        return self.model.convergence

    def with_sampler(self, **changes) -> MediationSpec:
        """A copy with some sampler settings changed (e.g. fewer draws in a quick run)."""
        return replace(self, model=self.model.with_sampler(**changes))

    def to_dict(self) -> dict:
        return {**self.model.to_dict(), "mediator_priors": self.mediator_priors,
                "mediation_priors": self.path_priors}


def load_mediation_spec(name_or_path: str | Path = "mediation") -> MediationSpec:
    """Load ``models/<name>.toml`` (or a path).

    The standard tables go through :func:`bayes_pool.specs.spec_from_dict` (``[priors]`` are
    the outcome model's); ``[mediator_priors]`` takes the same roles for the mediator model
    and ``[mediation_priors]`` the keys of :data:`DEFAULT_PATH_PRIORS`. Unknown keys raise
    :class:`~bayes_pool.errors.SpecError`.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = MODELS_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise SpecError(f"mediation spec {str(name_or_path)!r} not found (looked for {path})")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from exc
    extra = {name: dict(raw.pop(name, {})) for name in EXTRA_TABLES}
    for name, defaults in EXTRA_TABLES.items():
        bad = set(extra[name]) - set(defaults)
        if bad:
            raise SpecError(f"{path}: unknown key(s) {sorted(bad)} in [{name}]; valid: "
                            f"{list(defaults)}")
        for key, prior in extra[name].items():
            _check_prior(prior, f"{path}: [{name}] {key}")
    for key, prior in raw.get("priors", {}).items():
        _check_prior(prior, f"{path}: [priors] {key}")
    return MediationSpec(model=spec_from_dict(raw, path=str(path)),
                         mediator_priors=extra["mediator_priors"],
                         path_priors=extra["mediation_priors"])


def _check_prior(prior, where: str) -> None:
    if prior == "default":
        return
    if not (isinstance(prior, dict) and "dist" in prior and hasattr(pm, str(prior["dist"]))):
        raise SpecError(f"{where}: a prior must be \"default\" or a table naming a PyMC "
                        f"distribution, e.g. {{ dist = \"Normal\", mu = 0, sigma = 1 }}; "
                        f"got {prior!r}")


def _resolve(priors: dict, defaults: dict, role: str) -> dict:
    prior = priors.get(role, "default")
    return defaults[role] if prior == "default" else prior


def _rv(name: str, prior: dict, **kwargs):
    params = {k: v for k, v in prior.items() if k != "dist"}
    return getattr(pm, prior["dist"])(name, **params, **kwargs)


# ------------------------------------------------------------------------------ model ---

@dataclass(frozen=True)
class MediationData:
    """Arrays the model is built on, with the scales to map results back to data units.

    ``means`` holds, per equation (``"med"``, ``"out"``), the standardised unit means of the
    correlated random effects (n, k), absent under exchangeable intercepts or without a unit;
    ``unit_means`` their :class:`~bayes_pool.mundlak.UnitMeans` records (for the manifest)."""

    t: np.ndarray
    x: np.ndarray  # standardised covariates (n, p)
    m: np.ndarray  # standardised observed mediator
    y: np.ndarray  # outcome (standardised if gaussian)
    items: np.ndarray | None  # items z-scored on the untreated rows (n, j)
    unit_idx: np.ndarray | None
    time_idx: np.ndarray | None
    coords: dict
    m_scale: float
    y_scale: float
    means: dict = field(default_factory=dict)
    unit_means: dict = field(default_factory=dict)
    cell_idx: np.ndarray | None = None  # unit x time cell of each row (unit_time only)


def _standardise(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    sd[sd == 0] = 1.0
    return (a - a.mean(axis=0)) / sd


def _correlated_means(prepared: PreparedMediation) -> tuple[dict, dict]:
    """Unit means of each equation's regressors (treatment first, then the mediator in the
    outcome equation, the covariates and the period dummies), standardised."""
    d = prepared.design
    means, records = {}, {}
    for prefix, regressors in (("med", [d.treatment, *d.covariates]),
                               ("out", [d.treatment, d.mediator, *d.covariates])):
        um: UnitMeans = unit_means(prepared.frame, d.unit, regressors, time=d.time)
        records[prefix] = um
        if um.columns:
            means[prefix] = _standardise(um.frame.to_numpy(float))
    return means, records


def model_data(prepared: PreparedMediation, unit_effects: str = "correlated",
               unit_time: bool = False) -> MediationData:
    """Standardise the prepared frame into :class:`MediationData`; with a unit column and
    ``unit_effects="correlated"`` add the unit means of both equations, with unit and time
    columns and ``unit_time`` the unit x time cells."""
    d = prepared.design
    f = prepared.frame
    t = f[d.treatment].to_numpy(float)
    x = _standardise(f[list(d.covariates)].to_numpy(float).reshape(len(f), -1))
    m = f[d.mediator].to_numpy(float)
    m_scale = float(m.std())
    y = f[d.outcome].to_numpy(float)
    y_scale = 1.0
    if d.family == "gaussian":
        y_scale = float(y.std())
        y = (y - y.mean()) / y_scale
    coords = {"covariate": list(d.covariates), "obs": np.arange(len(f))}
    unit_idx = time_idx = None
    means, records = {}, {}
    if d.unit:
        unit_idx, levels = pd.factorize(f[d.unit], sort=True)
        coords["unit"] = list(levels)
        if unit_effects == "correlated":
            means, records = _correlated_means(prepared)
            for prefix in means:
                coords[f"{prefix}_unit_mean"] = records[prefix].columns
    if d.time:
        time_idx, levels = pd.factorize(f[d.time], sort=True)
        coords["time_effect"] = list(levels[1:])
    cell_idx = None
    if unit_time and d.unit and d.time:
        cell_idx, cells = pd.factorize(f[d.unit] + ":" + f[d.time], sort=True)
        coords["unit_time"] = list(cells)
    items = None
    if d.items:
        raw = f[list(d.items)].to_numpy(float)
        ref = raw[t == 0] if (t == 0).sum() > 1 else raw
        items = (raw - ref.mean(axis=0)) / ref.std(axis=0)
        coords["item"] = list(d.items)
    return MediationData(t=t, x=x, m=(m - m.mean()) / m_scale, y=y, items=items,
                         unit_idx=unit_idx, time_idx=time_idx, coords=coords,
                         m_scale=m_scale, y_scale=y_scale, means=means, unit_means=records,
                         cell_idx=cell_idx)


def _linear(prefix: str, data: MediationData, priors: dict, defaults: dict, *,
            intercept: bool = True):
    """Intercept, treatment, covariates, time effects, pooled unit intercepts and (correlated
    random effects) the unit means."""
    mu = data.t * _rv(f"{prefix}_treatment", _resolve(priors, defaults, "treatment"))
    if intercept:
        mu = mu + _rv(f"{prefix}_intercept", _resolve(priors, defaults, "intercept"))
    if data.x.shape[1]:
        beta = _rv(f"{prefix}_covariates", _resolve(priors, defaults, "covariates"),
                   dims="covariate")
        mu = mu + pm.math.dot(data.x, beta)
    if data.time_idx is not None and len(data.coords["time_effect"]):
        tau = _rv(f"{prefix}_time", _resolve(priors, defaults, "time"), dims="time_effect")
        mu = mu + pm.math.concatenate([[0.0], tau])[data.time_idx]
    if data.unit_idx is not None:
        sd = _rv(f"{prefix}_unit_sd", _resolve(priors, defaults, "unit_sd"))
        z = pm.Normal(f"{prefix}_unit_z", 0.0, 1.0, dims="unit")
        mu = mu + (sd * z)[data.unit_idx]
    if prefix in data.means:
        xi = _rv(f"{prefix}_unit_means", _resolve(priors, defaults, "unit_means"),
                 dims=f"{prefix}_unit_mean")
        mu = mu + pm.math.dot(data.means[prefix], xi)
    if data.cell_idx is not None:
        sd_c = _rv(f"{prefix}_unit_time_sd", _resolve(priors, defaults, "unit_time_sd"))
        z_c = pm.Normal(f"{prefix}_unit_time_z", 0.0, 1.0, dims="unit_time")
        mu = mu + (sd_c * z_c)[data.cell_idx]
    return mu


def build_model(prepared: PreparedMediation, spec: MediationSpec,
                data: MediationData | None = None) -> pm.Model:
    """The joint PyMC model (built, not sampled); measurement model when the design has items."""
    data = data or model_data(prepared, spec.model.unit_effects, spec.model.unit_time)
    latent = data.items is not None
    with pm.Model(coords=data.coords) as model:
        mu_m = _linear("med", data, spec.mediator_priors, DEFAULT_MEDIATOR_PRIORS,
                       intercept=not latent)
        if latent:
            zeta = pm.Normal("latent_z", 0.0, 1.0, dims="obs")
            mediator = mu_m + zeta
            loading = _rv("loading", _resolve(spec.path_priors, DEFAULT_PATH_PRIORS, "loading"),
                          dims="item")
            nu = pm.Normal("item_intercept", 0.0, 1.0, dims="item")
            psi = _rv("item_sigma", _resolve(spec.path_priors, DEFAULT_PATH_PRIORS,
                                             "item_sigma"), dims="item")
            pm.Normal("items", mu=nu + mediator[:, None] * loading, sigma=psi,
                      observed=data.items, dims=("obs", "item"))
        else:
            sigma_m = _rv("med_sigma", _resolve(spec.mediator_priors, DEFAULT_MEDIATOR_PRIORS,
                                                 "sigma"))
            pm.Normal("mediator", mu=mu_m, sigma=sigma_m, observed=data.m, dims="obs")
            mediator = data.m
        eta = _linear("out", data, spec.model.priors, DEFAULT_OUTCOME_PRIORS)
        b = _rv("out_mediator", _resolve(spec.path_priors, DEFAULT_PATH_PRIORS, "mediator"))
        eta = eta + b * mediator
        if prepared.design.family == "bernoulli":
            bernoulli_logit("outcome", eta, observed=data.y, dims="obs")
        else:
            sigma_y = _rv("out_sigma", _resolve(spec.model.priors, DEFAULT_OUTCOME_PRIORS,
                                                "sigma"))
            pm.Normal("outcome", mu=eta, sigma=sigma_y, observed=data.y, dims="obs")
    return model


# --------------------------------------------------------------------- derived draws ---

def _draws(post, name: str) -> np.ndarray:
    """Posterior variable as (S, ...) with chain and draw stacked."""
    v = np.asarray(post[name])
    return v.reshape(-1, *v.shape[2:])


def _predictor(post, prefix: str, data: MediationData, *, intercept: bool = True) -> np.ndarray:
    """(S, n) linear predictor of one model part without its treatment (and mediator) terms."""
    n_draws = _draws(post, f"{prefix}_treatment").shape[0]
    eta = np.zeros((n_draws, len(data.t)))
    if intercept:
        eta += _draws(post, f"{prefix}_intercept")[:, None]
    if data.x.shape[1]:
        eta += _draws(post, f"{prefix}_covariates") @ data.x.T
    if data.time_idx is not None and len(data.coords["time_effect"]):
        tau = np.column_stack([np.zeros(n_draws), _draws(post, f"{prefix}_time")])
        eta += tau[:, data.time_idx]
    if data.unit_idx is not None:
        u = _draws(post, f"{prefix}_unit_sd")[:, None] * _draws(post, f"{prefix}_unit_z")
        eta += u[:, data.unit_idx]
    if prefix in data.means:
        eta += _draws(post, f"{prefix}_unit_means") @ data.means[prefix].T
    if data.cell_idx is not None:
        c = _draws(post, f"{prefix}_unit_time_sd")[:, None] * _draws(post, f"{prefix}_unit_time_z")
        eta += c[:, data.cell_idx]
    return eta


def add_effect_draws(idata, prepared: PreparedMediation, data: MediationData,
                     item_weights=None) -> None:
    r"""Add per-draw ``a``, ``b``, ``d`` (data units), ``indirect_ab`` and the natural effects
    (:data:`~bayes_pool.estimands.mediation.EFFECTS`) to the posterior as (chain, draw) variables.

    In the measurement model ``a`` and ``b`` are per SD of the factor's residual, or, with
    ``item_weights`` (the weights :func:`bayes_pool.freq.indices.pca_index` gives the
    z-scored items), per unit of the index's true score: the index moves by
    :math:`\kappa = \sum_j w_j \lambda_j` per unit of the factor, so ``a`` is multiplied
    and ``b`` divided by :math:`\kappa` in each draw."""
    post = idata["posterior"]
    latent = data.items is not None
    shape = (post.sizes["chain"], post.sizes["draw"])
    a_s = _draws(post, "med_treatment")
    b_s = _draws(post, "out_mediator")
    d_s = _draws(post, "out_treatment")
    sigma = np.ones_like(a_s) if latent else _draws(post, "med_sigma")
    base = _predictor(post, "out", data)
    mu0 = _predictor(post, "med", data, intercept=not latent)
    eff = natural_effects(base, mu0, a_s, b_s, d_s, sigma, family=prepared.design.family)
    m_unit = data.m_scale
    if latent:
        m_unit = 1.0
        if item_weights is not None:
            m_unit = _draws(post, "loading") @ np.asarray(item_weights, dtype=float)
    values = {"a": a_s * m_unit, "b": b_s * data.y_scale / m_unit, "d": d_s * data.y_scale,
              "indirect_ab": a_s * b_s * data.y_scale}
    values.update(_outcome_ames(post, data, base, mu0, b_s, d_s, m_unit,
                                family=prepared.design.family))
    for q in EFFECTS:
        scale = 1.0 if q == "proportion_mediated" else data.y_scale
        values[q] = eff[q] * scale
    coords = {"chain": post["chain"], "draw": post["draw"]}
    new = {k: xr.DataArray(v.reshape(shape), dims=("chain", "draw"), coords=coords)
           for k, v in values.items()}
    idata["posterior"] = idata["posterior"].to_dataset().assign(new)


def _outcome_ames(post, data: MediationData, base, mu0, b_s, d_s, m_unit, *,
                  family: str) -> dict[str, np.ndarray]:
    """Per-draw average marginal effects of the outcome model at the observed rows, as the
    frequentist step reports them (``get_margeff(dummy=True)``): the treatment's discrete
    change and the mediator's derivative per unit of ``m_unit``. The mediator is the observed
    index, or in the measurement model each draw's latent value ``mu0 + a t + latent_z``."""
    if family != "bernoulli":
        return {"ame_treatment": d_s * data.y_scale, "ame_mediator": b_s * data.y_scale / m_unit}
    ame_t, slope = np.empty_like(d_s), np.empty_like(d_s)
    latent = data.items is not None
    zeta = _draws(post, "latent_z") if latent else None
    a_s = _draws(post, "med_treatment")
    chunk = max(1, int(5e6 // len(data.t)))
    for start in range(0, len(d_s), chunk):
        s = slice(start, start + chunk)
        m = (mu0[s] + a_s[s, None] * data.t + zeta[s]) if latent else data.m[None, :]
        eta0 = base[s] + b_s[s, None] * m  # predictor with the treatment term left out
        p1, p0 = expit(eta0 + d_s[s, None]), expit(eta0)
        p = np.where(data.t[None, :] == 1, p1, p0)
        ame_t[s] = (p1 - p0).mean(axis=1)
        slope[s] = (p * (1 - p)).mean(axis=1)
    return {"ame_treatment": ame_t, "ame_mediator": slope * b_s / m_unit}


# ----------------------------------------------------------------------------- result ---

@dataclass
class BayesMediationResult:
    """A sampled joint mediation model with its effect draws."""

    prepared: PreparedMediation
    spec: MediationSpec
    model: pm.Model
    idata: object
    index_units: bool = False
    unit_means: dict = field(default_factory=dict)

    def unit_structure(self) -> dict:
        """What the manifest records: the unit-effects kind and, per equation, the unit
        means kept and dropped."""
        d = self.prepared.design
        return {"unit_effects": self.spec.model.unit_effects if d.unit
                else "none (no unit column)",
                "unit_time": bool(self.spec.model.unit_time and d.unit and d.time),
                **{f"{k}_unit_means": v.to_dict() for k, v in self.unit_means.items()}}

    def _unit_note(self) -> str:
        d = self.prepared.design
        if not d.unit:
            return "no unit effects"
        if self.spec.model.unit_effects == "exchangeable":
            note = (f"exchangeable {d.unit} intercepts (1|{d.unit}), no unit means: "
                    "between-unit level differences leak into the paths where levels track "
                    "treatment")
        else:
            means = sorted({s for um in self.unit_means.values() for s in um.sources.values()})
            note = (f"correlated random effects: {d.unit} intercepts pooled around the "
                    f"{d.unit} means of {', '.join(means)} (within-{d.unit} paths, as the "
                    "fixed-effects steps)")
        if self.spec.model.unit_time and d.time:
            note += f"; (1|{d.unit}:{d.time}) unit x time effect in both equations"
        return note

    @property
    def latent(self) -> bool:
        return bool(self.prepared.design.items)

    @property
    def divergences(self) -> int:
        return divergences(self.idata)

    def tidy(self, *, study: str, tables: tuple[str, str] = ("mediator_model", "outcome_model"),
             column: str | None = None, mediation_column: str | None = None) -> pd.DataFrame:
        """Rows of the estimates table with diagnostics (same cells as the frequentist
        :meth:`~bayes_pool.freq.mediation.FreqMediationResult.tidy`)."""
        d = self.prepared.design
        column = column or d.mediator
        mediation_column = mediation_column or d.mediator
        kw = dict(thresholds=self.spec.convergence, study=study, n_obs=self.prepared.n_obs)
        per = "per unit of the PCA index's true score" if self.index_units else \
            "per SD of its residual"
        units = ("; mediator = latent factor of items " + ", ".join(d.items)
                 + f" (a, b {per})") if self.latent else ""
        note = (f"joint PyMC mediation model; {self._unit_note()}; "
                f"{self.spec.sampler.backend}{units}")
        return pd.concat([
            posterior_rows(self.idata, {"a": (d.treatment, "beta")}, table=tables[0],
                           column=column, note=note, **kw),
            posterior_rows(self.idata, {"d": (d.treatment, "beta"), "b": (d.mediator, "beta"),
                                        "ame_treatment": (d.treatment, "ame"),
                                        "ame_mediator": (d.mediator, "ame")},
                           table=tables[1], column=column, note=note, **kw),
            posterior_rows(self.idata, {"indirect_ab": (d.treatment, "indirect_ab"),
                                        **{q: (d.treatment, q) for q in EFFECTS}},
                           table="mediation", column=mediation_column,
                           note=note + "; natural effects by g-computation per draw "
                                       "(Gauss-Hermite over the mediator residual)", **kw),
        ], ignore_index=True)


def fit_mediation(prepared: PreparedMediation, spec: MediationSpec, *, seed: int,
                  progressbar: bool = False, item_weights=None) -> BayesMediationResult:
    """Sample the joint model with the spec's sampler and add the effect draws
    (``item_weights``: see :func:`add_effect_draws`)."""
    s = spec.sampler
    data = model_data(prepared, spec.model.unit_effects, spec.model.unit_time)
    model = build_model(prepared, spec, data)
    idata = sample_pymc(model, s, seed=seed, progressbar=progressbar,
                        what="the joint mediation model")
    add_effect_draws(idata, prepared, data, item_weights)
    return BayesMediationResult(prepared=prepared, spec=spec, model=model, idata=idata,
                                index_units=item_weights is not None,
                                unit_means=data.unit_means)
