"""Event study and staggered-robust DiD three ways, for any staggered-adoption frame.

:func:`analyse_event_study` (Fig. 2 of Zhang & Chen 2024) and :func:`analyse_staggered`
(Wooldridge's extended TWFE beside the TWFE benchmark) fit the frequentist replication and the
Bayesian model on the same prepared design and return a :class:`~bayes_pool.workflow.Analysis`.
The study pipelines and the generic ``bayes-pool did --cohort COL`` call these. The cohort
column holds each unit's adoption time (first treated time), 0 or empty if never treated; a
study whose data hold adoption years by unit derives it with
``frame["cohort"] = cohort_from_mapping(frame[unit], adoption_year_by_unit)``
(:func:`bayes_pool.event_time.cohort_from_mapping`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from bayes_pool import estimates
from bayes_pool.bayes import etwfe as bayes_etwfe
from bayes_pool.bayes import event_study as bayes_es
from bayes_pool.categorical import expand
from bayes_pool.design.staggered import DEFAULT_CONTROL, Control, StaggeredDesign, coverage_text
from bayes_pool.freq import etwfe as freq_etwfe
from bayes_pool.freq import event_study as freq_es
from bayes_pool.specs import ModelSpec, load_spec
from bayes_pool.workflow import Analysis

log = logging.getLogger(__name__)

DEFAULT_SPECS = {"bernoulli": "did_logit", "gaussian": "did_linear"}
"""Spec used when none is given: the DiD spec of the family (priors by role)."""


def _child_seed(seed: int, index: int) -> int:
    """Deterministic child seed ``index`` of the root ``seed`` (numpy SeedSequence)."""
    return int(np.random.SeedSequence(seed).spawn(index + 1)[index].generate_state(1)[0])


def _prepare(frame, outcome, treatment, unit, time, cohort, covariates, family, period_length,
             window, categorical=(), reference=None):
    """The prepared staggered design, categorical covariates replaced by their indicators
    (:func:`bayes_pool.categorical.expand`), and the expansion's record for the facts."""
    ex = expand(frame, covariates, categorical=categorical, reference=reference,
                required=(outcome, treatment, unit, time))
    design = StaggeredDesign(outcome=outcome, treatment=treatment, unit=unit, time=time,
                             cohort=cohort, covariates=ex.covariates, family=family,
                             period_length=period_length, window=tuple(window))
    return design.prepare(ex.frame), ex.record


def _facts(prepared) -> dict:
    d = prepared.design
    return {"n_input": prepared.n_input, "n_complete": prepared.n_obs,
            "n_incomplete_dropped": prepared.n_incomplete,
            "n_event_sample": len(prepared.event_frame),
            "period_length": prepared.period_length, "window": list(d.window),
            "reference": d.reference, "always_treated_left_out": list(prepared.always_treated),
            "switchers": list(prepared.switchers),
            "never_treated": len(prepared.never_treated),
            "coverage": coverage_text(prepared), "notes": list(prepared.notes)}


def _analysis(prepared, expanded: dict, freq, fit, *, facts: dict, bayesian: bool,
              spec: ModelSpec | None, seed: int, study: str, table: str, control: Control,
              progressbar: bool) -> Analysis:
    """The frequentist fit's rows and, unless ``bayesian`` is False, the rows of the Bayesian
    ``fit`` (the event study's or the extended TWFE's; ``spec`` default: the family's DiD
    spec), with the posterior and the facts (``facts`` added to the shared ones) keyed by
    ``table``."""
    rows = [freq.tidy(study=study, table=table)]
    facts = _facts(prepared) | {"categorical": expanded, "control": control,
                                "level": freq.level_reason, **facts,
                                "frequentist_dropped_units": list(freq.dropped_units)}
    posteriors = {}
    if bayesian:
        spec = spec or load_spec(DEFAULT_SPECS[prepared.design.family])
        bay = fit(prepared, spec, seed=seed, control=control, progressbar=progressbar)
        rows.append(bay.tidy(study=study, table=table))
        posteriors[table] = bay.idata
        facts |= {"divergences": bay.divergences, "formula": str(bay.model.formula),
                  "seed": seed, "bayesian_unit_structure": bay.structure}
    return Analysis(estimates=estimates.concat(*rows), posteriors=posteriors,
                    facts={table: facts})


