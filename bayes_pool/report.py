"""Figures and text for a run: the forest plot of published vs frequentist vs Bayesian."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool.estimates import CI_PROB
from bayes_pool.figures import COLORS, Z, banner, save, subplots



def forest(comp: pd.DataFrame, path: str | Path, *, title: str, synthetic: bool) -> Path:
    """Forest plot: one line per (table, column, term, quantity), three sources side by side.

    Published and frequentist intervals are estimate ± 1.96 SE; the Bayesian interval is the
    95% equal-tailed posterior interval. Unconverged posteriors are drawn hollow.
    """
    labels = [f"T{r.table} {r.column} {r.term} ({r.quantity})" for r in comp.itertuples()]
    fig, ax = subplots(figsize=(8, 0.6 * len(comp) + 1.5))
    y = np.arange(len(comp))[::-1]
    for offset, source in zip((0.2, 0.0, -0.2), ("published", "frequentist", "bayesian")):
        if source == "bayesian":
            est, lo, hi = comp["bayesian"], comp["bayes_ci_low"], comp["bayes_ci_high"]
        else:
            se_col = "published_se" if source == "published" else "frequentist_se"
            est = comp[source]
            lo, hi = est - Z * comp[se_col], est + Z * comp[se_col]
        ok = est.notna()
        if not ok.any():
            continue
        err = np.vstack([(est - lo)[ok], (hi - est)[ok]])
        face = COLORS[source]
        if source == "bayesian":
            face = [COLORS[source] if (not pd.isna(c) and bool(c)) else "white"
                    for c in comp["converged"][ok]]
        ax.errorbar(est[ok], y[ok.to_numpy()] + offset, xerr=err, fmt="none",
                    ecolor=COLORS[source], capsize=2)
        ax.scatter(est[ok], y[ok.to_numpy()] + offset, color=face, edgecolors=COLORS[source],
                   zorder=3, label=source)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"estimate with {int(CI_PROB * 100)}% interval")
    ax.set_title(banner(title, synthetic), fontsize=10)
    if (comp["converged"] == False).any():  # noqa: E712  (nullable boolean column)
        ax.text(0.99, 0.01, "hollow: posterior NOT converged", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7)
    ax.legend(loc="best", fontsize=8)
    return save(fig, path)
