"""Figures (matplotlib, PNG) and the conventions they share: one palette per source, the
synthetic-data banner in every title, one way to make a figure and one way to save it.

Figures are made by :func:`subplots` on a :class:`matplotlib.figure.Figure` that pyplot does not
manage: drawing and saving one needs no backend, so no module here chooses one and a notebook
that imports the package keeps its inline plots.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from scipy import stats

from bayes_pool.estimates import CI_PROB

COLORS = {"published": "black", "frequentist": "tab:blue", "bayesian": "tab:red"}
"""Colour of each source of an estimate, in every figure."""
Z = float(stats.norm.ppf(0.5 + CI_PROB / 2))
"""Normal quantile of the CI_PROB interval (estimate ± Z·SE)."""


def banner(title: str, synthetic: bool) -> str:
    """The title, headed by "SYNTHETIC DATA" when the data were generated."""
    return ("SYNTHETIC DATA\n" if synthetic else "") + title


def subplots(*args, figsize=None, **kwargs):
    """``(fig, axes)`` as ``matplotlib.pyplot.subplots`` gives them, on a figure outside pyplot
    (nothing to close, no backend needed to draw or save it)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def save(fig, path: str | Path) -> Path:
    """Lay out and write the PNG."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
