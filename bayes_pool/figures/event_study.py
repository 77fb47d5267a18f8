"""Event-study figure in the style of Zhang & Chen's Fig. 2: coefficient against event time,
frequentist and Bayesian side by side, the reference period drawn at 0."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bayes_pool.estimates import CI_PROB
from bayes_pool.figures import COLORS, banner, save, subplots

_EVENT = re.compile(r"event_time_(-?\d+)$")


def plot_event_study(est: pd.DataFrame, path: str | Path, *, quantity: str = "beta",
                     reference: int = -1, title: str = "Event study",
                     synthetic: bool = False, table: str = "event_study") -> Path:
    """Dot-and-interval plot of the ``table`` rows of one ``quantity`` against event time.

    Columns must read ``event_time_<k>``; the reference period is drawn at 0 without an
    interval, unconverged posteriors hollow. Writes a PNG and returns its path.
    """
    rows = est[(est["table"] == table) & (est["quantity"] == quantity)
               & est["source"].isin(list(COLORS))]
    rows = rows.assign(k=rows["column"].str.extract(_EVENT, expand=False).astype(float))
    rows = rows[rows["k"].notna()]
    if rows.empty:
        raise ValueError(f"no {quantity!r} rows of table {table!r} with columns "
                         "event_time_<k>")
    fig, ax = subplots(figsize=(6.5, 4))
    for offset, source in ((-0.08, "frequentist"), (0.08, "bayesian")):
        r = rows[rows["source"] == source].sort_values("k")
        if r.empty:
            continue
        ok = r["converged"].fillna(True).astype(bool) if source == "bayesian" else None
        ax.vlines(r["k"] + offset, r["ci_low"], r["ci_high"], color=COLORS[source])
        face = [COLORS[source] if ok is None or flag else "white"
                for flag in (ok if ok is not None else [True] * len(r))]
        ax.scatter(r["k"] + offset, r["estimate"], color=face, edgecolors=COLORS[source],
                   zorder=3, label=source)
    ax.scatter([reference], [0.0], color="black", marker="D", zorder=3, label="reference")
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.axvline(reference + 0.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("event time (periods since adoption)")
    ax.set_ylabel(f"{quantity}, {int(CI_PROB * 100)}% interval")
    ax.set_title(banner(title, synthetic), fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return save(fig, path)
