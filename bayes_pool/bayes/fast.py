r"""Fast approximate posterior of the hierarchical DiD logit, for many refits (placebo draws).

Full NUTS (:func:`bayes_pool.bayes.did.fit_did`) costs minutes per fit; a placebo test needs
hundreds. This module uses the **Laplace approximation with the unit SD fixed**: the model of
:mod:`bayes_pool.bayes.did`,

.. math::

    \operatorname{logit} P(y_{it}=1) = \alpha + \beta D_{it} + X_{it}\gamma + \lambda_t
        + \bar Z_{k(i)} \xi + u_{k(i)} \;[+\, w_{k(i),t}], \qquad u_k \sim N(0, \sigma_u^2),
        \quad w_{kt} \sim N(0, \sigma_w^2)

(the unit means :math:`\bar Z_k` only with correlated unit effects, the spec's default; the
unit x time effect :math:`w` only with ``unit_time = true``),

with the SDs fixed -- :math:`\sigma_u` at its full-posterior mean when a NUTS fit is at hand
(:func:`unit_sd_from_posterior`), otherwise both SDs at the mode of their Laplace-approximated
marginal posterior (:meth:`LaplaceDiD.estimate_unit_sd`, the empirical-Bayes step of INLA, as
``lme4::glmer`` does for its variance components) -- so the posterior of
:math:`\theta = (\alpha, \beta, \gamma, \lambda, u, w)` is close to Gaussian; it is
approximated by :math:`N(\hat\theta, H^{-1})` at the posterior mode, with :math:`H` the
negative Hessian of the log posterior. The priors and design columns are read from the
Bambi model the full fit uses (same terms, same default priors).

The PyMC model, its log density, gradient and Hessian are compiled once; the treatment column
and the other columns are ``pm.Data`` containers, so each refit only sets new data
(:meth:`LaplaceDiD.fit`) -- the treatment and, with correlated unit effects, the treatment's
unit mean recomputed from it -- and runs a trust-region Newton optimisation (scipy) started
from the actual fit's mode.

The AME (average over the rows of the discrete change of the treatment) is summarised by the
delta method at the mode (mean and SD), or by Gaussian draws of :math:`\theta` when
``ame_draws > 0``.

What it ignores: the uncertainty in the SDs and any non-normality of the posterior.
With thousands of rows and a treatment identified by a few units the approximation of
:math:`P(\beta > 0)` is good to a few hundredths (checked against NUTS in the tests:
``tests/test_refits.py`` on a small panel, ``tests/test_placebo.py`` slow tier on the study's).

Cost at n = 6,300 with 73 parameters: compiling ~10 s once, then ~40 ms a refit, so the
Bayesian side of 500 placebo draws takes well under a minute, in-process (the compiled model
is what makes it fast; shipping it to dask workers would cost a compile per worker).

Over 400 lines on purpose: the Laplace model, its refit loop over placebo draws and their
rows share one compiled model, kept together so that it is compiled once.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
from pytensor.gradient import jacobian
from scipy import optimize, stats
from scipy.special import expit

from bayes_pool import checkpoint
from bayes_pool.bayes.did import UnitStructure, build
from bayes_pool.checkpoint import Checkpoint, fingerprint_arrays
from bayes_pool.design import PreparedDiD
from bayes_pool.errors import InputError, SpecError
from bayes_pool.parallel import map_refits
from bayes_pool.specs import ModelSpec

log = logging.getLogger(__name__)

INITIAL_UNIT_TIME_SD = 0.2
"""Start of the unit x time SD's search (a province-year shock of 0.2 on the logit)."""

N_AME_DRAWS = 400
"""Draws from the Gaussian approximation used for the AME's mean and SD."""


def unit_sd_from_posterior(idata, unit: str) -> float:
    """Posterior mean of the unit-intercept SD (Bambi's ``1|<unit>_sigma``) of a full fit."""
    name = f"1|{unit}_sigma"
    post = idata["posterior"]
    if name not in post:
        raise InputError(f"posterior has no variable {name!r}; variables: {sorted(post.data_vars)}")
    return float(np.asarray(post[name]).mean())


