"""Figures (matplotlib, Agg, PNG) and the conventions they share: one palette per source, the
synthetic-data banner in every title, and one way to save."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402

from bayes_pool.estimates import CI_PROB  # noqa: E402

COLORS = {"published": "black", "frequentist": "tab:blue", "bayesian": "tab:red"}
"""Colour of each source of an estimate, in every figure."""
Z = float(stats.norm.ppf(0.5 + CI_PROB / 2))
"""Normal quantile of the CI_PROB interval (estimate ± Z·SE)."""


def banner(title: str, synthetic: bool) -> str:
    """The title, headed by "SYNTHETIC DATA" when the data were generated."""
    return ("SYNTHETIC DATA\n" if synthetic else "") + title


def save(fig, path: str | Path) -> Path:
    """Lay out, write the PNG and close the figure."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
