r"""Rosenbaum bounds for matched pairs: Wilcoxon's signed-rank test and the Hodges-Lehmann estimate.

For treated-minus-control differences ``d`` (one per treated unit; with k-NN matching the treated
outcome minus the mean of its matched controls, as ``psmatch2`` + ``rbounds`` use them) and a
bias of at most ``Gamma`` in the odds of treatment within a pair (Rosenbaum 2002, ch. 4), the
signed-rank statistic ``T`` (sum of the ranks of ``|d|`` over the positive ``d``) is bounded by
sums of independent ``rank_i * Bernoulli(p)`` with ``p+ = Gamma/(1+Gamma)`` (upper bound on the
P-value) and ``p- = 1/(1+Gamma)`` (lower bound). With the bounding normal approximation,

    z = (T - p * sum r_i) / sqrt(p (1 - p) sum r_i^2),    P-value bound = 1 - Phi(z),

which handles tied ``|d|`` by average ranks (the ``sum r_i^2`` variance is then exact). Zero
differences: ``zeros="drop"`` removes them before ranking, as R's ``rbounds::psens`` does;
``zeros="rank"`` ranks them with the rest and gives them rank 0 in ``T``, as Rosenbaum (2002)
and his ``DOS2::senWilcox`` do. Without zero differences the two agree.

The Hodges-Lehmann estimate of an additive effect ``tau`` solves ``T(d - tau) = E(T)``; under
bias ``Gamma`` its smallest value uses ``p+`` on ``d - tau`` and its largest ``p+`` on
``tau - d`` (Rosenbaum 2002, sec. 4.3.5). Where the step function ``T(d - tau)`` sits exactly on
its expectation over an interval, the estimate is that interval's midpoint (Rosenbaum's
``[sup{tau: T > E} + inf{tau: T < E}] / 2``). The confidence limits are found the same way with
the critical deviate in place of the expectation; every limit is a Walsh average
``(d_i + d_j) / 2``, found by bisection and snapped to the nearest Walsh average, so large
matched samples need no ``n^2`` table. :func:`exact_upper_p_value` gives the exact bound for
small samples without ties (Rosenbaum 2010, sec. 3.9).

References
----------
Rosenbaum, P. R. (2002). *Observational Studies*, 2nd ed., ch. 4. Springer.
Rosenbaum, P. R. (2010). *Design of Observational Studies*, ch. 3. Springer.
Keele, L. (2010). rbounds: Perform Rosenbaum bounds sensitivity tests for matched data
(R package; ``psens``, ``hlsens``).
DiPrete, T. A. & Gangl, M. (2004). Assessing bias in the estimation of causal effects:
Rosenbaum bounds on matching estimators. *Sociological Methodology* 34, 271-310 (Stata
``rbounds``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import optimize, stats

from ..errors import InputError
from .matching import Matching

Zeros = Literal["drop", "rank"]
BISECTION_STEPS = 200


def signed_rank_deviate(d: np.ndarray, gamma: float, *, zeros: Zeros = "drop",
                        sign: float = 1.0) -> float:
    """Standardised deviate of the signed-rank statistic from its bounding mean under ``Gamma``.

    ``sign=1`` uses ``p+ = Gamma/(1+Gamma)`` (the upper bound on the P-value); ``sign=-1`` uses
    ``p- = 1/(1+Gamma)`` (the lower bound). ``nan`` if every difference is zero.
    """
    x = np.asarray(d, dtype=float)
    a = np.abs(x)
    if zeros == "drop":
        keep = a > 0
        x, a = x[keep], a[keep]
        ranks = stats.rankdata(a)
    else:
        ranks = stats.rankdata(a) * (a > 0)
    ss = float(np.sum(ranks ** 2))
    if ss == 0.0:
        return np.nan
    p = gamma / (1.0 + gamma) if sign > 0 else 1.0 / (1.0 + gamma)
    t = float(ranks[x > 0].sum())
    return (t - p * ranks.sum()) / np.sqrt(p * (1.0 - p) * ss)


def p_value_bounds(d: np.ndarray, gamma: float, *, zeros: Zeros = "drop") -> tuple[float, float]:
    """(lower, upper) bound on the one-sided P-value of no effect against a positive effect."""
    lower = stats.norm.sf(signed_rank_deviate(d, gamma, zeros=zeros, sign=-1.0))
    upper = stats.norm.sf(signed_rank_deviate(d, gamma, zeros=zeros, sign=1.0))
    return float(lower), float(upper)


def exact_upper_p_value(differences, gamma: float) -> float:
    """Exact upper bound on the one-sided P-value, for small samples without ties or zeros.

    The bounding statistic is ``sum_i i B_i`` over ranks ``i = 1..n`` with independent
    ``B_i ~ Bernoulli(Gamma/(1+Gamma))``; its distribution is built by convolution, one rank at
    a time (Pagano & Tritchler 1983; Rosenbaum 2010, *Design of Observational Studies*, sec.
    3.9), in ``O(n^3)`` steps -- meant for the few dozen pairs where the normal approximation
    is in doubt.
    """
    d = _checked(differences)
    a = np.abs(d)
    if np.any(a == 0) or np.unique(a).size < a.size:
        raise InputError("differences: the exact bound needs no zero and no tied |difference|; "
                         "use the normal approximation (rosenbaum_table) instead")
    ranks = stats.rankdata(a).astype(int)
    p = gamma / (1.0 + gamma)
    top = int(ranks.sum())
    dist = np.zeros(top + 1)
    dist[0] = 1.0
    for r in ranks:
        dist[r:] = dist[r:] * (1.0 - p) + dist[:top + 1 - r] * p
        dist[:r] *= 1.0 - p
    return float(dist[int(ranks[d > 0].sum()):].sum())


def _nearest_walsh(d_sorted: np.ndarray, x: float) -> float:
    """The Walsh average ``(d_i + d_j) / 2`` (``i <= j``) nearest to ``x``."""
    targets = 2.0 * x - d_sorted
    pos = np.clip(np.searchsorted(d_sorted, targets), 1, len(d_sorted) - 1)
    partners = np.where(np.abs(d_sorted[pos - 1] - targets) <= np.abs(d_sorted[pos] - targets),
                        d_sorted[pos - 1], d_sorted[pos])
    walsh = (d_sorted + partners) / 2.0
    return float(walsh[np.argmin(np.abs(walsh - x))])


def _boundary(d: np.ndarray, gamma: float, level: float, zeros: Zeros, strict_above: bool
              ) -> float:
    """``sup{tau: dev(tau) > level}`` (``strict_above``) or ``inf{tau: dev(tau) < level}``.

    ``dev(tau)``, the upper-bound deviate of ``d - tau``, does not increase with ``tau``.
    """
    def inside(tau: float) -> bool:
        dev = signed_rank_deviate(d - tau, gamma, zeros=zeros)
        return dev > level if strict_above else not dev < level

    span = float(np.ptp(d)) + 1.0
    lo, hi = float(d.min()) - span, float(d.max()) + span
    if not inside(lo):
        return -np.inf
    if inside(hi):
        return np.inf
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2.0
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if inside(mid) else (lo, mid)
    return _nearest_walsh(np.sort(d), (lo + hi) / 2.0)


def lower_limit(d: np.ndarray, gamma: float, level: float, *, zeros: Zeros = "drop") -> float:
    """Smallest ``tau`` the bounding test does not reject at deviate ``level`` (``0``: the HL
    estimate's lower bound), as the midpoint of ``sup{dev > level}`` and ``inf{dev < level}``."""
    above = _boundary(d, gamma, level, zeros, strict_above=True)
    below = _boundary(d, gamma, level, zeros, strict_above=False)
    return (above + below) / 2.0 if np.isfinite(above) and np.isfinite(below) else above


def rosenbaum_table(differences, gammas=(1.0, 1.5, 2.0, 2.5, 3.0), *, alpha: float = 0.05,
                    zeros: Zeros = "drop") -> dict[str, np.ndarray]:
    """For each ``Gamma``: P-value bounds, Hodges-Lehmann bounds and the ``1 - alpha`` CI bounds.

    Columns as Stata's ``rbounds`` prints them: ``p_upper`` (sig+), ``p_lower`` (sig-),
    ``hl_low`` / ``hl_high`` (t-hat- / t-hat+), ``ci_low`` / ``ci_high`` (CI- / CI+; two-sided,
    each end at ``z_{1 - alpha/2}``). The test is of no effect against a positive effect; for a
    negative effect pass the negated differences.
    """
    d = _checked(differences, zeros)
    crit = float(stats.norm.ppf(1.0 - alpha / 2.0))
    rows = []
    for g in _checked_gammas(gammas):
        p_low, p_up = p_value_bounds(d, g, zeros=zeros)
        rows.append((g, p_up, p_low,
                     lower_limit(d, g, 0.0, zeros=zeros), -lower_limit(-d, g, 0.0, zeros=zeros),
                     lower_limit(d, g, crit, zeros=zeros), -lower_limit(-d, g, crit, zeros=zeros)))
    names = ("gamma", "p_upper", "p_lower", "hl_low", "hl_high", "ci_low", "ci_high")
    return {name: np.array(col, dtype=float) for name, col in zip(names, zip(*rows))}


def breakdown_gamma(differences, *, alpha: float = 0.05, zeros: Zeros = "drop",
                    gamma_max: float = 1e4) -> float:
    """Smallest ``Gamma`` at which the upper P-value bound reaches ``alpha`` (the 5% conclusion
    changes); ``1.0`` if the test does not reject even without bias, ``inf`` beyond
    ``gamma_max``."""
    d = _checked(differences, zeros)

    def excess(g: float) -> float:
        return p_value_bounds(d, g, zeros=zeros)[1] - alpha

    if excess(1.0) >= 0:
        return 1.0
    if excess(gamma_max) < 0:
        return np.inf
    return float(optimize.brentq(excess, 1.0, gamma_max, xtol=1e-10, rtol=1e-12))


def matched_differences(y_treated, y_controls) -> np.ndarray:
    """Treated outcome minus the mean outcome of its matched controls, one per treated unit.

    ``y_controls`` is an ``(n_treated, k)`` array (k-NN, NaN where fewer than ``k`` matched) or
    a sequence of per-treated arrays.
    """
    yt = np.asarray(y_treated, dtype=float)
    if isinstance(y_controls, np.ndarray) and y_controls.ndim == 2:
        means = np.nanmean(y_controls, axis=1)
    else:
        means = np.array([np.mean(np.asarray(c, dtype=float)) for c in y_controls])
    if means.shape != yt.shape:
        raise InputError(f"y_controls: {len(means)} groups of matched controls for {len(yt)} "
                         "treated units; give one group per treated unit")
    return yt - means


def differences_from_matching(m: Matching, y) -> np.ndarray:
    """Treated-minus-matched differences of a :class:`~.matching.Matching` on outcome ``y``
    (the treated on support only): for k-NN the mean of the ``k`` matched controls, for radius
    and kernel matching their weighted mean -- the counterfactual of the matching ATT."""
    y = np.asarray(y, dtype=float)
    diffs = y[m.treated] - m.counterfactual(y)
    return diffs[m.on_support]


def _checked(differences, zeros: str = "drop") -> np.ndarray:
    if zeros not in ("drop", "rank"):
        raise InputError(f"zeros: {zeros!r} is neither 'drop' (as rbounds) nor 'rank' (as "
                         "Rosenbaum 2002)")
    d = np.asarray(differences, dtype=float).ravel()
    if d.size < 2 or not np.all(np.isfinite(d)):
        raise InputError("differences: need at least two finite treated-minus-control "
                         "differences (drop unmatched treated units first)")
    return d


def _checked_gammas(gammas) -> np.ndarray:
    g = np.atleast_1d(np.asarray(gammas, dtype=float))
    if g.size == 0 or np.any(~np.isfinite(g)) or np.any(g < 1.0):
        raise InputError("gammas: every Gamma must be a finite number >= 1 (1 = no hidden bias)")
    return g
