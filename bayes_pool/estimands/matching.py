r"""Propensity-score matching as Stata's ``psmatch2`` does it, and its variances, over arrays.

Who is matched to whom (:func:`match`: ``knn``, ``radius``, ``kernel`` and ``knn_exact``), the
matching ATT, the Abadie-Imbens (2006) known-score variance (:func:`matching_variance`), its
2016 adjustment for an estimated logit score (:func:`ai2016_variance`) and psmatch2's default
SE (:func:`psmatch2_se`). The score is an input, so the frequentist fit
(:mod:`bayes_pool.freq.psm`, which describes the estimators in full) and the Bayesian two-step
matching (:mod:`bayes_pool.bayes.propensity`, one score per posterior draw) share this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from sklearn.neighbors import NearestNeighbors

Method = Literal["knn", "radius", "kernel", "knn_exact"]
ALL_METHODS: tuple[str, ...] = get_args(Method)
METHODS: tuple[str, ...] = ("knn", "radius", "kernel")
"""The paper's three estimators (psmatch2), always run."""
EXACT_METHOD = "knn_exact"
"""k-NN within the cells of ``MatchSettings.exact``; run only when that names covariates."""

KNN_K = 4
KNN_CALIPER = 0.02
RADIUS_CALIPER = 0.01
KERNEL_BANDWIDTH = 0.06
KERNEL_CALIPER = 0.01
"""The caliper the paper names for kernel matching; psmatch2 ignores it there (not applied)."""
VARIANCE_NEIGHBOURS = 2
"""Controls matched to each control for the Abadie-Imbens conditional variance (Stata's nn(2))."""


@dataclass(frozen=True)
class MatchSettings:
    """Matching settings (defaults: Ma et al. 2023 and psmatch2's kernel bandwidth)."""

    k: int = KNN_K
    knn_caliper: float = KNN_CALIPER
    radius_caliper: float = RADIUS_CALIPER
    kernel_bandwidth: float = KERNEL_BANDWIDTH
    kernel_caliper: float | None = None
    """None: psmatch2's kernel matching, which ignores ``caliper()``; a number trims the
    treated with no control that close (beyond psmatch2)."""
    exact: tuple[str, ...] = ()
    """Covariates ``knn_exact`` matches exactly on (empty: that estimator is not run)."""

    def __post_init__(self):
        object.__setattr__(self, "exact", tuple(self.exact))

    @property
    def methods(self) -> tuple[str, ...]:
        """The estimators these settings run: the paper's three, and ``knn_exact`` if asked."""
        return (*METHODS, EXACT_METHOD) if self.exact else METHODS

    def describe(self, method: str) -> str:
        """One phrase naming the method and its settings, for the ``note`` column."""
        if method == EXACT_METHOD:
            return (f"k-NN matching on the propensity score within the cells of "
                    f"{', '.join(self.exact) or '(none)'} (exact matching on them; k = "
                    f"{self.k}, caliper = {self.knn_caliper}, with replacement, equal scores "
                    "in row order as psmatch2 without ties, inside each cell; Abadie-Imbens "
                    "SE as knn, conditional variance matched within cells)")
        return {
            "knn": f"k-NN matching on the propensity score (k = {self.k}, caliper = "
                   f"{self.knn_caliper}, with replacement, equal scores in row order as "
                   "psmatch2 without ties)",
            "radius": f"radius matching (caliper = {self.radius_caliper}, equal weights)",
            "kernel": f"kernel matching (Epanechnikov, bandwidth = {self.kernel_bandwidth}, "
                      f"{self._kernel_support()})",
        }[method]

    def _kernel_support(self) -> str:
        if self.kernel_caliper is None:
            return ("no caliper, as psmatch2, whose kernel matching ignores caliper(): the "
                    f"paper's caliper {KERNEL_CALIPER} is not applied; off support: no "
                    "control within the bandwidth")
        return (f"common support: a control within caliper {self.kernel_caliper}, a trim "
                "psmatch2's kernel matching does not make")


@dataclass
class Matching:
    """Who is matched to whom: sparse weights ``w[treated_pos, control_pos]``.

    ``treated`` and ``controls`` are row positions in the analysed sample; ``pair_t`` indexes
    into ``treated`` (on support only), ``pair_c`` into ``controls``; weights sum to 1 within
    each on-support treated unit.
    """

    method: str
    treated: np.ndarray
    controls: np.ndarray
    on_support: np.ndarray
    pair_t: np.ndarray
    pair_c: np.ndarray
    weight: np.ndarray

    @property
    def n_off_support(self) -> int:
        return int((~self.on_support).sum())

    @property
    def n_on_support(self) -> int:
        return int(self.on_support.sum())

    def control_weights(self) -> np.ndarray:
        """Total weight of each control, ``K_j = sum_i w_ij`` (psmatch2's ``_weight``)."""
        return np.bincount(self.pair_c, weights=self.weight, minlength=len(self.controls))

    def counterfactual(self, y: np.ndarray) -> np.ndarray:
        """Matched Y(0) of every treated unit (NaN off support)."""
        yc = y[self.controls]
        out = np.bincount(self.pair_t, weights=self.weight * yc[self.pair_c],
                          minlength=len(self.treated))
        out[~self.on_support] = np.nan
        return out

    def att(self, y: np.ndarray) -> float:
        """The matching ATT over the treated on support."""
        if self.n_on_support == 0:
            return np.nan
        diff = y[self.treated] - self.counterfactual(y)
        return float(np.nanmean(diff))


