r"""E-values for a ratio estimate and its confidence limit (VanderWeele & Ding 2017).

The E-value of a risk ratio ``RR >= 1`` is ``RR + sqrt(RR (RR - 1))``: the risk ratio an
unmeasured confounder would need with both treatment and outcome, above the measured
covariates, to explain the estimate away. A protective ``RR < 1`` is inverted first. For the
confidence interval the limit closest to 1 is used (E-value 1 if the interval contains 1).
An odds ratio is taken as a risk ratio when the outcome is rare (< 15% at the end of follow-up);
for a common outcome it is first converted by ``RR ~ sqrt(OR)`` (their Table, after
VanderWeele 2017's square-root approximation).

References
----------
VanderWeele, T. J. & Ding, P. (2017). Sensitivity analysis in observational research:
introducing the E-value. *Annals of Internal Medicine* 167(4), 268-274. doi:10.7326/M16-2607
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

MEASURES = ("RR", "OR")


def as_risk_ratio(estimate: float, measure: str = "RR", *, rare: bool = True) -> float:
    """The risk ratio the E-value formula takes: ``RR``, a rare outcome's ``OR``, or
    ``sqrt(OR)`` for a common outcome."""
    if measure not in MEASURES:
        raise InputError(f"measure: {measure!r} is not one of {MEASURES}")
    if not np.isfinite(estimate) or estimate <= 0:
        raise InputError("estimate: a risk or odds ratio must be a positive number")
    return float(estimate if measure == "RR" or rare else np.sqrt(estimate))


def e_value_rr(rr: float) -> float:
    """E-value of a risk ratio (a ratio below 1 is inverted first)."""
    r = rr if rr >= 1 else 1.0 / rr
    return float(r + np.sqrt(r * (r - 1.0)))


def e_values(estimate: float, lower: float | None = None, upper: float | None = None, *,
             measure: str = "RR", rare: bool = True) -> dict[str, float]:
    """E-value of the point estimate and of the confidence limit closest to the null."""
    rr = as_risk_ratio(estimate, measure, rare=rare)
    out = {"risk_ratio": rr, "e_value": e_value_rr(rr), "e_value_ci": np.nan}
    limit = lower if estimate >= 1 else upper
    if limit is not None:
        rr_limit = as_risk_ratio(limit, measure, rare=rare)
        crosses = rr_limit <= 1 if rr >= 1 else rr_limit >= 1
        out["e_value_ci"] = 1.0 if crosses else e_value_rr(rr_limit)
    return out