@dataclass(frozen=True)
class LaplaceFit:
    """Gaussian approximation to the posterior of the treatment coefficient (and its AME)."""

    beta_mean: float
    beta_sd: float
    prob_positive: float
    ame_mean: float
    ame_sd: float
    converged: bool


@dataclass
class LaplaceDiD:
    """A compiled hierarchical DiD logit whose treatment column can be swapped cheaply.

    Build it with :func:`laplace_model`; call :meth:`fit` once per treatment assignment.
    """

    prepared: PreparedDiD
    unit_sd: float
    model: pm.Model
    design: np.ndarray         # every column of eta except the treatment, in theta's order
    treatment_index: int
    value_grad_precision: object
    start: np.ndarray
    seed: int
    unit_sd_prior: object = None
    """Frozen scipy distribution of the unit SD's prior (for :meth:`estimate_unit_sd`)."""
    structure: UnitStructure | None = None
    """The unit structure of the Bambi model the priors and columns come from."""
    mean_index: int | None = None
    """Column of :attr:`design` holding the treatment's unit mean (correlated unit effects),
    recomputed from every treatment column a refit sets."""
    unit_codes: np.ndarray | None = None
    base_design: np.ndarray | None = None
    """:attr:`design` with the actual treatment (what the checkpoint key covers)."""
    unit_time_sd: float | None = None
    """:math:`\\sigma_w` of the unit x time effect (None: the model has none)."""
    unit_time_sd_prior: object = None

    def set_unit_sd(self, unit_sd: float, unit_time_sd: float | None = None) -> None:
        """Fix :math:`\\sigma_u` (and :math:`\\sigma_w` when the model has the unit x time
        effect; None keeps it) without recompiling: they are data containers."""
        data = {"unit_sd": unit_sd}
        if unit_time_sd is not None:
            if self.unit_time_sd is None:
                raise InputError("this Laplace model has no unit x time effect")
            data["unit_time_sd"] = unit_time_sd
        for name, value in data.items():
            if not value > 0:
                raise InputError(f"{name} must be positive, got {value!r}")
        with self.model:
            pm.set_data({k: np.asarray(float(v)) for k, v in data.items()})
        self.unit_sd = float(unit_sd)
        if unit_time_sd is not None:
            self.unit_time_sd = float(unit_time_sd)

    def sd_note(self) -> str:
        """The fixed SDs, for the rows' notes."""
        text = f"unit-intercept SD fixed at {self.unit_sd:.4g}"
        if self.unit_time_sd is not None:
            text += f", unit x time SD at {self.unit_time_sd:.4g}"
        return text

    def _set_treatment(self, treatment):
        d = self.prepared.design
        D = (self.prepared.frame[d.treatment].to_numpy(dtype=float) if treatment is None
             else np.asarray(treatment, dtype=float))
        if D.shape != (self.prepared.n_obs,):
            raise InputError(f"treatment must have one value per row ({self.prepared.n_obs}), "
                             f"got shape {D.shape}")
        data = {"treatment": D}
        if self.mean_index is not None:
            # the treatment's unit mean is a function of the treatment: a refit with another
            # treatment column without it would keep the actual data's unit means
            codes = self.unit_codes
            design = self.design.copy()
            design[:, self.mean_index] = (np.bincount(codes, weights=D)
                                          / np.bincount(codes))[codes]
            data["design"] = self.design = design
        with self.model:
            pm.set_data(data)

    def fit(self, treatment: np.ndarray | None = None, *, ame_draws: int = 0) -> LaplaceFit:
        """Mode, curvature and derived summaries for one treatment column (default: actual).

        ``ame_draws = 0``: the AME's mean and SD by the delta method at the mode; otherwise from
        that many draws of the Gaussian approximation (seeded by ``seed``).
        """
        self._set_treatment(treatment)
        res = _mode(self.value_grad_precision, self.start)
        _, grad_at_mode, precision = self.value_grad_precision(res.x)
        cov = np.linalg.inv(precision)
        j = self.treatment_index
        b, sd = float(res.x[j]), float(np.sqrt(cov[j, j]))
        rest = [i for i in range(len(res.x)) if i != j]
        if ame_draws:
            rng = np.random.default_rng(self.seed)
            theta = rng.multivariate_normal(res.x, cov, size=ame_draws, method="cholesky")
            eta0 = theta[:, rest] @ self.design.T
            ame = (expit(eta0 + theta[:, [j]]) - expit(eta0)).mean(axis=1)
            ame_mean, ame_sd = float(ame.mean()), float(ame.std(ddof=1))
        else:
            eta0 = self.design @ res.x[rest]
            p1, p0 = expit(eta0 + b), expit(eta0)
            d1, d0 = p1 * (1 - p1), p0 * (1 - p0)
            grad = np.empty(len(res.x))
            grad[rest] = (d1 - d0) @ self.design / len(eta0)
            grad[j] = d1.mean()
            ame_mean, ame_sd = float(np.mean(p1 - p0)), float(np.sqrt(grad @ cov @ grad))
        return LaplaceFit(beta_mean=b, beta_sd=sd, prob_positive=float(stats.norm.cdf(b / sd)),
                          ame_mean=ame_mean, ame_sd=ame_sd,
                          converged=_at_mode(res, grad_at_mode, cov))

    def log_marginal(self, unit_sd: float, unit_time_sd: float | None = None) -> float:
        """Laplace approximation of ``log p(y | SDs) + log p(SDs)`` (actual treatment)."""
        self.set_unit_sd(unit_sd, unit_time_sd)
        self._set_treatment(None)
        res = _mode(self.value_grad_precision, self.start)
        logp, _, precision = self.value_grad_precision(res.x)
        sign, logdet = np.linalg.slogdet(precision)
        if sign <= 0:
            return -np.inf
        prior = sum(float(dist.logpdf(sd)) for dist, sd in (
            (self.unit_sd_prior, unit_sd), (self.unit_time_sd_prior, unit_time_sd))
            if dist is not None and sd is not None)
        return float(logp + 0.5 * len(res.x) * np.log(2 * np.pi) - 0.5 * logdet + prior)

    def estimate_unit_sd(self, bounds: tuple[float, float] = (0.02, 5.0)) -> float:
        """Mode of the Laplace-approximated marginal posterior of :math:`\\log\\sigma_u`
        (and of :math:`\\log\\sigma_w` jointly when the model has the unit x time effect;
        priors and Jacobians included); sets the SDs and returns :math:`\\sigma_u`."""
        lo, hi = np.log(bounds)
        if self.unit_time_sd is None:
            res = optimize.minimize_scalar(
                lambda t: -(self.log_marginal(float(np.exp(t))) + t), bounds=(lo, hi),
                method="bounded", options={"xatol": 1e-3})
            self.set_unit_sd(float(np.exp(res.x)))
        else:
            def neg(t):
                t = np.clip(t, lo, hi)
                return -(self.log_marginal(*map(float, np.exp(t))) + t.sum())
            start = np.log([self.unit_sd, self.unit_time_sd])
            res = optimize.minimize(neg, start, method="Nelder-Mead",
                                    options={"xatol": 1e-3, "fatol": 1e-4})
            self.set_unit_sd(*map(float, np.exp(np.clip(res.x, lo, hi))))
        self.start = _mode(self.value_grad_precision, self.start).x.copy()
        self.start[self.treatment_index] = 0.0
        return self.unit_sd


