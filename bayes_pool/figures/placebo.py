"""Figures of a placebo test (Fig. 3 of Zhang & Chen 2024 style).

Takes a :class:`~bayes_pool.freq.placebo.PlaceboResult`, a ``path`` and ``synthetic`` (which
puts "SYNTHETIC DATA" in the title) and returns the path of the PNG written.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from bayes_pool.figures import banner, save  # noqa: E402


def placebo_plot(result, path: str | Path, *, synthetic: bool,
                 title: str = "Placebo test: random treated units and adoption years") -> Path:
    """Two panels: placebo p-values with the actual p-value and the share at or below it;
    placebo coefficients with the actual coefficient and the RI p-value."""
    draws = result.draws
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
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
                  label=f"actual coefficient = {b:.3f}\nRI p-value = {result.ri_p_value:.3f}")
    right.set_xlabel(f"placebo coefficient of {result.design.treatment}")
    right.legend(fontsize=8)
    n = len(draws)
    fig.suptitle(banner(f"{title} ({n} draws)", synthetic), fontsize=10)
    return save(fig, path)
