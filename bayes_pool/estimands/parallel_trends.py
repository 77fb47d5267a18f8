r"""How wrong may parallel trends be? The restrictions of Rambachan & Roth (2023) on an
event-study coefficient vector, their frequentist confidence sets and a per-draw Bayesian
adjustment.

The event-study vector is :math:`\beta = (\beta_{pre}, \beta_{post})` (the reference period
omitted, pre periods first, in time order) with :math:`\beta = \tau + \delta`: the effects
:math:`\tau` (zero before treatment) plus the violation of parallel trends :math:`\delta`
(:math:`\delta_0 = 0` at the reference period). The target is
:math:`\theta = l'\tau_{post}` (default: the first post period). Two families of restrictions:

- relative magnitudes :math:`\Delta^{RM}(\bar M)`: every post-period change
  :math:`|\delta_{t+1} - \delta_t|` is at most :math:`\bar M` times the largest pre-period one
  (consecutive changes up to the reference period);
- smoothness :math:`\Delta^{SD}(M)`: every second difference of :math:`\delta` is at most
  :math:`M` in absolute value.

Frequentist sets (as the R package HonestDiD's defaults): the original interval; the FLCI
(optimal fixed-length interval of an affine estimator, Armstrong & Kolesar) for
:math:`\Delta^{SD}`; the conditional least-favourable hybrid (C-LF) set for :math:`\Delta^{RM}`,
inverting :mod:`.conditional_test` over a grid of :math:`\theta` and taking the union over which
pre-period change is the largest and its sign. The folded-normal quantile of the FLCI is exact
here (HonestDiD simulates it with 10^6 draws) and the least-favourable critical value uses
numpy's generator (HonestDiD uses R's), so agreement with HonestDiD is to its printed digits,
not to the last bit (``tests/test_parallel_trends.py`` checks the Benzarti & Carloni example).

Bayesian adjustment (:func:`rm_draws`, :func:`sd_draws`): for each posterior draw of
:math:`\beta` the pre-period coefficients are that draw's violations, which fix the restriction
set; the post-period violation is drawn uniformly over the box of allowed changes, and
:func:`identified_bounds` gives the draw's whole identified set (for the robust-Bayes interval).

References: Rambachan, A. & Roth, J. (2023). A more credible approach to parallel trends.
*Review of Economic Studies* 90(5), 2555-2591. Armstrong, T. & Kolesar, M. (2018). Optimal
inference in a class of regression models. *Econometrica* 86(2), 655-683.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, minimize
from scipy.stats import foldnorm, norm

from ..errors import InputError
from . import conditional_test, r_rng

RESTRICTIONS = ("rm", "sd")


@dataclass(frozen=True)
class EventStudy:
    """An event-study vector split at the reference period, with its covariance and target."""

    beta: np.ndarray
    sigma: np.ndarray
    n_pre: int
    l_vec: np.ndarray

    @classmethod
    def of(cls, beta, sigma, n_pre: int, l_vec=None) -> EventStudy:
        beta = np.asarray(beta, dtype=float).ravel()
        sigma = np.asarray(sigma, dtype=float)
        n = len(beta)
        if sigma.shape != (n, n):
            raise InputError(f"sigma: shape {sigma.shape} does not match the {n} coefficients "
                             "of beta; pass their covariance matrix")
        if not 1 <= n_pre < n:
            raise InputError(f"n_pre: {n_pre} pre-period coefficients of {n}; need at least one "
                             "pre-period and one post-period coefficient")
        n_post = n - n_pre
        l_vec = np.eye(n_post)[0] if l_vec is None else np.asarray(l_vec, dtype=float).ravel()
        if len(l_vec) != n_post or not np.any(l_vec):
            raise InputError(f"l_vec: needs {n_post} weights (one per post period), not all 0")
        return cls(beta, sigma, n_pre, l_vec)

    @property
    def n_post(self) -> int:
        return len(self.beta) - self.n_pre

    @property
    def theta_hat(self) -> float:
        return float(self.l_vec @ self.beta[self.n_pre:])

    @property
    def theta_se(self) -> float:
        post = self.sigma[self.n_pre:, self.n_pre:]
        return float(np.sqrt(self.l_vec @ post @ self.l_vec))


def original_ci(es: EventStudy, alpha: float = 0.05) -> tuple[float, float]:
    """The interval that assumes parallel trends hold exactly."""
    half = norm.ppf(1 - alpha / 2) * es.theta_se
    return es.theta_hat - half, es.theta_hat + half


# -- Delta^RM: relative magnitudes ------------------------------------------------------------

def rm_constraints(n_pre: int, n_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    """Rows ``A`` of ``A delta <= 0`` for Delta^RM(mbar) when the largest pre-period change is
    change ``s`` (``-(n_pre - 1) .. 0``, 0 being the change into the reference period) with the
    given sign; columns are the coefficients without the reference period."""
    n = n_pre + n_post
    changes = np.zeros((n, n + 1))
    changes[np.arange(n), np.arange(n)] = -1.0
    changes[np.arange(n), np.arange(n) + 1] = 1.0
    largest = np.zeros(n + 1)
    largest[n_pre + s - 1:n_pre + s + 1] = (-1.0, 1.0) if positive else (1.0, -1.0)
    scale = np.r_[np.ones(n_pre), np.full(n_post, mbar)][:, None]
    a = np.vstack([changes - scale * largest, -changes - scale * largest])
    a = a[(a ** 2).sum(axis=1) > 1e-10]
    return np.delete(a, n_pre, axis=1)


def _rm_cases(n_pre: int):
    return [(s, positive) for s in range(-(n_pre - 1), 1) for positive in (True, False)]


def _gamma(l_vec: np.ndarray) -> np.ndarray:
    """Invertible matrix whose first row is ``l_vec`` (HonestDiD's choice of the other rows)."""
    last = int(np.flatnonzero(l_vec)[-1])
    rows = [np.eye(len(l_vec))[j] for j in range(len(l_vec)) if j != last]
    return np.vstack([l_vec, *rows])


def rm_identified_set(es: EventStudy, mbar: float) -> tuple[float, float]:
    """Identified set of theta under Delta^RM(mbar) if ``es.beta`` were the population vector."""
    lo, hi = np.inf, -np.inf
    objective = np.r_[np.zeros(es.n_pre), es.l_vec]
    for s, positive in _rm_cases(es.n_pre):
        a = rm_constraints(es.n_pre, es.n_post, mbar, s, positive)
        eq = np.eye(es.n_pre, len(es.beta))
        ends = [linprog(sign * objective, A_ub=a, b_ub=np.zeros(len(a)), A_eq=eq,
                        b_eq=es.beta[:es.n_pre], bounds=(None, None), method="highs")
                for sign in (1.0, -1.0)]
        if all(r.status == 0 for r in ends):
            lo = min(lo, es.theta_hat + ends[1].fun)
            hi = max(hi, es.theta_hat - ends[0].fun)
    return lo, hi


def rm_confidence_set(es: EventStudy, mbar: float, *, alpha: float = 0.05,
                      grid_points: int = 1000, grid: tuple[float, float] | None = None,
                      sims: int = 1000, seed: int = 0) -> tuple[float, float]:
    """C-LF confidence set for theta under Delta^RM(mbar) (kappa = alpha / 10), as the lowest
    and highest accepted points of a grid (default, as HonestDiD: ``grid_points`` points on
    +-20 standard errors of theta around 0). Only the moments on post-period changes enter the
    test (HonestDiD's ``postPeriodMomentsOnly``). NaN when no grid point is accepted; an end
    at the edge of the grid is -inf/inf (the set is open there, as HonestDiD warns: widen
    ``grid``)."""
    if mbar < 0:
        raise InputError(f"mbar: {mbar} must be >= 0")
    kappa = alpha / 10
    lo, hi = grid if grid is not None else (-20 * es.theta_se, 20 * es.theta_se)
    thetas = np.linspace(lo, hi, grid_points)
    inv_gamma = np.linalg.inv(_gamma(es.l_vec))
    extremes = None
    for s, positive in _rm_cases(es.n_pre):
        a = rm_constraints(es.n_pre, es.n_post, mbar, s, positive)
        a = a[np.any(a[:, es.n_pre:] != 0, axis=1)]
        a_theta = a[:, es.n_pre:] @ inv_gamma
        x = a_theta[:, 1:]
        sigma_y = a @ es.sigma @ a.T
        lf_cv = conditional_test.least_favorable_cv(x, sigma_y, kappa, sims=sims, seed=seed)
        y_at = (a @ es.beta)[None, :] - thetas[:, None] * a_theta[:, 0][None, :]
        extremes = conditional_test.accepted_extremes(y_at, x, sigma_y, alpha=alpha,
                                                      lf_cv=lf_cv, kappa=kappa, known=extremes)
    if extremes is None:
        return np.nan, np.nan
    lo_i, hi_i = extremes
    return (-np.inf if lo_i == 0 else float(thetas[lo_i]),
            np.inf if hi_i == grid_points - 1 else float(thetas[hi_i]))


# -- Delta^SD: smoothness, fixed-length confidence interval -----------------------------------

def _flci_parts(es: EventStudy):
    """Pieces of the FLCI programme in the slope weights ``w`` of the pre periods: the
    estimator is ``l_pre(w)' beta_pre + l' beta_post`` with ``l_pre = diff(w)``, unbiased for a
    linear trend when ``sum(w) = sum(t l_t)``; its worst-case bias is
    ``M (const + sum_k |cumsum(w)_k|)``."""
    k, tbar, l = es.n_pre, es.n_post, es.l_vec
    t = np.arange(1, tbar + 1)
    target = float(t @ l)
    const = sum(abs(np.arange(1, s + 1) @ l[tbar - s:]) for s in range(1, tbar + 1)) - target
    to_l = np.eye(k) - np.eye(k, k=-1)
    pre, cross = es.sigma[:k, :k], es.sigma[:k, k:] @ l
    post = float(l @ es.sigma[k:, k:] @ l)

    def variance(w):
        lp = to_l @ w
        return float(lp @ pre @ lp + 2 * lp @ cross + post)

    return target, const, variance, to_l


def _min_bias(es: EventStudy, h: float, start: np.ndarray) -> tuple[float, np.ndarray]:
    """Smallest worst-case bias (per unit of M) of an estimator with standard deviation <= h."""
    k = es.n_pre
    target, const, variance, _ = _flci_parts(es)
    tri = np.tril(np.ones((k, k)))

    def objective(z):
        return const + z[:k].sum()

    cons = [{"type": "ineq", "fun": lambda z: z[:k] - tri @ z[k:]},
            {"type": "ineq", "fun": lambda z: z[:k] + tri @ z[k:]},
            {"type": "eq", "fun": lambda z: z[k:].sum() - target},
            {"type": "ineq", "fun": lambda z: 1.0 - variance(z[k:]) / h ** 2}]
    z0 = np.r_[np.abs(tri @ start) + 1e-9, start]
    res = minimize(objective, z0, constraints=cons, method="SLSQP",
                   options={"maxiter": 500, "ftol": 1e-12})
    return float(res.fun), res.x[k:]


def _derivative_bisection(f, a: float, b: float, num_points: int = 100) -> float:
    """HonestDiD's ``.findOptimalCIDerivativeBisection``: the h in [a, b] where the numerical
    derivative of the half-length changes sign (NaN when the derivative is not increasing)."""
    dif = min((b - a) / num_points, abs(b) * np.finfo(float).eps ** (1 / 3))
    fa, fb = f(a), f(b)
    fpa, fpb = (f(a + dif) - fa) / dif, (f(b - dif) - fb) / -dif
    if fpa > fpb or np.isnan(fa) or np.isnan(fb):
        return np.nan
    if fpb < 0:
        return b
    if fpa > 0:
        return a
    tol, it = np.sqrt(np.finfo(float).eps), 1
    max_iter = 10 * int(np.ceil(np.log(abs(b - a) / dif) / np.log(2)))
    while abs(b - a) > dif:
        it += 1
        x = (a + b) / 2
        fpx = (f(x + dif) - f(x - dif)) / (2 * dif)
        if fpx > fpb + tol or fpx + tol < fpa or it > max_iter:
            return np.nan
        a, b = (a, x) if fpx > 0 else (x, b)
    return (a + b) / 2


def flci(es: EventStudy, m: float, alpha: float = 0.05, *, exact_quantile: bool = False
         ) -> tuple[float, float, float]:
    """FLCI for theta under Delta^SD(m): ``(lower, upper, half_length)``. The half-length is
    minimised over the estimator's standard deviation h as HonestDiD does (derivative bisection,
    else a grid of 100 values of h), with its simulated folded-normal quantile
    (``exact_quantile=True``: scipy's exact one)."""
    if m < 0:
        raise InputError(f"m: {m} must be >= 0")
    k = es.n_pre
    target, _, variance, to_l = _flci_parts(es)
    w_bias0 = np.r_[np.zeros(k - 1), target]  # all weight on the last pre period
    h0 = np.sqrt(variance(w_bias0))
    # smallest variance under sum(w) = target: a quadratic programme with one equality
    res = minimize(lambda w: variance(w), w_bias0, method="SLSQP",
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - target}],
                   options={"ftol": 1e-16, "maxiter": 1000})
    h_min, w_min = np.sqrt(res.fun), res.x
    quantile = ((lambda mu: foldnorm.ppf(1 - alpha, mu)) if exact_quantile else
                (lambda mu: r_rng.quantile_folded_normal(1 - alpha, mu)))
    cache: dict[float, tuple[float, np.ndarray]] = {}

    def half_length(h):
        if h not in cache:
            bias, w = _min_bias(es, h, w_min if h < 0.5 * (h_min + h0) else w_bias0)
            cache[h] = (quantile(m * bias / h) * h, w)
        return cache[h][0]

    h_star = h0 if h0 - h_min < 1e-12 * h0 else _derivative_bisection(half_length, h_min, h0)
    if np.isnan(h_star):
        grid = np.linspace(h_min, h0, 100)
        h_star = grid[int(np.argmin([half_length(h) for h in grid]))]
    half, w = half_length(h_star), cache[h_star][1]
    center = float((to_l @ w) @ es.beta[:k] + es.theta_hat)
    return center - half, center + half, float(half)


