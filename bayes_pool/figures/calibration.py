"""Figures of simulation-based calibration (:mod:`bayes_pool.calibration`).

For each model, one row of rank histograms (one panel per parameter) with the band a uniform
histogram stays inside with probability ``band_prob`` per bin (binomial quantiles, as in
Talts et al. 2018), and one row of ECDF differences (ECDF of the ranks' PIT minus the uniform
CDF) with the simultaneous ``band_prob`` band of Säilynoja et al. 2022 (``arviz_stats``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from bayes_pool.figures import banner, save, subplots


def rank_histograms(results, path: str | Path, *, synthetic: bool = True,
                    title: str = "Simulation-based calibration") -> Path:
    """Rank histograms and ECDF differences of each :class:`~bayes_pool.calibration.SBCResult`
    in ``results``; panel titles give the chi-square p-value and whether the ECDF stays in its
    band. Returns the path of the PNG written."""
    from arviz_stats.ecdf_utils import ecdf_pit

    results = list(results)
    ncol = max(len(r.parameters) for r in results)
    fig, axes = subplots(2 * len(results), ncol, squeeze=False,
                         figsize=(max(3.6 * ncol, 7), 5.2 * len(results) + 0.6))
    lines = []
    for k, res in enumerate(results):
        s = res.settings
        summary = res.summary().set_index("parameter")
        counts = res.counts()
        for j in range(ncol):
            hist_ax, ecdf_ax = axes[2 * k, j], axes[2 * k + 1, j]
            if j >= len(res.parameters):
                hist_ax.set_visible(False)
                ecdf_ax.set_visible(False)
                continue
            p = res.parameters[j]
            ranks = res.ranks.loc[(res.ranks["parameter"] == p) & (res.ranks["status"] == "ok"),
                                  "rank"].to_numpy(dtype=int)
            n, values = len(ranks), s.thin_to + 1
            u = summary.loc[p]
            edges = np.round(np.linspace(0, values, int(u["bins"]) + 1)).astype(int)
            width = np.diff(edges)
            share = width / values
            lo = stats.binom.ppf((1 - s.band_prob) / 2, n, share)
            hi = stats.binom.ppf(1 - (1 - s.band_prob) / 2, n, share)
            hist_ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]),
                                 step="post", color="0.85", label=f"{s.band_prob:.0%} band")
            hist_ax.stairs(n * share, edges, color="0.4", lw=1, ls="--", label="uniform")
            hist_ax.hist(ranks, bins=edges, color="tab:red", alpha=0.7, edgecolor="white")
            hist_ax.set_xlim(0, values)
            hist_ax.set_xlabel(f"rank of {p} (0..{s.thin_to})")
            hist_ax.set_title(f"{res.problem}: {p}\nchi-square p = {u['chi2_p']:.3f}",
                              fontsize=9)
            if j == 0:
                hist_ax.set_ylabel(f"simulations (of {n})")
                hist_ax.legend(fontsize=7, loc="lower right")
            pit = (ranks + 0.5) / values
            x, ecdf, lower, upper = ecdf_pit(pit, s.band_prob, 1000,
                                             rng=np.random.default_rng(s.seed))
            ecdf_ax.fill_between(x, lower - x, upper - x, step="post", color="0.85")
            ecdf_ax.step(x, ecdf - x, where="post", color="tab:red")
            ecdf_ax.axhline(0, color="0.4", lw=0.8, ls="--")
            ecdf_ax.set_xlabel("fractional rank")
            ecdf_ax.set_title(f"ECDF {'inside' if u['in_band'] else 'OUTSIDE'} the "
                              f"{s.band_prob:.0%} band", fontsize=9)
            if j == 0:
                ecdf_ax.set_ylabel("ECDF - uniform CDF")
        lines.append(f"{res.problem}: N = {counts['simulations']} simulations "
                     f"({counts['failed']} failed; {counts['with_divergences']} with divergences, "
                     f"{counts['r_hat_above']} with R-hat > {res.convergence.max_r_hat}, "
                     f"{counts['ess_below']} with ESS < {res.convergence.min_ess_bulk:g}: all "
                     f"ranked), L = {s.thin_to}, {s.chains} x {s.draws} draws")
    fig.suptitle(banner("\n".join([title, *lines]), synthetic), fontsize=9)
    return save(fig, path)