def match(ps: np.ndarray, t: np.ndarray, method: Method, settings: MatchSettings = MatchSettings(),
          cells: np.ndarray | None = None) -> Matching:
    """Match the treated to the controls on the score ``ps`` by ``method``.

    ``cells`` (one integer per unit: :meth:`PreparedPSM.cells` of ``settings.exact``) is
    needed by ``knn_exact`` and ignored by the other methods.
    """
    if method not in ALL_METHODS:
        raise ValueError(f"method must be one of {sorted(ALL_METHODS)}, got {method!r}")
    treated, controls = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    pt, pc = ps[treated][:, None], ps[controls][:, None]
    nn = NearestNeighbors(algorithm="kd_tree").fit(pc)
    if method == "knn":
        pair_t, pair_c = knn_pairs(pt[:, 0], pc[:, 0], settings.k, settings.knn_caliper)
        weight = 1.0 / np.bincount(pair_t, minlength=len(treated))[pair_t]
    elif method == EXACT_METHOD:
        if cells is None:
            raise ValueError("knn_exact needs the exact cells: cells=prepared.cells(exact)")
        pair_t, pair_c = exact_knn_pairs(pt[:, 0], pc[:, 0], cells[treated], cells[controls],
                                         settings.k, settings.knn_caliper)
        weight = 1.0 / np.bincount(pair_t, minlength=len(treated))[pair_t]
    elif method == "radius":
        pair_t, pair_c = _pairs(nn, pt, settings.radius_caliper)
        weight = 1.0 / np.bincount(pair_t, minlength=len(treated))[pair_t]
    else:
        h = settings.kernel_bandwidth
        pair_t, pair_c = _pairs(nn, pt, h)
        kern = 0.75 * (1 - ((pt[pair_t, 0] - pc[pair_c, 0]) / h) ** 2)
        keep = kern > 0
        if settings.kernel_caliper is not None:
            nearest, _ = nn.kneighbors(pt, n_neighbors=1)
            keep &= (nearest[:, 0] <= settings.kernel_caliper)[pair_t]
        pair_t, pair_c, kern = pair_t[keep], pair_c[keep], kern[keep]
        weight = kern / np.bincount(pair_t, weights=kern, minlength=len(treated))[pair_t]
    on_support = np.bincount(pair_t, minlength=len(treated)) > 0
    return Matching(method=method, treated=treated, controls=controls, on_support=on_support,
                    pair_t=pair_t, pair_c=pair_c, weight=weight)


