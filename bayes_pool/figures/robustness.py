"""Robustness figures: the estimate against the sensitivity parameter of its identifying
assumption (Gamma, confounder strength, partial R^2, rho, Mbar), the breakdown value and the
published estimate marked. One function per analysis; :func:`plot_piece` picks it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bayes_pool.figures import COLORS, banner, save, subplots


def plot_piece(piece, path: str | Path, *, synthetic: bool, published: float | None = None,
               title: str = "") -> Path:
    """The figure of a :class:`bayes_pool.robustness_workflow.Piece`."""
    draw = DRAWERS[piece.analysis]
    fig, ax = subplots(figsize=(6.5, 4.0))
    c = piece.cell
    label = f"{c['table']} {c['column']}: {c['quantity']} of {c['term']}"
    draw(ax, piece)
    if piece.breakdown is not None:
        ax.axvline(piece.breakdown, color="grey", ls=":", lw=1)
        ax.annotate(f"breakdown {piece.parameter} = {piece.breakdown:.3g}",
                    (piece.breakdown, 0.02), xycoords=("data", "axes fraction"), fontsize=7,
                    rotation=90, ha="right", va="bottom")
    if published is not None and np.isfinite(published) and piece.analysis != "e_value":
        ax.scatter([ax.get_xlim()[0]], [published], marker="D", color=COLORS["published"],
                   zorder=4, clip_on=False, label="published")
    ax.legend(fontsize=7, loc="best")
    heading = f"{title}\n{label}" if title else label
    ax.set_title(banner(heading, synthetic), fontsize=8)
    return save(fig, path)


def _rosenbaum(ax, p) -> None:
    t = p.curve
    ax.fill_between(t["gamma"], t["ci_low"], t["ci_high"], color=COLORS["frequentist"],
                    alpha=0.15, label="95% CI bounds")
    ax.plot(t["gamma"], t["hl_low"], color=COLORS["frequentist"], label="Hodges-Lehmann bounds")
    ax.plot(t["gamma"], t["hl_high"], color=COLORS["frequentist"])
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("Gamma: odds of treatment within a matched pair, at most")
    ax.set_ylabel("treated-minus-matched effect")


def _robustness_value(ax, p) -> None:
    t = p.curve
    ax.fill_between(t["partial_r2"], t["adjusted_low"], t["adjusted_high"],
                    color=COLORS["frequentist"], alpha=0.15, label="95% CI, adjusted")
    ax.plot(t["partial_r2"], t["adjusted"], color=COLORS["frequentist"], label="adjusted estimate")
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("partial R2 of a confounder with treatment and with outcome")
    ax.set_ylabel("OLS coefficient adjusted for the confounder")


def _e_value(ax, p) -> None:
    t = p.curve
    ax.plot(t["confounder_rr"], t["adjusted_rr"], color=COLORS["frequentist"],
            label="risk ratio explained away (sqrt OR)")
    ax.plot(t["confounder_rr"], t["adjusted_ci_limit"], color=COLORS["frequentist"], ls="--",
            label="its 95% limit nearest 1")
    ax.axhline(1, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("confounder: risk ratio with treatment and with outcome")
    ax.set_ylabel("largest ratio left after the confounder")


def _mediation_rho(ax, p) -> None:
    t = p.curve
    if {"acme_lower", "acme_upper"} <= set(t.columns):
        ax.fill_between(t["rho"], t["acme_lower"], t["acme_upper"], color=COLORS["bayesian"],
                        alpha=0.15, label="95% interval")
    ax.plot(t["rho"], t["acme"], color=COLORS["frequentist"], label="indirect effect (ACME)")
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("rho: correlation of mediator and outcome errors")
    ax.set_ylabel("indirect effect")


def _parallel_trends(ax, p) -> None:
    t = p.curve[p.curve["mbar"].notna()]  # rows without Mbar assume parallel trends
    for i, (method, part) in enumerate(t.groupby("method", sort=False)):
        colour = COLORS["bayesian"] if "bayes" in str(method).lower() else COLORS["frequentist"]
        x = part["mbar"] + 0.012 * i
        if "mean" in part and part["mean"].notna().any():
            ax.plot(x, part["mean"], color=colour, lw=0.8)
        ax.vlines(x, part["lower"], part["upper"], color=colour, label=str(method),
                  alpha=0.4 if "bounds" in str(method) else 1.0)
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("Mbar: post-period violation relative to the largest pre-period one")
    ax.set_ylabel("post-period effect, adjusted")


DRAWERS = {"rosenbaum": _rosenbaum, "robustness_value": _robustness_value, "e_value": _e_value,
           "mediation_rho": _mediation_rho, "parallel_trends": _parallel_trends}
