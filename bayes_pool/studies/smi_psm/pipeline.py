"""Which analysis makes which table of Ma et al. (2023).

Table 2
    Varimax factor analysis of the 17 indicators (:func:`bayes_pool.freq.factor.factor_index`);
    the composite index, scaled to Table 1's SD, replaces the data's ``integration_index``
    column for every later table (the facts record how the two compare).
Table 1
    Means and SDs overall and by location of SMI (:mod:`bayes_pool.freq.descriptives`).
Table 3
    One-way ANOVA of the index by each characteristic (:mod:`bayes_pool.freq.anova`); level
    columns are the ledger's printed row labels matched to the codes in code order (Table 3
    prints the *Willing*/*Unwilling* labels of the two intention variables the other way round
    from Table 1; matching by position keeps the numbers, see the contract).
Table 4
    Model 8 by OLS (:mod:`bayes_pool.freq.ols`), the SPSS stepwise selection over the paper's
    candidate set (selected terms in the facts), the Bayesian linear regression (column
    ``model_8``) and the Bayesian latent-factor regression (column ``latent_factor``).
Tables 5-6
    Propensity-score matching and balance (:mod:`bayes_pool.psm_workflow`). Beyond the paper,
    column ``knn_exact`` (balance column ``after_knn_exact``) is the paper's k-NN run within
    the cells of ``migration_reason`` (see :data:`EXACT`); it is never compared with a
    published cell.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool import estimates
from bayes_pool.bayes.factor import fit_latent_factor
from bayes_pool.bayes.linear import fit_linear
from bayes_pool.freq.anova import anova_table
from bayes_pool.freq.descriptives import group_descriptives
from bayes_pool.freq.factor import FactorIndexResult, factor_index
from bayes_pool.freq.ols import fit_ols, stepwise
from bayes_pool.published import load_ledger, load_published, published_value
from bayes_pool.seeds import child_seed
from bayes_pool.specs import ModelSpec, load_spec
from bayes_pool.studies.smi_psm.contract import (
    CHARACTERISTICS, CODES, COVARIATES, FACTORS, INDICATOR_FACTOR, INDICATORS, MODEL8_TERMS,
    OUTCOME, STUDY_ID, TREATMENT,
)
from bayes_pool.workflow import Analysis

log = logging.getLogger(__name__)

SEED_PARTS = ("factor_analysis", "linear", "latent_factor", "psm")
"""The parts of :func:`run` with a child seed of the root (:func:`bayes_pool.seeds.child_seed`)."""

REVERSE_KEYED = ["si_hometown_customs", "si_hygiene_difference"]
"""Indicators where agreement means *less* integration (they orient F4's sign)."""

EXCLUDED_BEFORE_STEPWISE = ["gender", "education", "employment_identity", "marital"]
"""Characteristics the paper drops before the stepwise regression (not significant in its
ANOVA, it says, although its Table 3 prints p = 0.000 for employment identity)."""

STEPWISE_CANDIDATES = [c for c in CHARACTERISTICS if c not in EXCLUDED_BEFORE_STEPWISE]
"""The paper's candidate set of the stepwise regression."""

LATENT_SPEC = "latent_factor"
TABLE1_COLUMNS = {1: "host_city", 0: "hometown"}
FACTOR_COLUMNS = {f: name.replace(" ", "_") for f, (name, _) in FACTORS.items()}
"""Factor -> Table 2's column label in the ledger (``F1`` -> ``social_participation``)."""

EXACT = ("migration_reason",)
"""Covariates of the refined k-NN (column ``knn_exact``), matched exactly: after the paper's
k-NN migration_reason is the least balanced covariate (Table 5: 7.1%; above 10% on the
synthetic data, issue 4 and tests/test_psm_balance.py)."""
EXACT_NOTE = ("BEYOND THE PAPER: Ma et al. report no exact-matching estimator; added for "
              "migration_reason balance: after the paper's k-NN (k = 4, caliper 0.02) it is the "
              "least balanced covariate (Table 5: 7.1%; above 10% on the synthetic data), "
              "because treated of the rare reasons 3-5 have fewer than 4 controls at their "
              "score and borrow controls of reasons 1-2; no published value to compare with")


def table3_levels() -> dict[str, dict[int, str]]:
    """Characteristic -> {code: Table 3 column label}, labels in the ledger's printed order."""
    ledger = load_ledger(STUDY_ID)
    t3 = ledger[(ledger["table"] == "3") & (ledger["quantity"] == "n")]
    out = {}
    for term in CHARACTERISTICS:
        labels = list(dict.fromkeys(t3.loc[t3["term"] == term, "column"]))
        codes = sorted(CODES[term])
        if len(labels) != len(codes):
            raise ValueError(f"ledger Table 3 has {len(labels)} levels for {term!r} "
                             f"({labels}); the contract has codes {codes}")
        out[term] = dict(zip(codes, labels, strict=True))
    return out


def build_index(frame: pd.DataFrame, *, seed: int) -> tuple[pd.DataFrame, FactorIndexResult | None,
                                                            dict]:
    """The frame with ``integration_index`` rebuilt from the indicators, the factor analysis,
    and facts comparing the rebuilt index with the column it replaces."""
    have = [c for c in INDICATORS if c in frame.columns and frame[c].notna().any()]
    if len(have) < len(INDICATORS):
        absent = sorted(set(INDICATORS) - set(have))
        if OUTCOME not in frame.columns:
            from bayes_pool.errors import InputError
            raise InputError(f"neither the indicators {absent} nor {OUTCOME!r} are in the data")
        log.warning("indicators %s absent: using the data's %s column", absent, OUTCOME)
        return frame, None, {"index_source": f"data column {OUTCOME!r} (indicators {absent} "
                                             "absent)"}
    sd = published_value(STUDY_ID, "1", "total", OUTCOME, "sd")
    fa = factor_index(frame, INDICATORS, n_factors=len(FACTORS), assignment=INDICATOR_FACTOR,
                      reverse=REVERSE_KEYED, scale_sd=sd, seed=seed)
    facts = {
        "index_source": "rebuilt from the 17 indicators by varimax factor analysis",
        "index_sd": sd, "n_complete_indicators": fa.n_obs,
        "variance_pct": fa.variance_pct.round(4).to_dict(),
        "weights": fa.weights.round(4).to_dict(),
        "factor_matched_to_sklearn_component": fa.mapping,
        "highest_loading": fa.highest_loading.to_dict(),
        "loadings": fa.loadings.round(4).to_dict(orient="index"),
        "reverse_keyed": REVERSE_KEYED,
    }
    if OUTCOME in frame.columns and frame[OUTCOME].notna().any():
        both = pd.concat([fa.index, frame[OUTCOME]], axis=1).dropna()
        facts["data_index_column"] = {
            "correlation_with_rebuilt": float(both.corr().iloc[0, 1]),
            "mean": float(frame[OUTCOME].mean()), "sd": float(frame[OUTCOME].std(ddof=1))}
    return frame.assign(**{OUTCOME: fa.index}), fa, facts


def run(frame, *, spec: ModelSpec, seed: int, progress=None, progressbar: bool = False,
        bayesian: bool = True, latent: bool = True, psm: bool = True,
        bootstrap: int = 200) -> Analysis:
    """Published rows plus Tables 1-4 (frequentist and Bayesian) and, when available, 5-6.

    Parameters
    ----------
    frame : pandas.DataFrame
        A validated smi-psm frame (see :func:`bayes_pool.studies.smi_psm.prepare`).
    spec : ModelSpec
        The Bayesian linear regression's spec; the latent-factor model (``latent_factor.toml``)
        takes its chains, draws, tune and backend from it (so a quick run is quick throughout)
        and keeps its own target_accept.
    seed : int
        Root seed; the factor analysis, each Bayesian fit and the matching get child seeds.
    bayesian, latent, psm : bool
        Switch off the Bambi fits, the latent-factor model, the matching analysis.
    """
    say = progress or (lambda msg: None)
    s_fa, s_lin, s_lat, s_psm = (child_seed(seed, part) for part in SEED_PARTS)
    analysis = Analysis(estimates=load_published(STUDY_ID))
    facts: dict = {"seeds": {"factor_analysis": s_fa, "linear": s_lin, "latent_factor": s_lat,
                             "psm": s_psm}}

    say("Table 2: factor analysis of the indicators and the integration index")
    work, fa, facts["table2"] = build_index(frame, seed=s_fa)
    rows = [fa.tidy(study=STUDY_ID, table="2", columns=FACTOR_COLUMNS)] if fa else []

    say("Tables 1 and 3: descriptives and one-way ANOVAs")
    rows.append(group_descriptives(work, [OUTCOME, TREATMENT, *CHARACTERISTICS[1:]], TREATMENT,
                                   study=STUDY_ID, table="1", columns=TABLE1_COLUMNS))
    rows.append(anova_table(work, OUTCOME, table3_levels(), study=STUDY_ID, table="3"))

    say("Table 4: stepwise selection and Model 8 by OLS")
    ols = fit_ols(work, OUTCOME, MODEL8_TERMS)
    rows.append(ols.tidy(study=STUDY_ID, table="4", column="model_8"))
    step = stepwise(work, OUTCOME, STEPWISE_CANDIDATES)
    facts["table4"] = {"stepwise": {**step.to_dict(), "candidates": STEPWISE_CANDIDATES,
                                    "entry": 0.05, "removal": 0.10,
                                    "same_terms_as_model_8":
                                        sorted(step.selected) == sorted(MODEL8_TERMS)},
                       "n_obs": ols.n_obs}
    analysis.extend(Analysis(estimates=estimates.concat(*rows),
                             robustness=[model8_robustness(ols)]))
    if fa is not None:
        analysis.figures.append(partial(draw_loadings, fa.loadings))

    if bayesian:
        s = spec.sampler
        say(f"Table 4: Bayesian linear regression ({s.chains} chains x {s.draws} draws)")
        lin = fit_linear(work, outcome=OUTCOME, treatment=TREATMENT, covariates=MODEL8_TERMS[1:],
                         spec=spec, seed=s_lin, progressbar=progressbar)
        analysis.extend(Analysis(estimates=lin.tidy(study=STUDY_ID, table="4", column="model_8"),
                                 posteriors={"table4_model_8": lin.idata}))
        facts["table4"]["bayesian_divergences"] = lin.divergences
    if bayesian and latent:
        lspec = load_spec(LATENT_SPEC)
        s = spec.sampler
        lspec = lspec.with_sampler(chains=s.chains, draws=s.draws, tune=s.tune,
                                   backend=s.backend)
        say("Table 4: Bayesian latent-factor regression (measurement and regression in one "
            "model)")
        lat = fit_latent_factor(frame, indicators=INDICATORS, assignment=INDICATOR_FACTOR,
                                treatment=TREATMENT, covariates=MODEL8_TERMS[1:], spec=lspec,
                                seed=s_lat, reverse=REVERSE_KEYED,
                                scale_sd=published_value(STUDY_ID, "1", "total", OUTCOME, "sd"),
                                progressbar=progressbar)
        analysis.extend(Analysis(
            estimates=lat.tidy(study=STUDY_ID, table="4", column="latent_factor", share_table="2",
                               share_columns=FACTOR_COLUMNS),
            posteriors={"table4_latent_factor": lat.idata}))
        facts["table4"]["latent_factor_divergences"] = lat.divergences

    if psm:
        try:
            from bayes_pool.psm_workflow import analyse_psm
        except ImportError:  # the matching analysis is written separately (issue #4)
            facts["psm"] = "not run: bayes_pool.psm_workflow is not available"
        else:
            say(f"Tables 5-6: propensity-score matching ({bootstrap} bootstrap replicates)")
            res = analyse_psm(work, treatment=TREATMENT, outcome=OUTCOME,
                              covariates=list(COVARIATES), seed=s_psm, study=STUDY_ID, table="6",
                              balance_table="5", spec=None, bootstrap=bootstrap,
                              progressbar=progressbar, bayesian=bayesian, exact=EXACT,
                              exact_note=EXACT_NOTE)
            analysis.extend(res)  # brings its figure makers (love plot, overlap, ATT forest)
    facts["headline"] = HEADLINE
    analysis.facts.update(facts)
    return analysis


HEADLINE = [{"table": "6", "column": "knn", "term": TREATMENT, "quantity": "att"}]
"""The key estimate the report opens with: the k-NN ATT of Table 6. The paper's headline is
the matching result (its title asks for the effect of SMI in the host city, which the PSM
answers; Model 8's coefficient is the association it starts from), and k-NN is the matching
its abstract reports."""


def robustness(frame: pd.DataFrame, *, seed: int) -> Analysis:
    """The frequentist part of :func:`run` (the index, Model 8 by OLS, the matching with the
    least bootstrap), with the same child seeds: its breakdown pieces (``.robustness``: Model
    8's robustness value, the k-NN ATT's Rosenbaum bounds), for ``bayes-pool robustness``."""
    return run(frame, spec=load_spec("linear_regression"), seed=seed, bayesian=False, latent=False,
               bootstrap=2)


def model8_robustness(ols):
    """Omitted-variable robustness value of Model 8's coefficient of the treatment."""
    from bayes_pool.robustness_workflow import ols_piece
    r = ols.result
    return ols_piece(float(r.tvalues[TREATMENT]), float(r.df_resid),
                     cell={"table": "4", "column": "model_8", "term": TREATMENT,
                           "quantity": "beta"},
                     estimate=float(r.params[TREATMENT]), se=float(r.bse[TREATMENT]))


def sensitivity_target(frame: pd.DataFrame, *, seed: int):
    """The benchmark of ``bayes-pool sensitivity``: the Model 8 linear regression of the
    integration index (rebuilt from the indicators with the factor-analysis child seed of
    ``seed``, as :func:`run` does) on ``host_city_smi`` and the Model 8 covariates; key quantity its
    coefficient."""
    from bayes_pool.sensitivity import PublishedCell, Target
    work, _, _ = build_index(frame, seed=child_seed(seed, SEED_PARTS[0]))
    cell = PublishedCell(study=STUDY_ID, table="4", column="model_8", term=TREATMENT,
                         quantity="beta")
    return Target(kind="linear", study=STUDY_ID, table="4", column="model_8", outcome=OUTCOME,
                  treatment=TREATMENT, covariates=tuple(MODEL8_TERMS[1:]), frame=work,
                  marked=cell, centre=cell,
                  description="Table 4 Model 8: linear regression of the integration index")


def draw_loadings(loadings: pd.DataFrame, folder, synthetic: bool,
                  table: pd.DataFrame | None = None) -> dict[str, Path]:
    """Heatmap of the rotated loadings (indicator x factor); a figure maker of the run."""
    from bayes_pool.figures import save, subplots

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values = loadings.to_numpy()
    fig, ax = subplots(figsize=(6.5, 0.35 * len(loadings) + 1.8))
    lim = float(np.abs(values).max())
    im = ax.imshow(values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(loadings.shape[1]),
                  [f"{f}\n" + FACTORS[f][0].replace(" ", "\n") if f in FACTORS else f
                   for f in loadings.columns],
                  fontsize=7)
    ax.set_yticks(range(len(loadings)), loadings.index, fontsize=7)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="varimax loading")
    title = "Table 2: rotated loadings of the integration indicators"
    ax.set_title(("SYNTHETIC DATA - " if synthetic else "") + title, fontsize=9)
    return {"loadings": save(fig, folder / "loadings_heatmap.png")}


def figures(analysis: Analysis, folder, *, synthetic: bool) -> dict[str, Path]:
    """Draw the run's figures now: the loadings heatmap and, when the matching ran, its love
    plot, overlap and ATT forest (``write_run`` draws the same makers by itself)."""
    paths: dict[str, Path] = {}
    for make in analysis.figures:
        paths.update(make(Path(folder), synthetic, analysis.estimates))
    return paths
