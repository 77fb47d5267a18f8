"""Figures of the predictive checks: what the priors imply, and replicated vs observed data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool.figures import COLORS, banner, save, subplots


def plot_prior_predictive(draws: dict[str, dict[str, np.ndarray]], path: str | Path, *,
                          observed_mean: float, outcome: str, effect: str, synthetic: bool,
                          published: float | None = None) -> Path:
    """Two panels, one box per prior set: the outcome mean (share healthy for a logit) and the
    treatment effect implied by the priors alone, with the observed mean and the published
    effect marked for scale (they are not used by the priors)."""
    names = list(draws)
    fig, (left, right) = subplots(1, 2, figsize=(11, 0.5 * len(names) + 2.5), sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, key, mark, label in ((left, "outcome_mean", observed_mean, f"observed mean {outcome}"),
                                 (right, "effect", published, "published")):
        data = [draws[n][key] for n in names]
        parts = ax.violinplot(data, positions=y, orientation="horizontal", showextrema=False,
                              widths=0.8)
        for body in parts["bodies"]:
            body.set_facecolor(COLORS["bayesian"])
            body.set_alpha(0.35)
        q = np.array([np.quantile(d, [0.05, 0.5, 0.95]) for d in data])
        ax.hlines(y, q[:, 0], q[:, 2], color=COLORS["bayesian"], lw=1.5, label="5-95% of prior draws")
        ax.scatter(q[:, 1], y, color=COLORS["bayesian"], zorder=3, s=12, label="median")
        if mark is not None and np.isfinite(mark):
            ax.axvline(mark, color=COLORS["published"], ls=":", lw=1.5, label=f"{label} = {mark:.3g}")
        ax.legend(fontsize=7, loc="lower right")
    left.set_yticks(y, names)
    left.set_ylabel("prior set")
    left.set_xlabel(f"implied mean of {outcome} (prior predictive)")
    right.set_xlabel(f"implied {effect} (prior)")
    right.axvline(0, color="grey", lw=0.8, ls="--")
    fig.suptitle(banner("prior predictive check: what the priors alone imply", synthetic),
                 fontsize=10)
    return save(fig, path)


def plot_posterior_predictive(stats: pd.DataFrame, path: str | Path, *, outcome: str,
                              synthetic: bool, title: str = "posterior predictive check") -> Path:
    """Per statistic and group: the replicated statistic's distribution (box of posterior
    predictive draws) and the observed value (black diamond), with the posterior predictive
    p-value P(replicated >= observed)."""
    panels = list(dict.fromkeys(stats["statistic"]))
    groups = list(dict.fromkeys(stats["group"]))
    fig, axes = subplots(1, len(panels), figsize=(6 * len(panels), 0.5 * len(groups) + 2.2),
                         squeeze=False)
    y = np.arange(len(groups))[::-1]
    for ax, stat in zip(axes[0], panels):
        sub = stats[stats["statistic"] == stat]
        reps = [sub.loc[sub["group"] == g, "replicated"].to_numpy() for g in groups]
        obs = [sub.loc[sub["group"] == g, "observed"].iloc[0] for g in groups]
        ax.boxplot(reps, positions=y, orientation="horizontal", widths=0.6, showfliers=False,
                   patch_artist=True, boxprops={"facecolor": COLORS["bayesian"], "alpha": 0.35})
        ax.scatter(obs, y, marker="D", color=COLORS["published"], zorder=3, label="observed")
        for yi, r, o in zip(y, reps, obs):
            ax.annotate(f"p = {np.mean(r >= o):.2f}", (max(np.max(r), o), yi), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=7)
        n = sub.groupby("group", sort=False)["n"].first()
        ax.set_yticks(y, [f"{g} (n={n[g]})" for g in groups])
        ax.set_xlabel(f"{stat} of {outcome}: replicated (boxes) vs observed")
        ax.legend(fontsize=7, loc="lower right")
        ax.margins(x=0.15)
    fig.suptitle(banner(title, synthetic), fontsize=10)
    return save(fig, path)
