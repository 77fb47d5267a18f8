"""Read back what a figure shows: keep the figures a module saves (instead of only checking the
PNG exists) and read the plotted points, so tests compare them with the estimates table."""

from __future__ import annotations

import numpy as np


def keep_saved(monkeypatch, module) -> dict:
    """Figures passed to ``module.save`` by file stem (the PNG is still written)."""
    figs, real = {}, module.save

    def save(fig, path):
        figs[path.stem] = fig
        return real(fig, path)

    monkeypatch.setattr(module, "save", save)
    return figs


def points(ax, label: str) -> np.ndarray:
    """x, y of the scatter with legend label ``label``."""
    (coll,) = [c for c in ax.collections if c.get_label() == label]
    return np.asarray(coll.get_offsets())


def forest_rows(ax, label: str) -> dict[str, float]:
    """Forest plot of :func:`bayes_pool.report.forest`: x of the ``label`` (source) markers by
    the y tick label of their row."""
    ticks = dict(zip(np.round(ax.get_yticks(), 6), (t.get_text() for t in ax.get_yticklabels())))
    out = {}
    for x, y in points(ax, label):
        row = min(ticks, key=lambda t: abs(t - y))  # markers sit +-0.2 around their row
        out[ticks[row]] = float(x)
    return out
