r"""A Bayesian latent-factor index regressed on a treatment and covariates, in one model (PyMC).

The frequentist route builds the index first (factor scores, :mod:`bayes_pool.freq.factor`) and
regresses it afterwards, treating the index as if measured without error. Here the measurement
model and the regression are one model (a confirmatory factor model with covariates, "MIMIC"):

.. math::

    z_{ik} = \nu_k + \lambda_k F_{i, f(k)} + e_{ik}, \qquad e_{ik} \sim N(0, \psi_k^2)

    F_{ij} = x_i^\top B_j + \zeta_{ij}, \qquad \zeta_i \sim N(0, \Phi)

``z`` are the standardised indicators (reverse-keyed ones multiplied by -1, so every indicator
grows with the construct), ``f(k)`` the factor indicator ``k`` is assigned to, ``x`` the
centred treatment and covariates, ``\Phi`` a correlation matrix (LKJ prior): factor variances
are fixed to 1, which identifies the scale, and every loading is positive, which identifies the
sign. (Reverse-keying makes every indicator grow with its construct, so positive loadings are the
substantive assumption; a positive *first* loading alone leaves reflection modes whenever that
indicator loads weakly, and chains get stuck in them.)
The latent factors are integrated out analytically, so the likelihood of a respondent is
:math:`z_i \sim N(\nu + \Lambda B x_i, \Lambda \Phi \Lambda^\top + \Psi)`, evaluated from the
cross-products of the data (sufficient statistics), so sampling time does not grow with n.

The composite index weights the factors by their variance contributions
:math:`v_j = \sum_{k: f(k)=j} \lambda_k^2 / K` and is scaled to SD ``s`` in the sample:

.. math::

    I_i = c \sum_j w_j F_{ij}, \quad w_j = v_j / \textstyle\sum_l v_l, \quad
    c = s / \sqrt{w^\top B^\top S_x B w + w^\top \Phi w}

so the index's coefficient on term ``p`` is :math:`\beta_p = c \sum_j w_j B_{jp}`. ``w``, ``c``
and ``beta`` are computed within each posterior draw, so the index's measurement uncertainty
propagates into ``beta``. A Normal likelihood for binary and 4-point indicators is an
approximation (the frequentist factor analysis makes the same one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.sampling import sample_pymc
from bayes_pool.errors import InputError, SpecError
from bayes_pool.specs import ModelSpec

log = logging.getLogger(__name__)

LOADING_SIGMA: float = 1.0
"""Scale of the HalfNormal prior of the loadings on standardised indicators."""
LKJ_ETA: float = 2.0
"""LKJ shape of the factor correlation matrix (mildly favours weak correlations)."""
_ROLES = ("intercept", "treatment", "covariates", "sigma")


@dataclass(frozen=True)
class LatentDesign:
    """Validated arrays of the latent-factor regression."""

    indicators: list[str]
    factors: list[str]
    factor_of: np.ndarray  # (K,) index into factors
    z: np.ndarray  # (n, K) standardised, reverse-keyed indicators flipped
    terms: list[str]
    x: np.ndarray  # (n, P) centred terms
    n_obs: int

    @property
    def gram(self) -> np.ndarray:
        """``W'W`` of ``W = [z, 1, x]``: all the likelihood needs of the data."""
        w = np.column_stack([self.z, np.ones(self.n_obs), self.x])
        return w.T @ w



