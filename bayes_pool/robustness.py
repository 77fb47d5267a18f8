"""How robust is an estimate to its identifying assumption? The Python API of the breakdown numbers.

- :func:`rosenbaum_bounds` -- unconfoundedness of a matched estimate: Rosenbaum bounds for the
  Wilcoxon signed-rank test and the Hodges-Lehmann estimate over a grid of Gamma (Rosenbaum
  2002, ch. 4; Stata's ``rbounds`` after ``psmatch2``) and the breakdown Gamma.
- :func:`robustness_value` -- unconfoundedness of an OLS coefficient: partial R^2 and the
  robustness values (Cinelli & Hazlett 2020).
- :func:`e_value` -- unconfoundedness of a risk or odds ratio (VanderWeele & Ding 2017).
- :func:`mediation_rho_curve` -- sequential ignorability of a linear/linear mediation: ACME as a
  function of the error correlation rho (Imai, Keele & Yamamoto 2010).

The numerics live in :mod:`bayes_pool.estimands` (numpy/scipy, no models); this module only
shapes their results into tables and dicts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .estimands import evalue, mediation_sensitivity, ovb, rosenbaum
from .errors import InputError

DEFAULT_GAMMAS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
DEFAULT_RHOS = np.round(np.linspace(-0.9, 0.9, 37), 10)


def rosenbaum_bounds(differences, gammas=DEFAULT_GAMMAS, *, alpha: float = 0.05,
                     zeros: rosenbaum.Zeros = "drop") -> pd.DataFrame:
    """Rosenbaum bounds for matched treated-minus-control differences, one row per Gamma.

    ``differences``: one per treated unit (with k-NN matching, the treated outcome minus the
    mean of its matched controls: :func:`bayes_pool.estimands.rosenbaum.matched_differences`).
    Columns: ``gamma``, ``p_upper`` / ``p_lower`` (bounds on the one-sided signed-rank P-value
    of no effect against a positive effect), ``hl_low`` / ``hl_high`` (bounds on the
    Hodges-Lehmann estimate), ``ci_low`` / ``ci_high`` (bounds on the two-sided ``1 - alpha``
    interval). ``attrs["breakdown_gamma"]`` is the Gamma at which ``p_upper`` reaches ``alpha``
    (continuous, not restricted to the grid). Ties as R's ``rbounds`` (``zeros="drop"``) or as
    Rosenbaum (2002) (``zeros="rank"``). Source: Rosenbaum (2002), *Observational Studies*,
    ch. 4; DiPrete & Gangl (2004).
    """
    table = pd.DataFrame(rosenbaum.rosenbaum_table(differences, gammas, alpha=alpha, zeros=zeros))
    table.attrs["breakdown_gamma"] = rosenbaum.breakdown_gamma(differences, alpha=alpha,
                                                               zeros=zeros)
    table.attrs["alpha"] = alpha
    return table


def robustness_value(t: float, dof: float, q: float = 1.0, alpha: float = 0.05) -> dict:
    """Partial R^2 of the treatment with the outcome, ``RV_q`` and ``RV_{q,alpha}`` of an OLS
    coefficient from its t-statistic and residual degrees of freedom (shares, not percent).

    Source: Cinelli & Hazlett (2020), *JRSS B* 82(1), eqs. 18-19.
    """
    return {"t": float(t), "dof": float(dof), "q": q, "alpha": alpha,
            "partial_r2": ovb.partial_r2(t, dof),
            "rv_q": ovb.robustness_value(t, dof, q=q),
            "rv_q_alpha": ovb.robustness_value(t, dof, q=q, alpha=alpha)}


def e_value(estimate: float, lower: float | None = None, upper: float | None = None, *,
            measure: str = "RR", rare: bool = True) -> dict:
    """E-value of a risk ratio (``measure="RR"``) or odds ratio (``"OR"``; ``rare=False``
    converts a common outcome's OR by its square root) and of its CI limit nearest 1.

    Source: VanderWeele & Ding (2017), *Annals of Internal Medicine* 167(4), 268-274.
    """
    return evalue.e_values(estimate, lower, upper, measure=measure, rare=rare)


def mediation_rho_curve(b2: float, g: float, sigma_m: float, sigma_y: float, b3: float = 0.0,
                        rhos=DEFAULT_RHOS) -> pd.DataFrame:
    """ACME and ADE of a linear/linear mediation as functions of ``rho = corr(e_M, e_Y)``.

    From the mediator fit (``b2``: treatment coefficient, ``sigma_m``: residual SD) and the
    outcome fit (``g``: mediator coefficient, ``b3``: treatment coefficient, ``sigma_y``:
    residual SD on the same scale as ``sigma_m``). Columns ``rho``, ``acme``, ``ade``;
    ``attrs["rho_at_zero"]`` is the rho at which the ACME vanishes. Source: Imai, Keele &
    Yamamoto (2010), *Statistical Science* 25(1), sec. 4 (Theorem 2).
    """
    r = np.asarray(rhos, dtype=float)
    if r.ndim != 1 or r.size == 0:
        raise InputError("rhos: give a one-dimensional grid of error correlations in (-1, 1)")
    acme = mediation_sensitivity.acme_at(r, b2, g, sigma_m, sigma_y)
    curve = pd.DataFrame({"rho": r, "acme": acme, "ade": b3 + b2 * g - acme})
    curve.attrs["rho_at_zero"] = mediation_sensitivity.rho_at_zero(g, sigma_m, sigma_y)
    return curve