# -- Bayesian: per-draw identified sets and a uniform prior on the post-period violation ----

def _tail_sums(l_vec: np.ndarray, restriction: str) -> np.ndarray:
    """Weight of each post-period change (RM) or second difference (SD) in ``l' delta_post``."""
    tbar = len(l_vec)
    if restriction == "rm":
        return np.array([l_vec[u:].sum() for u in range(tbar)])
    return np.array([sum((t - u + 1) * l_vec[t] for t in range(u, tbar)) for u in range(tbar)])


def _check_draws(draws, n_pre: int, l_vec) -> tuple[np.ndarray, np.ndarray]:
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or not 1 <= n_pre < draws.shape[1]:
        raise InputError(f"draws: need a (draws x coefficients) array with the {n_pre} "
                         "pre-period coefficients first and at least one post period; got "
                         f"shape {draws.shape}")
    n_post = draws.shape[1] - n_pre
    l_vec = np.eye(n_post)[0] if l_vec is None else np.asarray(l_vec, dtype=float).ravel()
    if len(l_vec) != n_post:
        raise InputError(f"l_vec: needs {n_post} weights (one per post period)")
    return draws, l_vec


def draw_scale(draws, n_pre: int, restriction: str) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: the size of one allowed post-period step per unit of M (RM: the largest
    pre-period change ``max |delta_{s+1} - delta_s|``; SD: 1) and the centre of the identified
    set's violation (RM: 0; SD: the linear extrapolation of the last pre-period slope)."""
    if restriction not in RESTRICTIONS:
        raise InputError(f"restriction: {restriction!r} is not one of {RESTRICTIONS}")
    pre = np.column_stack([draws[:, :n_pre], np.zeros(len(draws))])  # delta_0 = 0
    if restriction == "rm":
        return np.abs(np.diff(pre, axis=1)).max(axis=1), np.zeros(len(draws))
    return np.ones(len(draws)), pre[:, -1] - pre[:, -2]  # slope into the reference period