def latent_design(frame: pd.DataFrame, *, indicators: Sequence[str],
                  assignment: Mapping[str, str], treatment: str, covariates: Sequence[str],
                  reverse: Sequence[str] = ()) -> LatentDesign:
    """Complete rows, standardised indicators and centred terms; errors name the columns."""
    indicators, terms = list(indicators), [treatment, *covariates]
    missing = [c for c in [*indicators, *terms] if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {missing} not in the frame; columns: {sorted(frame.columns)}")
    unassigned = [c for c in indicators if c not in assignment]
    if unassigned:
        raise InputError(f"indicator(s) {unassigned} have no factor in the assignment")
    unknown = sorted(set(reverse) - set(indicators))
    if unknown:
        raise InputError(f"reverse-keyed indicator(s) {unknown} are not among the indicators")
    data = frame[[*indicators, *terms]].dropna().astype(float)
    if len(data) <= len(indicators) + len(terms):
        raise InputError(f"only {len(data)} complete rows for {len(indicators)} indicators and "
                         f"{len(terms)} terms")
    sd = data[indicators].std(ddof=1)
    if (sd == 0).any():
        raise InputError(f"indicator(s) {sd.index[sd == 0].tolist()} do not vary")
    z = (data[indicators] - data[indicators].mean()) / sd
    z = z * np.array([-1.0 if c in set(reverse) else 1.0 for c in indicators])
    factors = sorted(set(assignment[c] for c in indicators))
    x = data[terms] - data[terms].mean()
    return LatentDesign(indicators=indicators, factors=factors,
                        factor_of=np.array([factors.index(assignment[c]) for c in indicators]),
                        z=z.to_numpy(), terms=terms, x=x.to_numpy(), n_obs=len(data))


def _dist(name: str, prior: dict, **kw):
    params = {k: v for k, v in prior.items() if k != "dist"}
    return getattr(pm, prior["dist"])(name, **params, **kw)


def build_model(design: LatentDesign, spec: ModelSpec) -> pm.Model:
    """The PyMC model (latent factors integrated out); priors by role from ``spec``."""
    missing = [r for r in _ROLES if not isinstance(spec.priors.get(r), dict)]
    if missing:
        raise SpecError(f"spec {spec.name!r} must give explicit priors for role(s) {missing} "
                        "(a table with 'dist'); they are on the standardised-factor scale")
    K, J, P = len(design.indicators), len(design.factors), len(design.terms)
    coords = {"indicator": design.indicators, "factor": design.factors,
              "factor_bis": design.factors, "term": design.terms}
    with pm.Model(coords=coords) as model:
        nu = _dist("nu", spec.priors["intercept"], dims="indicator")
        psi = _dist("psi", spec.priors["sigma"], dims="indicator")
        lam = pm.HalfNormal("lambda", sigma=LOADING_SIGMA, dims="indicator")
        b_treat = _dist("B_treatment", spec.priors["treatment"], dims="factor")
        b_cov = _dist("B_covariates", spec.priors["covariates"], shape=(J, P - 1))
        B = pm.Deterministic("B", pt.concatenate([b_treat[:, None], b_cov], axis=1),
                             dims=("factor", "term"))
        phi = pm.LKJCorr("Phi", n=J, eta=LKJ_ETA, dims=("factor", "factor_bis"))
        Lam = pt.zeros((K, J))
        Lam = pt.set_subtensor(Lam[np.arange(K), design.factor_of], lam)
        cov = Lam @ phi @ Lam.T + pt.diag(psi ** 2)
        A = pt.concatenate([nu[:, None], Lam @ B], axis=1)  # (K, 1 + P): z_i ~ N(A w_i, cov)
        pm.Potential("z_loglik", _mvnormal_loglik(cov, A, design.gram, design.n_obs, K))
    return model


def _mvnormal_loglik(cov, A, gram: np.ndarray, n: int, K: int):
    """Log-likelihood of ``z_i ~ N(A w_i, cov)``, i = 1..n, from the Gram matrix of ``[z, w]``.

    ``sum_i r_i' cov^-1 r_i = tr(cov^-1 R)`` with ``R = sum_i (z_i - A w_i)(z_i - A w_i)'``
    ``= Szz - A Swz - Szw A' + A Sww A'``: exact, and its cost does not grow with n.
    """
    szz, szw, sww = gram[:K, :K], gram[:K, K:], gram[K:, K:]
    R = szz - A @ szw.T - szw @ A.T + A @ sww @ A.T
    chol = pt.linalg.cholesky(cov)
    solved = pt.linalg.solve_triangular(chol, R, lower=True)
    quad = pt.trace(pt.linalg.solve_triangular(chol, solved.T, lower=True))
    logdet = 2 * pt.sum(pt.log(pt.diag(chol)))
    return -0.5 * (n * K * np.log(2 * np.pi) + n * logdet + quad)


def index_draws(lam: np.ndarray, B: np.ndarray, phi: np.ndarray, x: np.ndarray,
                factor_of: np.ndarray, *, scale_sd: float) -> dict[str, np.ndarray]:
    """Per-draw variance contributions (%), index weights and index coefficients.

    Parameters
    ----------
    lam : (..., K) loadings; B : (..., J, P) factor regressions; phi : (..., J, J) factor
    correlations; x : (n, P) centred terms; factor_of : (K,) factor of each indicator.

    Returns
    -------
    dict with ``variance_pct`` (..., J), ``weights`` (..., J), ``beta`` (..., P), ``scale`` (...).
    """
    K, J = lam.shape[-1], B.shape[-2]
    onehot = np.eye(J)[factor_of]  # (K, J)
    ss = (lam[..., :, None] ** 2 * onehot).sum(axis=-2)  # (..., J)
    variance_pct = 100 * ss / K
    w = ss / ss.sum(axis=-1, keepdims=True)
    slope = np.einsum("...j,...jp->...p", w, B)
    s_x = np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])
    explained = np.einsum("...p,pq,...q->...", slope, s_x, slope)
    residual = np.einsum("...j,...jk,...k->...", w, phi, w)
    scale = scale_sd / np.sqrt(explained + residual)
    return {"variance_pct": variance_pct, "weights": w, "beta": scale[..., None] * slope,
            "scale": scale}


