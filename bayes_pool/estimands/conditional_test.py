r"""Conditional and least-favourable hybrid test of linear moment inequalities with nuisance
parameters (Andrews, Roth & Pakes 2023), the test HonestDiD inverts for relative magnitudes.

The null is that some nuisance vector :math:`\nu` makes every moment non-positive,
:math:`E[Y] - X\nu \le 0`, with :math:`Y \sim N(\mu, \Sigma)`. The statistic is the value of the
linear programme

.. math:: \hat\eta = \min_{\eta, \nu} \eta \quad\text{s.t.}\quad Y - X\nu \le \sigma \eta,

(:math:`\sigma` the moments' standard deviations). The conditional test compares
:math:`\hat\eta` with a normal quantile truncated to the region where the same constraints bind
(the dual vertex of the programme); the hybrid first rejects when :math:`\hat\eta` exceeds the
least-favourable critical value at size :math:`\kappa` and otherwise runs the conditional test
at size :math:`(\alpha - \kappa) / (1 - \kappa)`, truncated above at that value. As the R
package HonestDiD (``.lp_conditional_test_fn``) does, a degenerate vertex (not exactly
``dim(nu) + 1`` binding moments, or binding rows of ``X`` short of full rank) takes its
truncation points from the dual programme by bisection.

Programmes for many right-hand sides (simulation draws, a grid of the parameter) are solved as
one block-diagonal linear programme (HiGHS), which is what makes a grid of 1000 points cheap.

Reference: Andrews, I., Roth, J. & Pakes, A. (2023). Inference for linear conditional moment
inequalities. *Review of Economic Studies* 90(6), 2763-2791.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import linprog
from scipy.stats import truncnorm

from . import r_rng

TOL_LAMBDA = 1e-6  # a dual weight above this marks a binding moment (HonestDiD's tolerance)
TOL_C = 1e-6  # bisection tolerance of the dual truncation points


def eta_programmes(y: np.ndarray, x: np.ndarray, sd: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve :math:`\\min \\eta` s.t. ``y_i - x nu <= sd eta`` for every row ``y_i`` of ``y``
    (n x m) at once. Returns ``eta`` (n), the dual weights ``lam`` (n x m, non-negative, summing
    with ``sd`` to one) and ``ok`` (n; False where the programme failed or is unbounded)."""
    y = np.atleast_2d(y)
    n, m = y.shape
    k = x.shape[1]
    block = -np.column_stack([sd, x])  # rows: -sd eta - x nu <= -y
    a_ub = sparse.kron(sparse.identity(n, format="csr"), sparse.csr_matrix(block), format="csr")
    cost = np.tile(np.r_[1.0, np.zeros(k)], n)
    res = linprog(cost, A_ub=a_ub, b_ub=-y.ravel(), bounds=(None, None), method="highs")
    if res.status != 0:  # one block unbounded or failed: solve the blocks one by one
        out = [eta_programmes(row[None, :], x, sd) for row in y]
        return (np.concatenate([o[0] for o in out]), np.vstack([o[1] for o in out]),
                np.concatenate([o[2] for o in out]))
    sol = res.x.reshape(n, k + 1)
    lam = -np.asarray(res.ineqlin.marginals).reshape(n, m)
    return sol[:, 0], lam, np.ones(n, dtype=bool)


def least_favorable_cv(x: np.ndarray, sigma: np.ndarray, kappa: float, *, sims: int = 1000,
                       seed: int = 0) -> float:
    """The ``1 - kappa`` quantile of :math:`\\hat\\eta` when every moment has mean zero (the
    least-favourable null), from ``sims`` normal draws with covariance ``sigma`` (R's draws after
    ``set.seed(seed)``, as HonestDiD)."""
    draws = r_rng.multivariate_normals(sims, sigma, seed)
    eta, _, ok = eta_programmes(draws, x, np.sqrt(np.diag(sigma)))
    return float(np.quantile(eta[ok], 1.0 - kappa))


def _truncated_quantile(p: float, lo: float, hi: float) -> float:
    return float(truncnorm.ppf(p, lo, hi)) if hi > lo else lo


def _dual_solution(c: float, s: np.ndarray, b: np.ndarray, w: np.ndarray):
    """Optimal gamma and value of the dual programme max gamma'(s + b c) over gamma >= 0,
    w'gamma = e1 (None when it fails)."""
    e1 = np.zeros(w.shape[1])
    e1[0] = 1.0
    res = linprog(-(s + b * c), A_eq=w.T, b_eq=e1, bounds=(0, None), method="highs")
    return (res.x, -res.fun) if res.status == 0 else (None, np.nan)


