"""One mediation analysis two ways: the frequentist stepwise regressions with a cluster
bootstrap, and the joint Bayesian model, on the same complete-case sample.

:func:`analyse_mediation` is what a study pipeline (once per mediator) and the generic
``bayes-pool mediate`` command call. It is generic: a DataFrame and
column names, never a study.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from bayes_pool import estimates
from bayes_pool.bayes import mediation as bayes_mediation
from bayes_pool.categorical import expand
from bayes_pool.errors import InputError
from bayes_pool.freq import mediation as freq_mediation
from bayes_pool.freq.indices import pca_index
from bayes_pool.workflow import Analysis

log = logging.getLogger(__name__)


def _spec(spec) -> bayes_mediation.MediationSpec:
    if isinstance(spec, bayes_mediation.MediationSpec):
        return spec
    return bayes_mediation.load_mediation_spec("mediation" if spec is None else spec)


def analyse_mediation(frame: pd.DataFrame, *, treatment: str, mediator: str, outcome: str,
                      covariates=(), unit: str | None = None, time: str | None = None,
                      outcome_family: str = "bernoulli", items=None, seed: int, study: str,
                      spec=None, bootstrap: int = 200, progressbar: bool = False,
                      bayesian: bool = True,
                      tables: tuple[str, str] = ("mediator_model", "outcome_model"),
                      column: str | None = None, measurement_model: bool = True,
                      ri_draws: int | None = None, categorical=(),
                      reference: dict[str, str] | None = None,
                      vcov: str | None = None) -> Analysis:
    """Frequentist and Bayesian mediation of ``treatment -> mediator -> outcome``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    treatment, mediator, outcome : str
        Column names (0/1 treatment; continuous mediator; 0/1 outcome for a logit).
    covariates : sequence of str
        Controls in both the mediator and the outcome model; text and pandas categorical
        ones (and numeric ones named in ``categorical``) enter as 0/1 indicators, with
        ``reference`` levels chosen by column (:mod:`bayes_pool.categorical`).
    unit, time : str, optional
        Unit and time effects (fixed in the frequentist fits; in the Bayesian model unit
        intercepts partially pooled around the unit means of the regressors by default, see
        the spec's ``unit_effects``); ``None`` for none. SEs are clustered and the bootstrap
        resamples by ``unit``.
    vcov : {"cluster", "iid", "hc1"}, optional
        The steps' SEs under Stata's conventions (:func:`bayes_pool.freq.ols.fit_vcov`);
        None keeps the default above.
    outcome_family : {"bernoulli", "gaussian"}
        Logit or linear outcome model.
    items : sequence of str, optional
        Items measuring the mediator. If ``mediator`` is not a column of ``frame`` it is built
        from them with :func:`~bayes_pool.freq.indices.pca_index` (z-scored and fitted on the
        untreated rows). With ``measurement_model`` the Bayesian model then becomes the
        measurement model (the mediator is a latent factor of the items) and reports
        ``a``/``b`` per unit of the index's true score; without it, the Bayesian model takes
        the PCA index as observed, like the frequentist steps.
    seed : int
        Root seed; the bootstrap and the sampler get child seeds from
        :class:`numpy.random.SeedSequence`.
    study : str
        Study id written into the rows.
    spec : MediationSpec, str or Path, optional
        Bayesian spec; default ``models/mediation.toml``.
    bootstrap : int
        Cluster-bootstrap replicates of the natural effects (0: none).
    ri_draws : int, optional
        Placebo assignments of the randomization test of the indirect effect (row
        ``indirect_ri``, :mod:`bayes_pool.freq.mediation_ri`); needs ``unit`` and ``time``;
        0: no test. Default: 199 when ``bootstrap`` > 0, else 0 (a caller that asks for no
        resampling inference, such as the population values, gets neither).
    progressbar : bool
        Sampler progress bar.
    bayesian : bool
        Fit the Bayesian model too.
    tables : (str, str)
        Table labels of the mediator-model and outcome-model rows (a study passes its own).
    column : str, optional
        Column label of those rows (e.g. "(1)"); default the mediator's name. The
        ``mediation`` table's rows always use the mediator's name.

    Returns
    -------
    bayes_pool.workflow.Analysis
        Estimates rows (frequentist, then Bayesian), the posterior under
        ``"mediation_<mediator>"`` and facts (sample sizes, bootstrap, index loadings).
    """
    items = tuple(items or ())
    facts: dict = {}
    if mediator not in frame.columns:
        if not items:
            raise InputError(f"mediator column {mediator!r} is not in the data and no items "
                             f"were given to build it; columns present: "
                             f"{sorted(map(str, frame.columns))}")
        if treatment not in frame.columns:
            raise InputError(f"treatment column {treatment!r} is not in the data")
        built = pca_index(frame, items, reference=frame[treatment] == 0, name=mediator)
        frame = frame.assign(**{mediator: built.index})
        facts["index"] = {"items": list(items), "reference": f"{treatment} == 0",
                          "loadings": built.loadings.round(6).to_dict(),
                          "shares": built.shares.round(6).to_dict(),
                          "weights": built.weights.round(6).to_dict()}
    ex = expand(frame, covariates, categorical=categorical, reference=reference,
                required=[c for c in (treatment, mediator, outcome, unit, time) if c])
    frame = ex.frame
    if ex.changed:
        facts["categorical"] = ex.record
    design = freq_mediation.MediationDesign(
        outcome=outcome, treatment=treatment, mediator=mediator, covariates=ex.covariates,
        unit=unit, time=time, family=outcome_family, items=items if measurement_model else ())
    prepared = design.prepare(frame)
    boot_seed, bayes_seed = np.random.SeedSequence(seed).spawn(2)
    if ri_draws is None:
        ri_draws = 199 if bootstrap > 0 else 0
    freq = freq_mediation.fit_mediation(prepared, bootstrap=bootstrap, seed=boot_seed,
                                        ri_draws=ri_draws, vcov=vcov)
    label = dict(study=study, tables=tables, column=column, mediation_column=mediator)
    rows = [freq.tidy(**label)]
    facts.update({"n_input": prepared.n_input, "n_complete": prepared.n_obs,
                  "n_incomplete_dropped": prepared.n_incomplete,
                  "identifying_units": list(prepared.switchers),
                  "frequentist_dropped_units": list(freq.outcome_step.dropped_units),
                  "bootstrap": {"replicates": bootstrap, "skipped": freq.n_boot_failed},
                  "randomization_test": None if freq.ri is None else
                  {"draws": freq.ri.draws, "t_a": freq.ri.t_a, "p_a": freq.ri.p_a,
                   "p_b": freq.ri.p_b}})
    posteriors = {}
    if bayesian:
        mspec = _spec(spec)
        weights = None
        if items and measurement_model:
            ref = prepared.frame[treatment] == 0
            idx = pca_index(prepared.frame, items, reference=ref)
            weights = (idx.loadings[idx.weights.index] @ idx.weights).to_numpy()
        bay = bayes_mediation.fit_mediation(
            prepared, mspec, seed=int(bayes_seed.generate_state(1)[0]),
            progressbar=progressbar, item_weights=weights)
        rows.append(bay.tidy(**label))
        posteriors[f"mediation_{mediator}"] = bay.idata
        facts.update({"divergences": bay.divergences,
                      "measurement_model": bool(items) and measurement_model,
                      "unit_structure": bay.unit_structure(), "spec": mspec.to_dict()})
    from bayes_pool.robustness_workflow import mediation_pieces
    return Analysis(estimates=estimates.concat(*rows), posteriors=posteriors,
                    facts={f"mediation_{mediator}": facts},
                    robustness=mediation_pieces(freq, table="mediation"))


__all__ = ["analyse_mediation"]