def analyse_event_study(frame: pd.DataFrame, *, outcome: str, treatment: str, unit: str,
                        time: str, cohort: str, covariates=(), family: str = "bernoulli",
                        seed: int, study: str, spec: ModelSpec | None = None,
                        progressbar: bool = False, bayesian: bool = True,
                        cov_type: str = "cluster", period_length: int | None = None,
                        window: tuple[int, int] = (-2, 4), control: Control = DEFAULT_CONTROL,
                        categorical=(), reference: dict[str, str] | None = None,
                        table: str = "event_study") -> Analysis:
    """Event study: frequentist TWFE logit and Bayesian hierarchical logit.

    Rows of ``table``: column ``event_time_<k>``, term ``treatment``, quantities ``beta`` and
    ``ame``, one per estimated event time (reference period and bins filled only by
    always-treated units left out; ``facts[table]["coverage"]`` says which units fill which
    bin); the posterior and the facts are keyed by ``table`` too. ``control``:
    ``notyet`` (default, as R ``etwfe``) estimates the lags only; ``never`` leads and lags.
    Categorical covariates (and numeric ones named in ``categorical``) enter as 0/1
    indicators, ``reference`` choosing their reference levels (:mod:`bayes_pool.categorical`).
    """
    prepared, expanded = _prepare(frame, outcome, treatment, unit, time, cohort, covariates,
                                  family, period_length, window, categorical, reference)
    for note in prepared.notes:
        log.info("event study: %s", note)
    freq = freq_es.fit_event_study(prepared, cov_type=cov_type, control=control)
    analysis = _analysis(prepared, expanded, freq, bayes_es.fit_event_study, facts={},
                         bayesian=bayesian, spec=spec, seed=_child_seed(seed, 0), study=study,
                         table=table, control=control, progressbar=progressbar)
    from bayes_pool.robustness_workflow import event_study_pieces
    analysis.robustness = event_study_pieces(freq, analysis.posteriors.get(table), table=table)
    analysis.results[f"{table}_frequentist"] = freq  # for a later parallel-trends refit
    return analysis


def analyse_staggered(frame: pd.DataFrame, *, outcome: str, treatment: str, unit: str,
                      time: str, cohort: str, covariates=(), family: str = "bernoulli",
                      seed: int, study: str, spec: ModelSpec | None = None,
                      progressbar: bool = False, bayesian: bool = True,
                      cov_type: str = "cluster", control: Control = DEFAULT_CONTROL,
                      period_length: int | None = None,
                      window: tuple[int, int] = (-2, 4), categorical=(),
                      reference: dict[str, str] | None = None,
                      table: str = "staggered") -> Analysis:
    """Staggered-robust DiD (rows, posterior and facts labelled ``table``): ETWFE ATT overall
    (column ``etwfe``) and per cohort x period cell (column ``g<g>_t<t>``), frequentist and
    Bayesian, beside the frequentist TWFE AME (column ``twfe``), all with term ``treatment``,
    quantity ``att``. Always-treated cohorts are left out of ETWFE (never seen untreated).
    ``control``: ``notyet`` (default, as R ``etwfe``) or ``never``; a logit on short panels
    takes cohort dummies instead of unit effects (:func:`bayes_pool.event_time.effect_level`).
    Categorical covariates as in :func:`analyse_event_study`."""
    prepared, expanded = _prepare(frame, outcome, treatment, unit, time, cohort, covariates,
                                  family, period_length, window, categorical, reference)
    freq = freq_etwfe.fit_etwfe(prepared, control=control, cov_type=cov_type)
    return _analysis(prepared, expanded, freq, bayes_etwfe.fit_etwfe,
                     facts={"cells": sorted(freq.cell_n), "cell_n": freq.cell_n},
                     bayesian=bayesian, spec=spec, seed=_child_seed(seed, 1), study=study,
                     table=table, control=control, progressbar=progressbar)
