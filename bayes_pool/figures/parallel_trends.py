"""Figure of a parallel-trends sensitivity analysis: the effect against the relative-magnitude
bound Mbar, frequentist confidence set beside the Bayesian intervals, published estimate
marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool.figures import COLORS, banner, save, subplots

_STYLE = {"frequentist": ("frequentist C-LF set", COLORS["frequentist"], -0.012),
          "bayesian": ("Bayesian, uniform prior on the violation", COLORS["bayesian"], 0.0),
          "bayesian_bounds": ("Bayesian, robust (identified set)", "tab:orange", 0.012)}


def plot_parallel_trends(summary: pd.DataFrame, path: str | Path, *,
                         published: float | None = None, title: str = "Parallel trends",
                         synthetic: bool = False) -> Path:
    """Write :func:`parallel_trends_figure` as a PNG and return its path."""
    return save(parallel_trends_figure(summary, published=published, title=title,
                                       synthetic=synthetic), path)


def parallel_trends_figure(summary: pd.DataFrame, *, published: float | None = None,
                           title: str = "Parallel trends", synthetic: bool = False):
    """Intervals of the effect against Mbar from the table of
    :func:`bayes_pool.robustness.parallel_trends_summary`: one colour per method, the intervals
    that assume parallel trends at the left (x = "PT"), a dashed line at 0 and the published
    estimate as a black line if given. Returns the open figure."""
    rows = summary[summary["method"].isin(list(_STYLE))]
    if rows.empty:
        raise ValueError("no frequentist/bayesian rows in the parallel-trends summary")
    mbars = np.sort(rows["mbar"].unique())
    width = float(np.diff(mbars).min()) if len(mbars) > 1 else 1.0
    fig, ax = subplots(figsize=(7, 4.2))
    origin = mbars.min() - width
    for method, (label, color, offset) in _STYLE.items():
        r = rows[rows["method"] == method].sort_values("mbar")
        if r.empty:
            continue
        x = r["mbar"].to_numpy() + offset * width * 8
        ax.vlines(x, r["lower"], r["upper"], color=color, lw=2, label=label)
        if r["mean"].notna().any():
            ax.scatter(x, r["mean"], color=color, s=14, zorder=3)
        original = summary[summary["method"] == method.split("_")[0] + "_original"]
        if not original.empty and method != "bayesian_bounds":
            o = original.iloc[0]
            ax.vlines(origin + offset * width * 8, o["lower"], o["upper"], color=color, lw=2,
                      ls=":")
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    if published is not None:
        ax.axhline(published, color=COLORS["published"], lw=1, label="published estimate")
    ax.set_xticks([origin, *mbars], ["PT", *[f"{m:g}" for m in mbars]])
    ax.set_xlabel("Mbar: post-period change at most Mbar x the largest pre-period change "
                  "(PT: parallel trends)")
    ax.set_ylabel("effect, 95% interval")
    ax.set_title(banner(title, synthetic))
    ax.legend(fontsize=7, loc="best")
    return fig
