"""Figure of a mediation analysis: indirect, direct and total effects with their intervals,
frequentist (bootstrap) beside Bayesian (posterior)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool.estimates import CI_PROB
from bayes_pool.figures import COLORS, banner, save, subplots

QUANTITIES = ("indirect", "direct", "total")


def plot_mediation(est: pd.DataFrame, path: str | Path, *, title: str = "Mediation",
                   synthetic: bool = False) -> Path:
    """Write :func:`mediation_figure` as a PNG and return its path."""
    return save(mediation_figure(est, title=title, synthetic=synthetic), path)


def mediation_figure(est: pd.DataFrame, *, title: str = "Mediation",
                     synthetic: bool = False):
    """Dot-and-interval plot of the ``mediation`` table's indirect/direct/total rows.

    One panel row per mediator (the rows' ``column``); frequentist intervals are the
    bootstrap percentile intervals, Bayesian ones the 95% equal-tailed posterior intervals
    (unconverged posteriors drawn hollow). Returns the open figure.
    """
    rows = est[(est["table"] == "mediation") & est["quantity"].isin(QUANTITIES)]
    if rows.empty:
        raise ValueError("no indirect/direct/total rows of table 'mediation' to plot")
    mediators = list(dict.fromkeys(rows["column"]))
    labels, ys = [], []
    fig, ax = subplots(figsize=(7, 0.5 * len(mediators) * len(QUANTITIES) + 1.6))
    y = 0
    for med in mediators:
        for q in QUANTITIES:
            labels.append(f"{med}: {q}")
            ys.append(y)
            for offset, source in ((0.15, "frequentist"), (-0.15, "bayesian")):
                r = rows[(rows["column"] == med) & (rows["quantity"] == q)
                         & (rows["source"] == source)]
                if r.empty:
                    continue
                r = r.iloc[0]
                face = COLORS[source]
                if source == "bayesian" and not (pd.notna(r["converged"]) and bool(r["converged"])):
                    face = "white"
                ax.plot([r["ci_low"], r["ci_high"]], [y + offset] * 2, color=COLORS[source])
                ax.scatter([r["estimate"]], [y + offset], color=face,
                           edgecolors=COLORS[source], zorder=3,
                           label=source if (med, q) == (mediators[0], QUANTITIES[0]) else None)
            y -= 1
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(np.asarray(ys), labels)
    ax.set_xlabel(f"effect on the outcome's scale, {int(CI_PROB * 100)}% interval")
    ax.set_title(banner(title, synthetic), fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return fig
