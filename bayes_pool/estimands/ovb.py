r"""Omitted-variable robustness of an OLS coefficient from its t-statistic (Cinelli & Hazlett 2020).

With ``f = t / sqrt(dof)`` (the partial Cohen's f of the treatment with the outcome):

- partial R^2 of the treatment with the outcome, ``R2_{Y~D|X} = t^2 / (t^2 + dof)`` (their
  eq. 12 with ``f^2 = R2 / (1 - R2)``);
- robustness value ``RV_q = (sqrt(f_q^4 + 4 f_q^2) - f_q^2) / 2`` with ``f_q = q |f|`` (eq. 18):
  the partial R^2 a confounder would need with both treatment and outcome to cut the estimate
  by ``100 q`` percent;
- ``RV_{q,alpha}`` (eq. 19): the same with ``f_{q,alpha} = q |f| - |t*_{alpha/2, dof-1}| /
  sqrt(dof - 1)`` in place of ``f_q`` -- the partial R^2 that would make the ``1 - alpha``
  interval reach ``(1 - q)`` times the estimate; 0 if it already does. Where ``q |f|`` exceeds
  ``1 / f_crit`` the bound on the outcome's partial R^2 binds and ``RV = (f_q^2 - f_crit^2) /
  (1 + f_q^2)``, as ``sensemakr`` computes it.

References
----------
Cinelli, C. & Hazlett, C. (2020). Making sense of sensitivity: extending omitted variable bias.
*JRSS B* 82(1), 39-67. doi:10.1111/rssb.12348
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import InputError


def partial_r2(t: float, dof: float) -> float:
    """Partial R^2 of the treatment with the outcome, ``t^2 / (t^2 + dof)``."""
    _check(t, dof)
    return float(t * t / (t * t + dof))


def robustness_value(t: float, dof: float, *, q: float = 1.0, alpha: float | None = None
                     ) -> float:
    """``RV_q`` (``alpha=None``) or ``RV_{q,alpha}``, as a share (0.139 = 13.9%)."""
    _check(t, dof)
    if q <= 0:
        raise InputError("q: the share of the estimate a confounder must remove must be > 0")
    fq = q * abs(t) / np.sqrt(dof)
    if alpha is None:
        return _rv(fq)
    if not 0 < alpha < 1:
        raise InputError("alpha: the significance level must be in (0, 1)")
    f_crit = abs(stats.t.ppf(alpha / 2.0, dof - 1)) / np.sqrt(dof - 1)
    if fq <= f_crit:
        return 0.0
    if fq > 1.0 / f_crit:
        return float((fq ** 2 - f_crit ** 2) / (1.0 + fq ** 2))
    return _rv(fq - f_crit)


def _rv(f: float) -> float:
    return float((np.sqrt(f ** 4 + 4.0 * f ** 2) - f ** 2) / 2.0)


def _check(t: float, dof: float) -> None:
    if not np.isfinite(t) or not np.isfinite(dof) or dof <= 1:
        raise InputError("t and dof: need a finite t-statistic and residual degrees of freedom "
                         "> 1 (n minus the number of regressors)")