def laplace_model(prepared: PreparedDiD, spec: ModelSpec, *, unit_sd: float | None = None,
                  seed: int = 0) -> LaplaceDiD:
    """Compile the fixed-:math:`\\sigma_u` hierarchical logit of ``prepared`` for Laplace fits.

    Parameters
    ----------
    prepared
        The estimation sample (family ``bernoulli``).
    spec
        The model spec of the full fit; priors are read from the Bambi model it builds.
    unit_sd
        :math:`\\sigma_u`, e.g. :func:`unit_sd_from_posterior` of a full NUTS fit; ``None``
        estimates it (:meth:`LaplaceDiD.estimate_unit_sd`). With the spec's unit x time effect
        both SDs are always estimated jointly (a given ``unit_sd`` is where the search starts).
    seed
        Seed of the Gaussian draws used for the AME.
    """
    d = prepared.design
    if d.family != "bernoulli":
        raise SpecError(f"laplace_model() approximates the logit; design family is {d.family!r}")
    if unit_sd is not None and not unit_sd > 0:
        raise InputError(f"unit_sd must be positive, got {unit_sd!r}")
    bmodel, structure = build(prepared, spec)
    terms = bmodel.parameters["p"]
    cols, mus, sigmas, names = [], [], [], []
    intercept = terms.intercept_term
    cols.append(np.ones((prepared.n_obs, 1)))
    mus.append(np.atleast_1d(intercept.prior.args["mu"]))
    sigmas.append(np.atleast_1d(intercept.prior.args["sigma"]))
    names.append("Intercept")
    for name, term in terms.common_terms.items():
        x = np.asarray(term.data, dtype=float).reshape(prepared.n_obs, -1)
        prior = term.prior
        if prior.name != "Normal":
            raise SpecError(f"laplace_model() needs Normal priors on common terms; {name!r} has "
                            f"{prior.name}")
        cols.append(x)
        mus.append(np.broadcast_to(np.asarray(prior.args["mu"], float), x.shape[1]))
        sigmas.append(np.broadcast_to(np.asarray(prior.args["sigma"], float), x.shape[1]))
        names.extend([name] * x.shape[1])
    codes, units = pd.factorize(prepared.frame[d.unit], sort=True)
    cols.append(np.eye(len(units))[codes])
    names.extend([f"1|{d.unit}"] * len(units))
    sd_prior = _scipy_prior(terms.group_specific_terms.get(f"1|{d.unit}"))
    n_cells = 0
    if spec.unit_time:
        cells = prepared.frame[d.unit].astype(str) + ":" + prepared.frame[d.time].astype(str)
        cell_codes, cell_levels = pd.factorize(cells, sort=True)
        n_cells = len(cell_levels)
        cols.append(np.eye(n_cells)[cell_codes])
        names.extend([f"1|{d.unit}:{d.time}"] * n_cells)
    A = np.hstack(cols)
    j = names.index(d.treatment)
    design = np.delete(A, j, axis=1)
    mean = structure.mean_of(d.treatment)
    mean_index = None if mean is None else names.index(mean) - (names.index(mean) > j)
    y = prepared.frame[d.outcome].to_numpy(dtype=float)
    initial_sd = float(unit_sd) if unit_sd is not None else 0.5
    with pm.Model() as model:
        D = pm.Data("treatment", A[:, j])
        X = pm.Data("design", design)
        sd_u = pm.Data("unit_sd", np.asarray(initial_sd))
        group_sds = [pm.math.ones(len(units)) * sd_u]
        if n_cells:
            sd_w = pm.Data("unit_time_sd", np.asarray(INITIAL_UNIT_TIME_SD))
            group_sds.append(pm.math.ones(n_cells) * sd_w)
        sigma = pm.math.concatenate([np.concatenate(sigmas), *group_sds])
        theta = pm.Normal("theta", mu=np.concatenate([*mus, np.zeros(len(units) + n_cells)]),
                          sigma=sigma, shape=A.shape[1])
        rest = np.delete(np.arange(A.shape[1]), j)
        eta = pm.math.dot(X, theta[rest]) + D * theta[j]
        pm.Bernoulli(d.outcome, logit_p=eta, observed=y)
    # one compiled function: log posterior, gradient and precision (negative Hessian); the
    # vectorised Jacobian compiles and runs far faster than the scan-based pm.find_hessian
    value = model.rvs_to_values[theta]
    logp = model.logp(jacobian=False)
    grad = pytensor.grad(logp, value)
    precision = -jacobian(grad, value, vectorize=True)
    vgp = pytensor.function([value], [logp, grad, precision])
    res = _mode(vgp, np.zeros(A.shape[1]))
    start = res.x.copy()
    start[j] = 0.0  # every refit starts here, so results do not depend on the order
    fast = LaplaceDiD(prepared=prepared, unit_sd=initial_sd, model=model, design=design,
                      treatment_index=j, value_grad_precision=vgp, start=start, seed=seed,
                      unit_sd_prior=sd_prior, structure=structure, mean_index=mean_index,
                      unit_codes=codes, base_design=design.copy(),
                      unit_time_sd=INITIAL_UNIT_TIME_SD if n_cells else None,
                      unit_time_sd_prior=_scipy_prior(
                          terms.group_specific_terms.get(f"1|{d.unit}:{d.time}"))
                      if n_cells else None)
    if unit_sd is None or n_cells:
        # with the unit x time effect its SD is always estimated (a given unit SD is the start)
        fast.estimate_unit_sd()
    return fast