@dataclass
class LatentFactorResult:
    """A sampled latent-factor regression with per-draw index quantities in the posterior."""

    design: LatentDesign
    spec: ModelSpec
    idata: object
    scale_sd: float

    @property
    def divergences(self) -> int:
        return divergences(self.idata)

    def tidy(self, *, study: str, table: str, column: str, share_table: str | None = None,
             share_columns: Mapping[str, str] | None = None) -> pd.DataFrame:
        """Rows ``beta`` of every term on the index scale (table/column given); with
        ``share_table``, also the factors' ``variance_share`` (%) under ``share_columns``."""
        note = (f"PyMC latent-factor regression ({self.spec.name}); index SD {self.scale_sd:g}; "
                "factors integrated out")
        out = [posterior_rows(self.idata, {f"beta_{t}": (t, "beta") for t in self.design.terms},
                              thresholds=self.spec.convergence, study=study, table=table,
                              column=column, n_obs=self.design.n_obs, note=note)]
        if share_table is not None:
            cols = dict(share_columns or {})
            for f in self.design.factors:
                out.append(posterior_rows(
                    self.idata, {f"variance_pct_{f}": (f, "variance_share")},
                    thresholds=self.spec.convergence, study=study, table=share_table,
                    column=cols.get(f, f), n_obs=self.design.n_obs, note=note))
        return pd.concat(out, ignore_index=True)


def fit_latent_factor(frame: pd.DataFrame, *, indicators: Sequence[str],
                      assignment: Mapping[str, str], treatment: str, covariates: Sequence[str],
                      spec: ModelSpec, seed: int, reverse: Sequence[str] = (),
                      scale_sd: float = 1.0, progressbar: bool = False) -> LatentFactorResult:
    """Sample the latent-factor regression and add the per-draw index quantities."""
    design = latent_design(frame, indicators=indicators, assignment=assignment,
                           treatment=treatment, covariates=covariates, reverse=reverse)
    s = spec.sampler
    idata = sample_pymc(build_model(design, spec), s, seed=seed, progressbar=progressbar,
                        what="the latent-factor model")
    post = idata["posterior"].to_dataset()
    dims = ("chain", "draw")
    arr = lambda v, *rest: np.asarray(post[v].transpose(*dims, *rest))  # noqa: E731
    d = index_draws(arr("lambda", "indicator"), arr("B", "factor", "term"),
                    arr("Phi", "factor", "factor_bis"), design.x, design.factor_of,
                    scale_sd=scale_sd)
    coords = {"chain": post["chain"], "draw": post["draw"]}
    new = {"index_scale": xr.DataArray(d["scale"], dims=dims, coords=coords)}
    for p, t in enumerate(design.terms):
        new[f"beta_{t}"] = xr.DataArray(d["beta"][..., p], dims=dims, coords=coords)
    for j, f in enumerate(design.factors):
        new[f"variance_pct_{f}"] = xr.DataArray(d["variance_pct"][..., j], dims=dims,
                                                coords=coords)
        new[f"weight_{f}"] = xr.DataArray(d["weights"][..., j], dims=dims, coords=coords)
    idata["posterior"] = post.assign(new)
    return LatentFactorResult(design=design, spec=spec, idata=idata, scale_sd=scale_sd)
