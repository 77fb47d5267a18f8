"""Figures of a matching analysis: love plot, propensity overlap, ATT forest.

Each takes its data, a ``path`` and ``synthetic`` (which puts "SYNTHETIC DATA" in the title)
and returns the path of the PNG written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool.estimates import CI_PROB
from bayes_pool.figures import COLORS, Z, banner, save, subplots


def _title(ax, title: str, synthetic: bool) -> None:
    ax.set_title(banner(title, synthetic), fontsize=10)


def love_plot(balance: pd.DataFrame, path: str | Path, *, synthetic: bool,
              title: str = "Covariate balance before and after matching",
              refined: pd.DataFrame | None = None,
              refined_label: str = "after refined matching") -> Path:
    """|standardized bias| (%) per covariate before and after matching, with the 10% line.

    ``balance`` is :func:`bayes_pool.freq.psm.balance`'s table (index: covariate), k-NN's;
    ``refined``, the same table of another matching (k-NN with exact cells), adds its
    after-matching markers so the two can be read side by side.
    """
    y = np.arange(len(balance))[::-1]
    fig, ax = subplots(figsize=(7, 0.45 * len(balance) + 1.6))
    ax.scatter(balance["std_bias_pct_before"].abs(), y, marker="o", facecolors="white",
               edgecolors="black", label="before matching")
    ax.scatter(balance["std_bias_pct_after"].abs(), y, marker="o", color="tab:blue",
               label="after matching" if refined is None else "after k-NN matching")
    if refined is not None:
        after = refined["std_bias_pct_after"].reindex(balance.index).abs()
        ax.scatter(after, y, marker="D", color="tab:orange", label=refined_label)
    ax.axvline(10, color="grey", ls="--", lw=0.8, label="10%")
    ax.set_yticks(y, balance.index)
    ax.set_xlabel("|standardized bias| (%)")
    if refined is None:
        ax.legend(loc="lower right", fontsize=8)
    else:  # four entries would cover points: below the axes
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
        fig.set_figheight(fig.get_figheight() + 0.6)
    _title(ax, title, synthetic)
    return save(fig, path)


def overlap(ps: np.ndarray, treated: np.ndarray, path: str | Path, *, synthetic: bool,
            title: str = "Propensity score by group, before matching") -> Path:
    """Histograms of the estimated propensity score, treated against controls."""
    ps, treated = np.asarray(ps), np.asarray(treated).astype(bool)
    bins = np.linspace(ps.min(), ps.max(), 41)
    fig, ax = subplots(figsize=(7, 4))
    ax.hist(ps[~treated], bins=bins, density=True, alpha=0.5, color="grey",
            label=f"control (n = {int((~treated).sum())})")
    ax.hist(ps[treated], bins=bins, density=True, alpha=0.5, color="tab:blue",
            label=f"treated (n = {int(treated.sum())})")
    ax.set_xlabel("estimated propensity score")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    _title(ax, title, synthetic)
    return save(fig, path)


ATT_QUANTITIES = ("att", "att_psmatch2_se")
"""Quantities the ATT forest draws."""


def forest_label(r) -> str:
    """The y label of an ATT forest row (an estimates row as a named tuple)."""
    se = ", psmatch2 SE" if r.quantity == "att_psmatch2_se" else ""
    return f"{r.source}: {r.column}{se} (table {r.table})"


def att_forest(table: pd.DataFrame, path: str | Path, *, synthetic: bool,
               title: str = "ATT: published, frequentist and Bayesian") -> Path:
    """One line per (source, column) ATT row of an estimates table, with its 95% interval.

    Published and frequentist rows without an interval get estimate +- 1.96 SE; Bayesian
    rows use their equal-tailed posterior interval; unconverged posteriors are hollow. Rows
    of quantity ``att_psmatch2_se`` (the same ATT with psmatch2's approximate SE, the kind
    the paper published) get their own line, labelled "psmatch2 SE".
    """
    att = table[table["quantity"].isin(ATT_QUANTITIES)].copy()
    order = {"published": 0, "frequentist": 1, "bayesian": 2}
    att = att.assign(_o=att["source"].map(order)).sort_values(["_o", "column"])
    lo = att["ci_low"].where(att["ci_low"].notna(), att["estimate"] - Z * att["se"])
    hi = att["ci_high"].where(att["ci_high"].notna(), att["estimate"] + Z * att["se"])
    y = np.arange(len(att))[::-1]
    fig, ax = subplots(figsize=(7, 0.4 * len(att) + 1.6))
    for yi, (r, l, h) in zip(y, zip(att.itertuples(), lo, hi)):
        color = COLORS[r.source]
        hollow = r.source == "bayesian" and not (pd.notna(r.converged) and bool(r.converged))
        if pd.notna(l) and pd.notna(h):
            ax.plot([l, h], [yi, yi], color=color)
        ax.scatter([r.estimate], [yi], color="white" if hollow else color, edgecolors=color,
                   zorder=3)
    ax.set_yticks(y, [forest_label(r) for r in att.itertuples()])
    ax.axvline(0, color="grey", ls="--", lw=0.8)
    ax.set_xlabel(f"ATT with {int(CI_PROB * 100)}% interval")
    _title(ax, title, synthetic)
    return save(fig, path)