def identified_bounds(draws, n_pre: int, m: float, restriction: str = "rm", l_vec=None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Per draw, the identified set ``[lower, upper]`` of theta under Delta^RM(m) or
    Delta^SD(m) (closed form: the box of allowed post-period steps). Under SD the draw's own
    pre-period second differences are not checked against m (a draw that breaks them would
    have an empty set); the bounds are those of the post-period restriction alone."""
    draws, l_vec = _check_draws(draws, n_pre, l_vec)
    step, slope = draw_scale(draws, n_pre, restriction)
    theta = draws[:, n_pre:] @ l_vec
    t = np.arange(1, len(l_vec) + 1)
    center = theta - slope * float(t @ l_vec)
    half = m * step * np.abs(_tail_sums(l_vec, restriction)).sum()
    return center - half, center + half


def adjusted_draws(draws, n_pre: int, m: float, restriction: str = "rm", l_vec=None, *,
                   uniforms: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Draws of theta adjusted for a violation with a uniform prior on each allowed post-period
    step (RM: ``|delta_{t+1} - delta_t| <= m * max pre-period change``; SD: second differences
    in ``[-m, m]`` around the linear extrapolation). Pass the same ``uniforms`` (draws x post
    periods, on [-1, 1]) for every ``m`` to get curves without Monte Carlo jitter."""
    draws, l_vec = _check_draws(draws, n_pre, l_vec)
    step, slope = draw_scale(draws, n_pre, restriction)
    if uniforms is None:
        uniforms = np.random.default_rng(seed).uniform(-1, 1, size=(len(draws), len(l_vec)))
    t = np.arange(1, len(l_vec) + 1)
    violation = slope * float(t @ l_vec) + m * step * (uniforms @ _tail_sums(l_vec, restriction))
    return draws[:, n_pre:] @ l_vec - violation
