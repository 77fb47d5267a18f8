"""Forest plot of subgroup average marginal effects: published vs frequentist vs Bayesian.

Takes rows of the estimates table (e.g. published Table 6 rows plus
:meth:`bayes_pool.heterogeneity_workflow.HeterogeneityResult.tidy`), a ``path`` and ``synthetic``
(which puts "SYNTHETIC DATA" in the title); returns the path of the PNG written.
:func:`forest` returns the figure itself (for checking what it shows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool.estimates import CI_PROB
from bayes_pool.figures import COLORS, Z, banner, save, subplots


def subgroup_forest(rows: pd.DataFrame, path: str | Path, *, synthetic: bool, term: str,
                    table: str = "heterogeneity",
                    title: str = "Effect by subgroup (AME)") -> Path:
    """Write :func:`forest` as a PNG at ``path``."""
    return save(forest(rows, synthetic=synthetic, term=term, table=table, title=title), path)


def forest(rows: pd.DataFrame, *, synthetic: bool, term: str, table: str = "heterogeneity",
           title: str = "Effect by subgroup (AME)"):
    """One line per subgroup column, the three sources side by side.

    Each interval is the row's own (``ci_low``, ``ci_high``: the 95% equal-tailed posterior
    interval, or the frequentist interval with the row's own critical value); a row without one
    (a published estimate with its SE) gets estimate +- z SE. Pooled-model rows
    (``<label>_pooled``) are drawn on their subgroup's line as hollow Bayesian points.
    Unconverged posteriors are marked with an x.
    """
    sel = rows[(rows["table"] == table) & (rows["term"] == term) & (rows["quantity"] == "ame")]
    columns = list(dict.fromkeys(c.removesuffix("_pooled") for c in sel["column"]))
    fig, ax = subplots(figsize=(7, 0.7 * len(columns) + 1.5))
    ypos = {c: i for i, c in enumerate(reversed(columns))}
    offsets = {"published": 0.24, "frequentist": 0.08, "bayesian": -0.08, "pooled": -0.24}
    seen = set()
    for r in sel.itertuples():
        pooled = r.column.endswith("_pooled")
        base = r.column.removesuffix("_pooled")
        key = "pooled" if pooled else r.source
        lo, hi = r.ci_low, r.ci_high
        if pd.isna(lo) or pd.isna(hi):
            lo, hi = r.estimate - Z * r.se, r.estimate + Z * r.se
        y = ypos[base] + offsets[key]
        color = COLORS[r.source]
        if not np.isnan(lo):
            ax.plot([lo, hi], [y, y], color=color, lw=1.2)
        label = {"pooled": "bayesian (pooled model)"}.get(key, key)
        marker = "x" if (r.source == "bayesian" and r.converged is False) else "o"
        ax.scatter([r.estimate], [y], color="white" if pooled else color, edgecolors=color,
                   marker=marker, zorder=3, label=None if label in seen else label)
        seen.add(label)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(list(ypos.values()), list(ypos.keys()))
    ax.set_xlabel(f"AME of {term} with {int(CI_PROB * 100)}% interval")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(banner(title, synthetic), fontsize=10)
    return fig