def _dual_truncation(eta: float, gamma: np.ndarray, y: np.ndarray, x: np.ndarray,
                     sd: np.ndarray, sigma: np.ndarray) -> tuple[float, float]:
    """Truncation points (vlo, vup) of eta along the direction of the dual vertex ``gamma``:
    the ends of the interval of c on which the dual optimum at ``s + b c`` equals c. From a far
    point, each step jumps to where the optimal vertex there crosses the line (HonestDiD's
    update, at most 10 steps), then bisects if that has not landed."""
    var = float(gamma @ sigma @ gamma)
    b = sigma @ gamma / var
    s = y - b * float(gamma @ y)
    w = np.column_stack([sd, x])

    def honest(c: float):
        g, value = _dual_solution(c, s, b, w)
        return bool(np.isfinite(value) and abs(c - value) <= TOL_C), g

    if not honest(eta)[0]:
        return eta, np.inf
    spread = 20.0 * np.sqrt(var)
    ends = []
    for far in (max(100.0, eta + spread), min(-100.0, eta - spread)):
        ok, g = honest(far)
        if ok:
            ends.append(np.copysign(np.inf, far - eta))
            continue
        for _ in range(10):
            denom = 1.0 - float(g @ b)
            mid = float(g @ s) / denom if abs(denom) > 1e-300 else np.nan
            if not np.isfinite(mid):
                break
            ok, g_mid = honest(mid)
            if ok:
                break
            g = g_mid
        if not (np.isfinite(mid) and ok):  # bisect between eta (honest) and far (not)
            inside, outside = eta, far
            while abs(outside - inside) > TOL_C:
                mid = 0.5 * (inside + outside)
                inside, outside = (mid, outside) if honest(mid)[0] else (inside, mid)
            mid = inside
        ends.append(mid)
    return ends[1], ends[0]


def conditional_reject(eta: float, lam: np.ndarray, y: np.ndarray, x: np.ndarray,
                       sigma: np.ndarray, alpha: float, lf_cv: float | None = None,
                       kappa: float = 0.0) -> bool:
    """Does the conditional (``lf_cv=None``) or least-favourable hybrid test reject, given the
    solution ``eta``, ``lam`` of :func:`eta_programmes` at moments ``y``?"""
    size = alpha if lf_cv is None else (alpha - kappa) / (1.0 - kappa)
    cap = np.inf if lf_cv is None else lf_cv
    if eta > cap:
        return True
    sd = np.sqrt(np.diag(sigma))
    m, k = x.shape
    binding = lam > TOL_LAMBDA
    x_b = x[binding]
    if k == 0:  # no nuisance: the maximal moment binds alone
        binding = np.zeros(m, dtype=bool)
        binding[int(np.argmax(y / sd))] = True
        x_b = x[binding]
        full_rank = True
    else:
        full_rank = min(x_b.shape) > 0 and np.linalg.matrix_rank(x_b) == min(x_b.shape)
    if k > 0 and (binding.sum() != k + 1 or not full_rank):
        gamma = lam
        var = float(gamma @ sigma @ gamma)
        if abs(var) < np.finfo(float).eps:
            return bool(eta > 0)
        vlo, vup = _dual_truncation(eta, gamma, y, x, sd, sigma)
        sigma_b = np.sqrt(var)
    else:
        w_b_inv = np.linalg.inv(np.column_stack([sd[binding], x_b]))
        select_b = np.eye(m)[binding]
        v = w_b_inv[0] @ select_b
        gamma_b = np.column_stack([sd[~binding], x[~binding]]) @ w_b_inv @ select_b \
            - np.eye(m)[~binding]
        var = float(v @ sigma @ v)
        sigma_b = np.sqrt(var)
        rho = gamma_b @ sigma @ v / var
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = -(gamma_b @ y) / rho + float(v @ y)
        vlo = bound[rho > 0].max() if (rho > 0).any() else -np.inf
        vup = bound[rho < 0].min() if (rho < 0).any() else np.inf
    zlo, zup = vlo / sigma_b, min(vup, cap) / sigma_b
    stat = eta / sigma_b
    if not zlo <= stat <= zup:
        return False
    return bool(stat > max(0.0, _truncated_quantile(1.0 - size, zlo, zup)))


def accepted_extremes(y_at: np.ndarray, x: np.ndarray, sigma: np.ndarray, *, alpha: float,
                      lf_cv: float | None, kappa: float, known: tuple[int, int] | None = None
                      ) -> tuple[int, int] | None:
    """Lowest and highest accepted rows of ``y_at`` (the moments at each point of an increasing
    grid of the parameter of interest), or None if none is accepted; with ``known`` extremes
    (of other cases of a union), only rows beyond them are tested. Rows above ``lf_cv`` are
    rejected, rows with ``eta <= 0`` otherwise accepted without the conditional step (its
    critical value is at least 0); the others are tested from the outside in, up to the first
    accepted."""
    eta, lam, ok = eta_programmes(y_at, x, np.sqrt(np.diag(sigma)))
    cap = np.inf if lf_cv is None else lf_cv
    sure = ~ok | (eta <= min(0.0, cap))  # a negative lf_cv still rejects above it
    candidates = np.flatnonzero(sure | (eta <= cap))
    lo_known, hi_known = known if known is not None else (len(eta), -1)

    def first(order, beyond):
        for i in order:
            if not beyond(i):
                return None
            if sure[i] or not conditional_reject(eta[i], lam[i], y_at[i], x, sigma, alpha,
                                                 lf_cv=lf_cv, kappa=kappa):
                return int(i)
        return None

    lo = first(candidates, lambda i: i < lo_known)
    hi = first(candidates[::-1], lambda i: i > hi_known)
    lo = lo_known if lo is None else lo
    hi = hi_known if hi is None else hi
    return None if hi < 0 else (lo, hi)
