"""A propensity-score analysis three ways: frequentist matching, balance, Bayesian models.

:func:`analyse_psm` is generic (a DataFrame and column names); a study pipeline and
``bayes-pool psm --data FILE ...`` call it, and :func:`psm_figures` draws its figures.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool import estimates
from bayes_pool.bayes import propensity as bayes_propensity
from bayes_pool.categorical import Expansion, expand
from bayes_pool.figures import psm as psm_figs
from bayes_pool.freq import psm as freq_psm
from bayes_pool.specs import ModelSpec
from bayes_pool.workflow import Analysis

log = logging.getLogger(__name__)


def analyse_psm(frame: pd.DataFrame, *, treatment: str, outcome: str, covariates: list[str],
                seed: int, study: str, table: str = "psm", balance_table: str = "psm_balance",
                spec: ModelSpec | None = None, bootstrap: int = 200,
                progressbar: bool = False, categorical: list[str] | None = None,
                outcome_spec: ModelSpec | None = None,
                propensity_draws: int = bayes_propensity.PROPENSITY_DRAWS,
                bayes_bootstrap: int = bayes_propensity.BOOTSTRAP_REPLICATES,
                bayesian: bool = True, exact: list[str] | tuple[str, ...] | None = None,
                exact_note: str = "", reference: dict[str, str] | None = None) -> Analysis:
    """Matching ATTs (k-NN, radius, kernel; k-NN within exact cells on request), the balance
    table and the Bayesian ATTs.

    Parameters
    ----------
    frame
        One row per unit; incomplete rows in the used columns are dropped (counted in facts).
    treatment, outcome, covariates
        Column roles; the treatment must be 0/1. Text and pandas categorical covariates, and
        numeric ones named in ``categorical``, enter every model as 0/1 indicators with a
        reference level (``reference`` by column, else the most frequent;
        :mod:`bayes_pool.categorical`); the balance table reports every level, the reference
        included. The others enter linearly as coded.
    seed
        Root seed: the bootstrap and the Bayesian fits get child seeds from it.
    study, table, balance_table
        Labels of the estimates rows (ATTs in ``table``, balance in ``balance_table``).
    spec, outcome_spec
        Bayesian propensity and outcome specs (defaults ``propensity_logit`` and
        ``outcome_linear`` with the propensity spec's sampler).
    bootstrap
        Replicates for the radius and kernel SEs.
    propensity_draws
        Propensity draws re-matched for the two-step Bayesian matching ATTs.
    bayes_bootstrap
        Bayesian-bootstrap replicates of the IPW and doubly robust ATTs.
    bayesian
        False skips the Bambi models (frequentist matching and balance only).
    exact
        Covariates to match exactly on (a categorical one directly: its cells are its levels):
        adds column ``knn_exact``, k-NN with the same settings within their cells (ATT
        frequentist and, with ``bayesian``, two-step Bayesian; balance rows in column
        ``after_knn_exact``; its love-plot markers).
    exact_note
        Appended to the notes of the ``knn_exact`` rows (e.g. why a study adds it).

    Returns
    -------
    Analysis
        ``estimates`` (ATT rows, Table-5 balance rows, propensity coefficients),
        ``posteriors`` (propensity, outcome and derived ATT InferenceData) and ``facts``
        (sample sizes, off-support counts, bandwidth and calipers, SE methods, divergences).
        ``results["psm"]`` holds the frequentist matching result (scores, balance); the
        figures are drawn by the run writer or :func:`psm_figures`.
    """
    prepared, ex, exact = prepare_psm(frame, treatment=treatment, outcome=outcome,
                                      covariates=covariates, categorical=categorical,
                                      reference=reference, exact=exact)
    boot_seed, bayes_seed = (int(s.generate_state(1)[0])
                             for s in np.random.SeedSequence(seed).spawn(2))
    settings = freq_psm.MatchSettings(exact=tuple(exact))
    freq = freq_psm.fit_psm(prepared, seed=boot_seed, n_boot=bootstrap, settings=settings)
    att_rows = estimates.concat(freq.tidy(study=study, table=table),
                                freq.psmatch2_rows(study=study, table=table))
    if exact_note:
        on = att_rows["column"] == freq_psm.EXACT_METHOD
        att_rows.loc[on, "note"] = att_rows.loc[on, "note"] + "; " + exact_note
    shown = _every_level(freq, ex)
    rows = [att_rows, _mark_reference(
        shown.balance_rows(study=study, table=balance_table, exact_note=exact_note), ex)]
    s = freq.settings
    facts = {
        "n_input": prepared.n_input, "n_complete": prepared.n_obs,
        "n_incomplete_dropped": prepared.n_incomplete,
        "n_treated": int(prepared.t.sum()), "n_control": int((1 - prepared.t).sum()),
        "off_support": freq.off_support,
        "knn": {"k": s.k, "caliper": s.knn_caliper,
                "ties": "not added (psmatch2 default); equal scores taken in row order"},
        "radius": {"caliper": s.radius_caliper},
        "kernel": {"kernel": "epanechnikov", "bandwidth": s.kernel_bandwidth,
                   "common_support_caliper": s.kernel_caliper,
                   "support": s.describe("kernel")},
        "se_method": freq.se_method, "se_psmatch2": freq.se_psmatch2,
        "bootstrap_replicates": bootstrap,
        "bootstrap_seed": boot_seed,
        "propensity_terms": ["const", *prepared.exog.columns],
        "categorical": ex.record,
    }
    if s.exact:
        facts[freq_psm.EXACT_METHOD] = _exact_facts(freq, exact_note)
    posteriors = {}
    if bayesian:
        bay = bayes_propensity.fit_propensity_models(
            prepared, seed=bayes_seed, spec=spec, outcome_spec=outcome_spec,
            propensity_draws=propensity_draws, settings=s, replicates=bayes_bootstrap,
            progressbar=progressbar)
        rows.append(bay.tidy(study=study, table=table, exact_note=exact_note))
        posteriors = {f"psm_{k}": v for k, v in bay.posteriors.items()}
        facts.update(divergences=sum(bay.divergences.values()),
                     divergences_by_fit=bay.divergences, bayes_seed=bayes_seed,
                     propensity_draws_rematched=bay.n_thinned,
                     bayes_bootstrap_replicates=bay.replicates,
                     propensity_spec=bay.spec.name, outcome_spec=bay.outcome_spec.name)
    from bayes_pool.robustness_workflow import psm_pieces
    return Analysis(estimates=estimates.concat(*rows), posteriors=posteriors,
                    facts={"psm": facts}, figures=[partial(_draw, shown)],
                    results={"psm": freq}, robustness=psm_pieces(freq, table=table))


def prepare_psm(frame: pd.DataFrame, *, treatment: str, outcome: str, covariates,
                categorical=(), reference: dict[str, str] | None = None, exact=()
                ) -> tuple[freq_psm.PreparedPSM, Expansion, tuple[str, ...]]:
    """The matching sample with categorical covariates expanded (every level must hold both
    treated and control rows, or the propensity logit has no finite estimate), and the
    exact-matching columns (a categorical column as its indicators: the same cells).

    Called by :func:`analyse_psm` and, before any output exists, by ``bayes-pool psm`` to
    reject bad input.
    """
    ex = expand(frame, covariates, categorical=categorical or (), reference=reference,
                required=(treatment, outcome), by=treatment)
    design = freq_psm.PSMDesign(treatment=treatment, outcome=outcome, covariates=ex.covariates)
    prepared = design.prepare(ex.frame)
    exact_cols = tuple(ex.columns_for(exact or ()))
    if exact_cols:
        prepared.cells(exact_cols)  # exact columns must be propensity covariates
    return prepared, ex, exact_cols


def _every_level(freq: freq_psm.PSMResult, ex: Expansion) -> freq_psm.PSMResult:
    """``freq`` with a balance table over every level of each categorical covariate, the
    reference included (as cobalt and pstest report them); ``freq`` itself when none."""
    if not ex.changed:
        return freq
    owner = {n: c for c, names in ex.indicators.items() for n in names}
    shown: list[str] = []
    for name in ex.covariates:  # each categorical's levels where its first indicator was
        col = owner.get(name)
        if col is None:
            shown.append(name)
        elif ex.reference_indicator[col] not in shown:
            shown.extend(_in_level_order(ex, col))
    prepared = replace(freq.prepared.design, covariates=tuple(shown)).prepare(ex.frame)
    return replace(freq, prepared=prepared,
                   balance=freq_psm.balance(prepared, freq.matchings["knn"]))


def _in_level_order(ex: Expansion, col: str) -> list[str]:
    return [lv["indicator"] or ex.reference_indicator[col] for lv in ex.record[col]["levels"]]


def _mark_reference(rows: pd.DataFrame, ex: Expansion) -> pd.DataFrame:
    """Say in the note which balance rows are reference levels (no indicator in the models)."""
    for col, name in ex.reference_indicator.items():
        on = rows["term"] == name
        rows.loc[on, "note"] = rows.loc[on, "note"] + (
            f"; reference level of {col!r} (no indicator in the models)")
    return rows


def _exact_facts(freq: freq_psm.PSMResult, note: str) -> dict:
    """What exact matching did: the settings, and per cell its treated, controls and the
    treated left off support (a cell without a control near the score)."""
    s, prep = freq.settings, freq.prepared
    m = freq.matchings[freq_psm.EXACT_METHOD]
    frame = prep.frame.iloc[m.treated][list(s.exact)].assign(off=~m.on_support)
    off = frame.groupby(list(s.exact))["off"].agg(["size", "sum"])
    n_control = prep.frame.iloc[m.controls].groupby(list(s.exact)).size()
    plain = lambda v: v.item() if isinstance(v, np.generic) else v  # noqa: E731 (JSON)
    cells = [{**{c: plain(v) for c, v in zip(s.exact, key if isinstance(key, tuple) else (key,))},
              "n_treated": int(r["size"]), "n_control": int(n_control.get(key, 0)),
              "treated_off_support": int(r["sum"])} for key, r in off.iterrows()]
    bal = freq.balance_for(freq_psm.EXACT_METHOD)["std_bias_pct_after"]
    return {"exact": list(s.exact), "k": s.k, "caliper": s.knn_caliper,
            "description": s.describe(freq_psm.EXACT_METHOD), "note": note,
            "cells": cells, "max_abs_std_bias_pct_after": float(bal.abs().max())}


def _draw(freq, folder: Path, synthetic: bool, table: pd.DataFrame) -> dict[str, Path]:
    """Love plot and propensity overlap of the matching, and the ATT forest of ``table``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    att = table[table["quantity"].isin(psm_figs.ATT_QUANTITIES)]
    refined = (freq.balance_for(freq_psm.EXACT_METHOD)
               if freq_psm.EXACT_METHOD in freq.matchings else None)
    return {
        "love_plot": psm_figs.love_plot(
            freq.balance, folder / "psm_love_plot.png", synthetic=synthetic, refined=refined,
            refined_label=f"after k-NN exact on {', '.join(freq.settings.exact)}"),
        "overlap": psm_figs.overlap(freq.ps, freq.prepared.t, folder / "psm_overlap.png",
                                    synthetic=synthetic),
        "att_forest": psm_figs.att_forest(att, folder / "psm_att_forest.png",
                                          synthetic=synthetic),
    }


def psm_figures(analysis: Analysis, folder: str | Path, *, synthetic: bool,
                published: pd.DataFrame | None = None) -> dict[str, Path]:
    """Draw an :func:`analyse_psm` result's figures now (``bayes_pool.workflow.write_run``
    draws them by itself); ``published`` rows join the ATT forest."""
    table = analysis.estimates if published is None else estimates.concat(published,
                                                                          analysis.estimates)
    paths = {}
    for make in analysis.figures:
        paths.update(make(Path(folder), synthetic, table))
    return paths