def _scipy_prior(term):
    """The unit-SD prior of Bambi's group term as a frozen scipy distribution (or None)."""
    if term is None:
        return None
    hyper = term.prior.args.get("sigma")
    name = getattr(hyper, "name", None)
    args = {k: float(np.asarray(v)) for k, v in getattr(hyper, "args", {}).items()}
    if name == "HalfNormal":
        return stats.halfnorm(scale=args["sigma"])
    if name == "HalfCauchy":
        return stats.halfcauchy(scale=args["beta"])
    if name == "Exponential":
        return stats.expon(scale=1 / args["lam"])
    raise SpecError(f"laplace_model(): unit-SD prior {name!r} is not supported "
                    "(HalfNormal, HalfCauchy, Exponential)")


def _mode(vgp, start: np.ndarray):
    """Posterior mode by trust-region Newton on the compiled log posterior."""
    cache = {}

    def parts(x):
        key = x.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = vgp(x)
        return cache[key]

    return optimize.minimize(lambda x: -float(parts(x)[0]), start, jac=lambda x: -parts(x)[1],
                             hess=lambda x: parts(x)[2], method="trust-exact",
                             options={"gtol": 1e-5})


NEWTON_STEP_TOL = 1e-6
"""A mode counts as found when the remaining Newton step is below this in every parameter."""


