r"""Frequentist event study (Zhang & Chen 2024, Eq. 5): TWFE logit with event-time dummies.

.. math::

    \operatorname{logit} P(y_{it}=1) = \sum_{k \ne -1} \alpha_k 1[e_{it} = k]
    + X_{it}\gamma + \lambda_t + \mu_{k(i)}

with event time :math:`e_{it}` binned at the window's end points and the period before
adoption as reference (:mod:`bayes_pool.design.staggered` builds it and documents which
units fill which bin). statsmodels logit with unit and time dummies, SEs clustered by unit as
Stata's ``logit, vce(cluster)`` computes them (G/(G - 1); or model-based,
``cov_type="nonrobust"``: with a few switching units clustered SEs are too small); a linear outcome's clustered SEs are CRV1 as fixest / ``reghdfe`` with t(G - 1)
inference, as :mod:`bayes_pool.freq.did`. Besides each :math:`\alpha_k` (quantity ``beta``),
the ``ame`` of bin :math:`k` is the average over the rows in that bin of :math:`p - p^{(0)}`,
the fitted probability with and without the bin's dummy (delta-method SE): the event-time
effect on the probability scale.

Control groups (:func:`event_times`): ``control="never"`` estimates leads and lags around the
reference period -1 (the paper's Eq. 5; treated units' earlier rows enter only through the
lead bins, so never-treated units and the reference period identify the time effects);
``control="notyet"`` (the default, as R ``etwfe``) estimates the lags only, so the
pre-adoption rows of later adopters are controls too, and no lead is reported. Unit levels are
absorbed by unit dummies, or by cohort dummies for a logit on short panels
(:func:`bayes_pool.design.staggered.effect_level`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_pool import estimates
from bayes_pool.design.staggered import (DEFAULT_CONTROL, FIRST, Control, Level,
                                        PreparedStaggered, es_control_note, event_label,
                                        event_term, event_times, resolve_level)
from bayes_pool.freq.etwfe import CovType, fit_logit_dummies, se_note, switch_off_effects
from bayes_pool.freq.ols import critical_value, inference_df, quoted


@dataclass
class FreqEventStudyResult:
    """A fitted TWFE event study: statsmodels result, per-bin effects and the sample used."""

    prepared: PreparedStaggered
    result: object
    effects: pd.DataFrame
    bin_n: dict[int, int]
    n_obs: int
    dropped_units: tuple[str, ...]
    cov_type: str
    control: str = DEFAULT_CONTROL
    level_reason: str = ""

    def tidy(self, *, study: str, table: str = "event_study", column: str = "") -> pd.DataFrame:
        """Rows per estimated event time ``k``: column ``event_time_<k>`` (prefixed by
        ``column`` when given), term the treatment, quantities ``beta`` and ``ame``."""
        d = self.prepared.design
        z = critical_value(self.result)
        lo, hi = d.window
        note = (f"TWFE event study; {es_control_note(self.control, d.reference)}; "
                f"{self.level_reason}; {se_note(self.cov_type, d)}")
        if self.prepared.always_treated:
            note += (f"; always-treated {d.unit}s left out: "
                     f"{', '.join(self.prepared.always_treated)}")
        if self.dropped_units:
            note += f"; dropped {len(self.dropped_units)} {d.unit}(s) whose outcome never varies"
        rows = []
        for k in self.bin_n:  # the event times estimated
            col = event_label(k) if not column else f"{column}_{event_label(k)}"
            bin_note = note + (f"; binned: event time <= {k}" if k == lo else
                               f"; binned: event time >= {k}" if k == hi else "")
            key = quoted(event_term(k))
            b, s = float(self.result.params[key]), float(self.result.bse[key])
            rows.append(estimates.row(
                study=study, table=table, column=col, term=d.treatment, quantity="beta",
                source="frequentist", estimate=b, se=s, ci_low=b - z * s, ci_high=b + z * s,
                p_value=float(self.result.pvalues[key]), n_obs=self.n_obs, note=bin_note))
            e = self.effects.loc[event_label(k)]
            rows.append(estimates.row(
                study=study, table=table, column=col, term=d.treatment, quantity="ame",
                source="frequentist", estimate=e["estimate"], se=e["se"],
                ci_low=e["estimate"] - z * e["se"], ci_high=e["estimate"] + z * e["se"],
                p_value=e["p_value"], n_obs=self.bin_n[k],
                note=bin_note + "; average over the bin's rows of p - p(dummy off); delta method"))
        return estimates.frame(rows)


def fit_event_study(prepared: PreparedStaggered, *, cov_type: CovType = "cluster",
                    control: Control = DEFAULT_CONTROL, level: Level | None = None
                    ) -> FreqEventStudyResult:
    """Fit the TWFE event-study logit (OLS for ``gaussian``) on the event sample."""
    d = prepared.design
    level, reason = resolve_level(prepared, level)
    times = event_times(prepared, control)
    terms = [event_term(k) for k in times]
    result, used, dropped = fit_logit_dummies(
        prepared.event_frame, outcome=d.outcome, unit=d.unit, rhs=[*terms, *d.covariates],
        family=d.family, cov_type=cov_type, level_column=d.unit if level == "unit" else FIRST,
        time=d.time)
    names = list(result.model.exog_names)
    targets, bin_n = {}, {}
    for k, term in zip(times, terms):
        rows = np.flatnonzero(used[term].to_numpy() == 1)
        bin_n[k] = len(rows)
        targets[event_label(k)] = (rows, [names.index(quoted(term))])
    effects = switch_off_effects(np.asarray(result.params), np.asarray(result.cov_params()),
                                 np.asarray(result.model.exog), targets, family=d.family,
                                 df=inference_df(result))
    return FreqEventStudyResult(prepared=prepared, result=result, effects=effects, bin_n=bin_n,
                                n_obs=int(result.nobs), dropped_units=dropped,
                                cov_type=cov_type, control=control, level_reason=reason)
