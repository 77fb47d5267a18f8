"""Figures of a placebo test (Fig. 3 of Zhang & Chen 2024 style).

Takes a :class:`~bayes_pool.freq.placebo.PlaceboResult`, a ``path`` and ``synthetic`` (which
puts "SYNTHETIC DATA" in the title) and returns the path of the PNG written. With the
Bayesian placebo posteriors (:func:`bayes_pool.bayes.fast.placebo_posteriors`) a third panel
shows each draw's posterior probability of a positive effect against the actual one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bayes_pool.figures import banner, save, subplots


def placebo_plot(result, path: str | Path, *, synthetic: bool,
                 title: str = "Placebo test: random treated units and adoption years",
                 bayes=None, bayes_actual: float | None = None) -> Path:
    """Placebo p-values with the actual p-value and the share at or below it; placebo
    coefficients with the actual coefficient and the RI p-value; and, when ``bayes`` (a frame
    with ``prob_positive``) is given, the placebo P(effect > 0) with the actual one."""
    draws = result.draws
    panels = 3 if bayes is not None else 2
    fig, axes = subplots(1, panels, figsize=(5 * panels, 4))
    left, right = axes[0], axes[1]
    left.hist(draws["p_value"].dropna(), bins=20, range=(0, 1), color="tab:blue", alpha=0.7,
              edgecolor="white")
    p = result.actual["p_value"]
    left.axvline(p, color="black", ls=":", lw=1.5,
                 label=f"actual p = {p:.3f}\nshare of placebo p <= actual: "
                       f"{result.share_p_below:.3f}")
    left.axvline(0.05, color="grey", ls="--", lw=0.8, label="0.05")
    left.set_xlabel(f"placebo p-value ({result.vcov} SE)")
    left.set_ylabel("draws")
    left.legend(fontsize=8)
    right.hist(draws["coef"].dropna(), bins=30, color="tab:red", alpha=0.7, edgecolor="white")
    b = result.actual["coef"]
    right.axvline(b, color="black", ls=":", lw=1.5,
                  label=f"actual coefficient = {b:.3f}\nRI-beta p = {result.ri_p_value:.3f}, "
                        f"RI-t p = {result.ri_t_p_value:.3f}")
    right.set_xlabel(f"placebo coefficient of {result.design.treatment}")
    right.legend(fontsize=8)
    if bayes is not None:
        ax = axes[2]
        prob = bayes["prob_positive"].dropna().to_numpy(dtype=float)
        ax.hist(prob, bins=20, range=(0, 1), color="tab:purple", alpha=0.7, edgecolor="white")
        if bayes_actual is not None:
            share = float(np.mean(prob >= bayes_actual)) if len(prob) else float("nan")
            ax.axvline(bayes_actual, color="black", ls=":", lw=1.5,
                       label=f"actual P(effect > 0) = {bayes_actual:.3f}\n"
                             f"share of placebo draws >= actual: {share:.3f}")
            ax.legend(fontsize=8, loc="upper left")
        ax.set_xlabel(f"placebo posterior P({result.design.treatment} > 0) (Laplace)")
    n = len(draws)
    fig.suptitle(banner(f"{title} ({n} draws)", synthetic), fontsize=10)
    return save(fig, path)


def null_world_plot(table, path: str | Path, *, synthetic: bool, alpha: float = 0.05) -> Path:
    """Rejection rate at ``alpha`` of each inference method with its 95% binomial interval,
    one marker per world (a table of ``benchmarks/null_world.py``: ``world``, ``method``,
    ``rate``, ``ci_low``, ``ci_high``), against the nominal ``alpha``."""
    methods = list(dict.fromkeys(table["method"]))
    worlds = list(dict.fromkeys(table["world"]))
    fig, ax = subplots(figsize=(7, 0.55 * len(methods) + 1.6))
    offsets = np.linspace(-0.15, 0.15, len(worlds))
    for world, dy, color in zip(worlds, offsets, ("tab:blue", "tab:orange", "tab:green")):
        rows = table[table["world"] == world].set_index("method").reindex(methods)
        y = np.arange(len(methods)) + dy
        ax.errorbar(100 * rows["rate"], y, fmt="o", color=color, label=world, capsize=3,
                    xerr=[100 * (rows["rate"] - rows["ci_low"]),
                          100 * (rows["ci_high"] - rows["rate"])])
    ax.axvline(100 * alpha, color="black", ls="--", lw=1, label=f"nominal {100 * alpha:g}%")
    ax.set_yticks(np.arange(len(methods)), methods)
    ax.invert_yaxis()
    ax.set_xlabel(f"rejection rate at {100 * alpha:g}% in null worlds (%), 95% binomial interval")
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(banner("Size of each test with 3 switching provinces (no effect)", synthetic),
                 fontsize=10)
    return save(fig, path)