def _at_mode(res, grad: np.ndarray, cov: np.ndarray) -> bool:
    """Did the mode search converge? scipy's flag, or -- when trust-exact stops because it can
    predict no further improvement (it happens at the mode, with the gradient at ~1e-5 of a
    log density summed over thousands of rows) -- a remaining Newton step ``cov @ grad`` below
    :data:`NEWTON_STEP_TOL`."""
    return bool(res.success or np.max(np.abs(cov @ grad)) < NEWTON_STEP_TOL)


def assignment_treatment(frame: pd.DataFrame, unit: str, time: str, units: list[str],
                         years: list[float]) -> np.ndarray:
    """Treatment ``1[time >= adoption year]`` for the listed units, 0 for every other unit."""
    adopt = dict(zip(units, map(float, years)))
    t = pd.to_numeric(frame[time], errors="coerce").to_numpy(dtype=float)
    a = frame[unit].astype(str).map(adopt).to_numpy(dtype=float)
    return np.where(np.isnan(a), 0.0, (t >= a).astype(float))


def placebo_posteriors(fast: LaplaceDiD, draws: pd.DataFrame, *, progress=None,
                       refits_dir: str | Path | None = None) -> pd.DataFrame:
    """Laplace posterior of the placebo effect for each placebo draw.

    ``draws`` is :attr:`bayes_pool.freq.placebo.PlaceboResult.draws` (columns ``draw``,
    ``treated_units`` and ``adoption_years``, ";"-joined). Returns ``draw``, ``beta_mean``,
    ``beta_sd``, ``prob_positive``, ``ame_mean``, ``ame_sd``, ``converged``. Runs in-process
    (one BLAS thread, so the last bits do not depend on the machine's thread count): the
    compiled model is reused from draw to draw, which is what makes it fast. Every refit starts
    from the same point, so a draw's result does not depend on the others.

    With ``refits_dir`` each finished draw is kept in ``refits_dir/<key>/`` (key: data,
    :math:`\\sigma_u`, seed, the assignments and this module's code) and a restarted loop
    resumes (:mod:`bayes_pool.checkpoint`).
    """
    tasks = [(int(r.draw), r.treated_units, r.adoption_years)
             for r in draws.itertuples(index=False)]
    store = None
    if refits_dir is not None:
        store = Checkpoint(Path(refits_dir) / posterior_checkpoint_key(fast, tasks))
    out = map_refits(_posterior_draw, tasks, shared=fast, workers=1, scheduler=None,
                     progress=progress, checkpoint=store)
    return pd.DataFrame(out, columns=["draw", *LaplaceFit.__dataclass_fields__])


