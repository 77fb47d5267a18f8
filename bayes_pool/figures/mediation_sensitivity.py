"""Figure of a mediation's sensitivity to sequential ignorability: the indirect effect (ACME)
against the error correlation rho, with its interval, the rho where it crosses zero and the
published estimate (which assumes rho = 0) marked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayes_pool.figures import COLORS, banner, save, subplots

LABELS = {"acme": "indirect effect (ACME)", "ade": "direct effect (ADE)"}


def plot_rho_curve(curve: pd.DataFrame, path: str | Path, **kwargs) -> Path:
    """Write :func:`rho_figure` as a PNG and return its path."""
    return save(rho_figure(curve, **kwargs), path)


def rho_figure(curve: pd.DataFrame | None, *, bayesian: pd.DataFrame | None = None,
               published: float | None = None, effect: str = "acme",
               title: str = "Sensitivity to sequential ignorability", synthetic: bool = False):
    """``effect`` (``"acme"`` or ``"ade"``) against rho: the frequentist curve
    (:func:`bayes_pool.robustness.mediation_sensitivity_summary`) and/or the Bayesian one
    (:func:`bayes_pool.robustness.mediation_rho_posterior`), each a line with its interval
    band where the curve has ``<effect>_lower`` / ``_upper``; a dotted vertical line at each
    curve's ``attrs["rho_at_zero"]`` (where the ACME is 0); ``published`` as a black star at
    rho = 0. Returns the open figure."""
    curves = {k: c for k, c in (("frequentist", curve), ("bayesian", bayesian)) if c is not None}
    if not curves:
        raise ValueError("give a frequentist curve, a Bayesian one or both")
    if effect not in LABELS:
        raise ValueError(f"effect: one of {sorted(LABELS)}, got {effect!r}")
    fig, ax = subplots(figsize=(6.5, 4.2))
    for source, c in curves.items():
        color = COLORS[source]
        ax.plot(c["rho"], c[effect], color=color, label=f"{source} {effect.upper()}(rho)")
        if {f"{effect}_lower", f"{effect}_upper"} <= set(c.columns):
            ax.fill_between(c["rho"], c[f"{effect}_lower"], c[f"{effect}_upper"], color=color,
                            alpha=0.2, lw=0)
        rho0 = c.attrs.get("rho_at_zero")
        if rho0 is not None:
            ax.axvline(rho0, color=color, ls=":", lw=1.2,
                       label=f"ACME = 0 at rho = {rho0:.2f} ({source})")
    if published is not None:
        ax.scatter([0.0], [published], marker="*", s=140, color=COLORS["published"], zorder=4,
                   label=f"published estimate ({published:.3g}, rho = 0)")
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("rho: correlation of the mediator and outcome errors")
    ax.set_ylabel(LABELS[effect])
    ax.set_title(banner(title, synthetic), fontsize=10)
    ax.legend(loc="best", fontsize=7)
    return fig