def knn_pairs(ps_treated: np.ndarray, ps_control: np.ndarray, k: int, caliper: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """(treated position, control position) of psmatch2's ``neighbor(k) caliper(c)`` matches.

    The semantics of psmatch2 4.0.12 (Leuven & Sianesi; Mata ``match_pscore``/``match2``):
    controls are sorted on the score and then on their current order; the first neighbour is
    the first control of the nearest score value (the lower value when two are equally far);
    further neighbours are added outward from it, the lower side first on equal distances,
    until k are taken or the next one is at least ``caliper`` away. A treated unit whose
    first neighbour is ``caliper`` or more away gets none (off support). Controls tied with
    the k-th are not added (no ``ties`` option). Vectorised over the treated: k merge steps.
    """
    order = np.argsort(ps_control, kind="stable")  # score, then row order
    sc = ps_control[order]
    n0, p = len(sc), ps_treated
    above = np.searchsorted(sc, p, side="left")  # first control with score >= p
    d_lo = np.where(above > 0, np.abs(p - sc[np.maximum(above - 1, 0)]), np.inf)
    d_hi = np.where(above < n0, np.abs(p - sc[np.minimum(above, n0 - 1)]), np.inf)
    lower = d_lo <= d_hi
    first_of_lower = np.searchsorted(sc, sc[np.maximum(above - 1, 0)], side="left")
    j = np.where(lower, first_of_lower, above)
    active = np.minimum(d_lo, d_hi) < caliper
    pos_t, pos_c = [np.flatnonzero(active)], [j[active]]
    left, right = j - 1, j + 1
    for _ in range(k - 1):
        dl = np.where(left >= 0, np.abs(p - sc[np.clip(left, 0, n0 - 1)]), np.inf)
        dr = np.where(right < n0, np.abs(p - sc[np.clip(right, 0, n0 - 1)]), np.inf)
        take_left = (left >= 0) & (dl <= dr)
        active &= np.where(take_left, dl, dr) < caliper  # also false when both sides ran out
        pos_t.append(np.flatnonzero(active))
        pos_c.append(np.where(take_left, left, right)[active])
        left = np.where(active & take_left, left - 1, left)
        right = np.where(active & ~take_left, right + 1, right)
    pair_t, pair_c = np.concatenate(pos_t), order[np.concatenate(pos_c)]
    by_treated = np.argsort(pair_t, kind="stable")
    return pair_t[by_treated], pair_c[by_treated]


def exact_knn_pairs(ps_treated: np.ndarray, ps_control: np.ndarray, cell_treated: np.ndarray,
                    cell_control: np.ndarray, k: int, caliper: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`knn_pairs` within each cell: (treated position, control position), by treated.

    The controls of a cell keep their data row order, so psmatch2's equal-score and
    equal-distance rules hold unchanged inside it; a treated unit whose cell has no control
    within ``caliper`` gets none (off support).
    """
    pos_t, pos_c = [np.empty(0, dtype=int)], [np.empty(0, dtype=int)]
    for cell in np.unique(cell_treated):
        it = np.flatnonzero(cell_treated == cell)
        ic = np.flatnonzero(cell_control == cell)
        if len(ic):
            pt, pc = knn_pairs(ps_treated[it], ps_control[ic], k, caliper)
            pos_t.append(it[pt])
            pos_c.append(ic[pc])
    pair_t, pair_c = np.concatenate(pos_t), np.concatenate(pos_c)
    by_treated = np.argsort(pair_t, kind="stable")
    return pair_t[by_treated], pair_c[by_treated]


def _pairs(nn: NearestNeighbors, pt: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(treated position, control position) of every pair within ``radius``, sorted by treated."""
    graph = nn.radius_neighbors_graph(pt, radius=radius, mode="connectivity").tocsr()
    counts = np.diff(graph.indptr)
    return np.repeat(np.arange(pt.shape[0]), counts), graph.indices.astype(int)


def control_variance(ps: np.ndarray, y: np.ndarray, controls: np.ndarray,
                     neighbours: int = VARIANCE_NEIGHBOURS, cells: np.ndarray | None = None
                     ) -> np.ndarray:
    r"""Abadie-Imbens conditional variance of Y(0) at each control, by matching within controls.

    .. math:: \hat\sigma^2_j = \frac{J}{J+1}\Big(Y_j - \frac1J \sum_{l \in \mathcal J(j)} Y_l\Big)^2

    With ``cells`` (one per unit, as for ``knn_exact``) a control is matched only within its
    own cell, the metric of exact matching; a control alone in its cell keeps the score-only
    value.
    """
    if cells is not None:
        out = control_variance(ps, y, controls, neighbours)
        in_cell = cells[controls]
        for cell in np.unique(in_cell):
            ic = np.flatnonzero(in_cell == cell)
            if len(ic) > 1:
                out[ic] = control_variance(ps, y, controls[ic], neighbours)
        return out
    J = min(neighbours, len(controls) - 1)
    nn = NearestNeighbors(n_neighbors=J, algorithm="kd_tree").fit(ps[controls][:, None])
    _, ind = nn.kneighbors()  # X=None: each control's neighbours exclude itself
    yc = y[controls]
    return J / (J + 1) * (yc - yc[ind].mean(axis=1)) ** 2


def matching_variance(m: Matching, y: np.ndarray, sigma2_control: np.ndarray) -> float:
    r"""Abadie-Imbens (2006) variance of a matching ATT, for any matching weights.

    .. math::

        \hat V = \frac{1}{N_1^2}\Big[\sum_{i \in T} (Y_i - \hat Y_i(0) - \hat\tau)^2
                 + \sum_{j \in C} (K_j^2 - q_j)\,\hat\sigma^2_j\Big],
        \quad K_j = \sum_i w_{ij},\ q_j = \sum_i w_{ij}^2

    With equal weights 1/M this is AI's :math:`K_M(j)(K_M(j)-1)/M^2` correction for controls
    used more than once. The score is treated as known (no AI 2016 adjustment).
    """
    n1 = m.n_on_support
    if n1 == 0:
        return np.nan
    diff = (y[m.treated] - m.counterfactual(y))[m.on_support]
    tau = diff.mean()
    K = m.control_weights()
    q = np.bincount(m.pair_c, weights=m.weight ** 2, minlength=len(m.controls))
    return float((((diff - tau) ** 2).sum() + ((K ** 2 - q) * sigma2_control).sum()) / n1 ** 2)


def _local_cov(ps: np.ndarray, X: np.ndarray, y: np.ndarray, members: np.ndarray,
               neighbours: int) -> np.ndarray:
    """cov(X, Y | score) at every unit, from the ``neighbours`` members nearest on the score
    (a unit of the group counts itself): one row per unit, one column per column of X."""
    idx = np.flatnonzero(members)
    nn = NearestNeighbors(n_neighbors=min(neighbours, len(idx)), algorithm="kd_tree")
    _, ind = nn.fit(ps[idx][:, None]).kneighbors(ps[:, None])
    Xn, yn = X[idx][ind], y[idx][ind]
    dx = Xn - Xn.mean(axis=1, keepdims=True)
    dy = (yn - yn.mean(axis=1, keepdims=True))[..., None]
    return (dx * dy).sum(axis=1) / (ind.shape[1] - 1)


def _other_group_mean(ps: np.ndarray, y: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Mean outcome of the k nearest units of the other group on the score, for every unit."""
    out = np.empty(len(y))
    for group in (True, False):
        src, dst = np.flatnonzero(t != group), np.flatnonzero(t == group)
        nn = NearestNeighbors(n_neighbors=min(k, len(src)), algorithm="kd_tree")
        _, ind = nn.fit(ps[src][:, None]).kneighbors(ps[dst][:, None])
        out[dst] = y[src][ind].mean(axis=1)
    return out


def ai2016_variance(m: Matching, y: np.ndarray, ps: np.ndarray, X: np.ndarray,
                    cov_theta: np.ndarray, sigma2_control: np.ndarray,
                    neighbours: int = KNN_K) -> float:
    r"""Abadie-Imbens (2016) variance of a matching ATT on a logit score estimated by ML.

    .. math:: \hat V_{adj} = \hat V_{AI} - \hat c_t' \hat\Sigma_\theta \hat c_t
              + \hat d_t' \hat\Sigma_\theta \hat d_t,

    :math:`\hat V_{AI}` the known-score variance (:func:`matching_variance`),
    :math:`\hat\Sigma_\theta` the logit's ML covariance (``X`` its design with the constant),
    :math:`\hat c_t = N_1^{-1}\sum_i f_i\,[\widehat{cov}_1(X, Y | e_i) + e_i/(1-e_i)\,
    \widehat{cov}_0(X, Y | e_i)]` with :math:`f = e(1-e)` and the covariances over the
    ``neighbours`` nearest units of each group on the score, and :math:`\hat d_t =
    N_1^{-1}\sum_i X_i f_i\,(\hat\mu_1(e_i) - \hat\mu_0(e_i) - \hat\tau)`, the missing
    mean from the ``neighbours`` nearest units of the other group. The adjustment can make
    the variance smaller or larger. It is derived without a caliper: with treated units off
    support it is an approximation (they still enter :math:`N_1`, c and d).
    """
    t = np.zeros(len(y), dtype=bool)
    t[m.treated] = True
    f = ps * (1 - ps)
    n1 = t.sum()
    cov1 = _local_cov(ps, X, y, t, neighbours)
    cov0 = _local_cov(ps, X, y, ~t, neighbours)
    c = ((cov1 + (ps / (1 - ps))[:, None] * cov0) * f[:, None]).sum(axis=0) / n1
    other = _other_group_mean(ps, y, t, neighbours)
    gap = np.where(t, y - other, other - y) - m.att(y)
    d = (X * (f * gap)[:, None]).sum(axis=0) / n1
    return float(matching_variance(m, y, sigma2_control) - c @ cov_theta @ c
                 + d @ cov_theta @ d)


def psmatch2_se(m: Matching, y: np.ndarray) -> float:
    r"""psmatch2's default SE of the ATT (printed without ``ai()``; psmatch2 4.0.12 ``_mktab``).

    .. math:: \widehat{SE} = \sqrt{\frac{s^2_1}{N_1} + \frac{s^2_0 \sum_{j} K_j^2}{N_1^2}}

    with :math:`s^2_1` the variance of Y over the treated on support, :math:`s^2_0` over the
    controls used (:math:`K_j > 0`, unweighted) and :math:`K_j` a control's total weight.
    psmatch2 notes that it "does not take into account that the propensity score is
    estimated"; it also assumes one outcome variance per group. Reported because the
    published SEs are psmatch2's; no size is claimed for it.
    """
    n1 = m.n_on_support
    K = m.control_weights()
    used = K > 0
    if n1 < 2 or used.sum() < 2:
        return np.nan
    var1 = y[m.treated[m.on_support]].var(ddof=1)
    var0 = y[m.controls[used]].var(ddof=1)
    return float(np.sqrt(var1 / n1 + var0 * (K ** 2).sum() / n1 ** 2))
