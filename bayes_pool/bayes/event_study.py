r"""Bayesian event study (Zhang & Chen 2024, Eq. 5) with Bambi: event-time dummies, time
effects and partially pooled unit intercepts (correlated random effects by default), or cohort
dummies for a logit on short panels -- the unit structure and control groups of
:mod:`bayes_pool.bayes.etwfe` and :mod:`bayes_pool.freq.event_study`.

.. math::

    \operatorname{logit} P(y_{it}=1) = \alpha + \sum_{k \ne -1} \alpha_k 1[e_{it} = k]
    + X_{it}\gamma + \lambda_t + u_{k(i)}, \qquad u_k \sim N(0, \sigma_u^2)

Event time, bins and the units that identify each bin come from
:mod:`bayes_pool.design.staggered`; priors by role from the DiD spec (each :math:`\alpha_k`
takes the ``treatment`` prior). The ``ame`` of bin :math:`k` is computed within each draw: the
average over the bin's rows of :math:`p - p^{(0)}`, :math:`p^{(0)}` with :math:`\alpha_k`
removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import bambi as bmb
import numpy as np
import pandas as pd

from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.etwfe import add_switch_off_draws, build_model, sample
from bayes_pool.design.staggered import (DEFAULT_CONTROL, Control, Level, PreparedStaggered,
                                        es_control_note, event_label, event_term, event_times,
                                        resolve_level)
from bayes_pool.specs import ModelSpec


@dataclass
class BayesEventStudyResult:
    """A sampled Bayesian event study with per-draw bin effects (``ame_event_<m|p><k>``)."""

    prepared: PreparedStaggered
    spec: ModelSpec
    model: bmb.Model
    idata: object
    bin_n: dict[int, int]
    control: str
    structure: dict

    @property
    def divergences(self) -> int:
        return divergences(self.idata)

    def tidy(self, *, study: str, table: str = "event_study", column: str = "") -> pd.DataFrame:
        """Rows per estimated event time ``k``: column ``event_time_<k>``, quantities ``beta``
        and ``ame``, each with R-hat, ESS and divergences."""
        d = self.prepared.design
        lo, hi = d.window
        base = (f"Bayesian event study, Bambi {d.family}; "
                f"{es_control_note(self.control, d.reference)}; {self.structure['level']}; "
                f"{self.structure['unit_structure']}; {self.spec.sampler.backend}")
        if self.prepared.always_treated:
            base += (f"; always-treated {d.unit}s left out: "
                     f"{', '.join(self.prepared.always_treated)}")
        parts = []
        for k in self.bin_n:  # the event times estimated
            term = event_term(k)
            col = event_label(k) if not column else f"{column}_{event_label(k)}"
            note = base + (f"; binned: event time <= {k}" if k == lo else
                           f"; binned: event time >= {k}" if k == hi else "")
            beta = posterior_rows(self.idata, {term: (d.treatment, "beta")},
                                  thresholds=self.spec.convergence, study=study, table=table,
                                  column=col, n_obs=len(self.prepared.event_frame), note=note)
            ame = posterior_rows(self.idata, {f"ame_{term}": (d.treatment, "ame")},
                                 thresholds=self.spec.convergence, study=study, table=table,
                                 column=col, n_obs=self.bin_n[k],
                                 note=note + "; average over the bin's rows of p - p(dummy off)")
            parts += [beta, ame]
        return pd.concat(parts, ignore_index=True)


def fit_event_study(prepared: PreparedStaggered, spec: ModelSpec, *, seed: int,
                    control: Control = DEFAULT_CONTROL, level: Level | None = None,
                    progressbar: bool = False) -> BayesEventStudyResult:
    """Sample the event-study posterior on the event sample and add the per-draw bin effects."""
    d = prepared.design
    level, reason = resolve_level(prepared, level)
    times = event_times(prepared, control)
    terms = [event_term(k) for k in times]
    model, frame, structure = build_model(
        prepared.event_frame, outcome=d.outcome, effects=terms, covariates=d.covariates,
        unit=d.unit, time=d.time, family=d.family, spec=spec, level=level)
    idata, sampled = sample(model, spec, seed=seed, unit=d.unit, progressbar=progressbar)
    targets = {f"ame_{t}": (np.flatnonzero(frame[t].to_numpy() == 1), [t]) for t in terms}
    add_switch_off_draws(model, idata, frame, d.family, targets)
    return BayesEventStudyResult(prepared=prepared, spec=spec, model=model, idata=idata,
                                 bin_n={k: int(frame[event_term(k)].sum()) for k in times},
                                 control=control,
                                 structure={"level": reason, **structure, **sampled})