def posterior_checkpoint_key(fast: LaplaceDiD, tasks) -> str:
    """Checkpoint key of :func:`placebo_posteriors`: data, unit SD, seed, assignments, code."""
    p = fast.prepared
    data = fingerprint_arrays(fast.base_design, p.frame[p.design.outcome].to_numpy(dtype=float),
                              fast.start)
    return checkpoint.key(_posterior_draw, data=data, seed=fast.seed, settings=dict(
        unit_sd=repr(fast.unit_sd), unit_time_sd=repr(fast.unit_time_sd),
        tasks=hashlib.sha256(repr(tasks).encode()).hexdigest()))


def _posterior_draw(task, fast: LaplaceDiD) -> dict:
    draw, units, years = task
    d = fast.prepared.design
    D = assignment_treatment(fast.prepared.frame, d.unit, d.time, units.split(";"),
                             years.split(";"))
    return dict(draw=draw, **asdict(fast.fit(D)))


def posterior_rows_placebo(actual: LaplaceFit, post: pd.DataFrame, *, unit_sd: float, term: str,
                           n_obs: int, study: str, table: str = "placebo",
                           column: str = "placebo") -> pd.DataFrame:
    """Bayesian rows of a placebo test: the actual fit's ``prob_positive`` and
    ``ri_prob_positive``, the share of placebo draws whose P(effect > 0) is at or above the
    actual one (the Bayesian reading of Fig. 3; binomial Monte Carlo SE in ``se``).

    Laplace fits have no MCMC diagnostics: ``r_hat``/ESS stay empty, ``divergences`` is 0 and
    ``converged`` says whether every mode search converged.
    """
    from bayes_pool import estimates
    p = post["prob_positive"].to_numpy(dtype=float)
    n = len(p)
    share = float(np.mean(p >= actual.prob_positive)) if n else np.nan
    ok = bool(actual.converged and post["converged"].all())
    note = (f"Laplace approximation of the hierarchical logit, unit-intercept SD fixed at "
            f"{unit_sd:.4g} (marginal posterior mode); not MCMC")
    base = dict(study=study, table=table, column=column, term=term, source="bayesian",
                n_obs=n_obs, divergences=0, converged=ok)
    return estimates.frame([
        estimates.row(**base, quantity="prob_positive", estimate=actual.prob_positive,
                      note=note + f"; actual fit, posterior {term} mean {actual.beta_mean:.4g}"
                                  f" (SD {actual.beta_sd:.4g})"),
        estimates.row(**base, quantity="ri_prob_positive", estimate=share,
                      se=float(np.sqrt(share * (1 - share) / max(n, 1))),
                      note=note + f"; {n} placebo draws, share with P({term} > 0) >= actual"),
    ])


def laplace_rows(fast: LaplaceDiD, fit: LaplaceFit, *, study: str, table: str,
                 column: str) -> pd.DataFrame:
    """Rows of one Laplace fit for the estimates table: the treatment's ``beta`` and ``ame``
    (mean, SD in ``se`` and the 95% interval of the Gaussian approximation).

    The stated approximation for data too large for NUTS (``bayes-pool did --approx laplace``;
    ``benchmarks/scale.py`` checks it against NUTS at n = 30k). No MCMC diagnostics:
    ``r_hat``/ESS stay empty, ``divergences`` is 0 and ``converged`` says whether the mode
    search converged.
    """
    from bayes_pool import estimates
    term = fast.prepared.design.treatment
    note = (f"Laplace approximation of the hierarchical logit at the posterior mode, "
            f"{fast.sd_note()} (marginal posterior mode); not MCMC: no R-hat/ESS")
    base = dict(study=study, table=table, column=column, term=term, source="bayesian",
                n_obs=fast.prepared.n_obs, divergences=0, converged=bool(fit.converged),
                note=note)
    z = stats.norm.ppf(0.975)
    return estimates.frame([
        estimates.row(**base, quantity=q, estimate=m, se=s, ci_low=m - z * s, ci_high=m + z * s)
        for q, m, s in (("beta", fit.beta_mean, fit.beta_sd), ("ame", fit.ame_mean, fit.ame_sd))
    ])
