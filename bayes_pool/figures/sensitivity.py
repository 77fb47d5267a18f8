"""Figures of a prior-sensitivity run: the forest plot per prior set and the power-scaling plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool.estimates import CI_PROB
from bayes_pool.figures import COLORS, Z, banner, save, subplots


def sensitivity_forest(table: pd.DataFrame, path: str | Path, *, title: str, synthetic: bool,
                       published: tuple[float, float, str] | None = None) -> Path:
    """One line per prior set: posterior mean and 95% interval of the key quantity, with
    P(effect > 0) beside it; the published estimate (and its ± 1.96 SE band) marked.

    ``table`` has ``prior_set, mean, ci_low, ci_high, p_positive, converged`` (see
    :func:`bayes_pool.sensitivity.run_sensitivity`). Unconverged fits are drawn hollow.
    """
    n = len(table)
    fig, ax = subplots(figsize=(8, 0.55 * n + 2.6))
    y = np.arange(n)[::-1]
    if published is not None and np.isfinite(published[0]):
        est, se, label = published
        if np.isfinite(se):
            ax.axvspan(est - Z * se, est + Z * se, color=COLORS["published"], alpha=0.08,
                       label=f"{label} ± {Z:.2f} SE")
        ax.axvline(est, color=COLORS["published"], lw=1.5, label=f"{label} = {est:g}")
    err = np.vstack([table["mean"] - table["ci_low"], table["ci_high"] - table["mean"]])
    ax.errorbar(table["mean"], y, xerr=err, fmt="none", ecolor=COLORS["bayesian"], capsize=3)
    face = [COLORS["bayesian"] if bool(c) else "white" for c in table["converged"]]
    ax.scatter(table["mean"], y, color=face, edgecolors=COLORS["bayesian"], zorder=3,
               label=f"posterior mean, {int(CI_PROB * 100)}% interval")
    for yi, r in zip(y, table.itertuples()):
        ax.annotate(f"P(>0) = {r.p_positive:.3f}", (r.ci_high, yi), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, table["prior_set"])
    lo = min(table["ci_low"].min(), 0)
    hi = max(table["ci_high"].max(), published[0] if published else 0)
    ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.35 * (hi - lo))
    ax.set_xlabel(f"{table['quantity'].iloc[0]} of {table['term'].iloc[0]}")
    ax.set_ylabel("prior set")
    ax.set_title(banner(title, synthetic), fontsize=10)
    if not table["converged"].all():
        ax.text(0.99, 1.01, "hollow: posterior NOT converged", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=7, frameon=False)
    return save(fig, path)


def plot_psense(tree, path: str | Path, *, var_names: list[str], synthetic: bool,
                title: str = "power-scaling sensitivity") -> Path:
    """ArviZ's power-scaling plot (``arviz_plots.plot_psense_dist``): each variable's posterior
    with the prior, then the likelihood, scaled by alpha = 0.8 and 1.25 (importance-weighted,
    no refit). Curves that move show sensitivity."""
    import matplotlib.pyplot as plt  # arviz_plots draws through pyplot: close its figure
    from arviz_plots import plot_psense_dist
    pc = plot_psense_dist(tree, var_names=var_names, backend="matplotlib", kind="kde",
                          ci_prob=CI_PROB, ci_kind="eti",
                          figure_kwargs={"figsize": (10, 2.0 * len(var_names) + 1.2),
                                         "layout": "constrained"})
    fig = pc.get_viz("figure")
    fig.suptitle(banner(title, synthetic), fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
