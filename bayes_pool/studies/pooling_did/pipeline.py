"""Which analysis makes which table of Zhang & Chen (2024).

Each part turns the canonical frame into an :class:`~bayes_pool.workflow.Analysis` (rows of
the estimates table, posteriors, figures); :func:`run` runs the chosen parts in order. All
the statistics live in the generic ``freq/`` and ``bayes/`` modules: this file only says
which columns, subgroups and settings reproduce which published table.

=========  ===================================================================================
part       what
=========  ===================================================================================
table2     descriptives by treatment group with the difference and its t test
table3     TWFE DiD logit without (1) and with (2) controls: beta and AME of the policy
mediation  Tables 4-5: PCA indices of the objective and subjective integration items; stepwise
           steps, Sobel and bootstrap; joint Bayesian mediator/outcome model, natural effects
fig2       event study, window -2..+4 around adoption (years, as Eq. 5), period -1 reference
staggered  Wooldridge extended TWFE (cohort x period effects vs never treated) next to TWFE
table6     heterogeneity by income, generation, education: subgroup logits, partially pooled
           Bayesian model with the posterior probability that the subgroup difference is > 0
placebo    Fig. 3: 500 placebo draws (the data's adoption schedule permuted across provinces) with
           P(effect > 0) per draw (Laplace); RI-t and RI-beta p-values; wild-cluster bootstrap
table7     robustness with the 2012 wave (nine controls: 2012 lacks three questions)
=========  ===================================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool.design import DiDDesign
from bayes_pool.published import load_published
from bayes_pool.seeds import child_seed
from bayes_pool.specs import ModelSpec
from bayes_pool.studies.pooling_did.contract import (
    ADOPTION_YEAR, CONTROLS, CONTROLS_2012, ITEMS_OBJECTIVE, ITEMS_SUBJECTIVE, OUTCOME,
    STUDY_ID, TIME, TREATMENT, UNIT,
)
from bayes_pool.workflow import Analysis, analyse_did

TABLE3_COLUMNS: dict[str, tuple[str, ...]] = {"(1)": (), "(2)": tuple(CONTROLS)}
TABLE2_VARIABLES = ["healthy", "neighbourhood_assistance", "social_equity", "life_happiness",
                    "trust", "age", "gender", "married", "rural_hukou", "education",
                    "social_status", "log_income", "smoke", "drink", "exercise", "siblings",
                    "log_gdp_pc", "region"]
PLACEBO_DRAWS = 500
MEDIATORS = {"(1)": ("objective_integration", ITEMS_OBJECTIVE),
             "(2)": ("subjective_integration", ITEMS_SUBJECTIVE)}
"""Table 4/5 column -> (index, its items)."""
EVENT_PERIOD_YEARS = 1
"""Event time in years, as Eq. (5) is written (m = -2..4 with waves two years apart)."""
MAIN_WAVES = (2014, 2016, 2018)
MEDIATION_MODELS = ("index", "latent")


def table3_design(column: str, controls: tuple[str, ...] | None = None) -> DiDDesign:
    """The design of Table 3's column ``(1)`` (no controls) or ``(2)`` (with controls)."""
    covariates = TABLE3_COLUMNS[column] if controls is None else controls
    return DiDDesign(outcome=OUTCOME, treatment=TREATMENT, unit=UNIT, time=TIME,
                     covariates=covariates, family="bernoulli")


def table6_splits() -> dict:
    """Table 6's subgroups: monthly income <= 700 yuan, born before 1980, middle school or less."""
    from bayes_pool.subgroups import Split

    def by(column, test, low, high):
        return Split(lambda f: np.where(f[column].isna(), None,
                                        np.where(test(f[column]), low, high)), low=low, high=high)

    return {"income": by("monthly_income", lambda x: x <= 700, "low_income", "high_income"),
            "generation": by("birth_year", lambda x: x < 1980, "old_generation", "new_generation"),
            "education": by("education", lambda x: x <= 2, "low_education", "high_education")}


@dataclass(frozen=True)
class Context:
    """What every part needs: the model spec, the root seed and how to report progress."""

    spec: ModelSpec
    seed: int
    progress: Callable[[str], None]
    progressbar: bool
    workers: int | None
    placebo_draws: int
    frame_2012: pd.DataFrame | None
    scheduler: str | None = None
    """Address of an existing dask scheduler for refit loops (None: a local cluster, or
    ``$DASK_SCHEDULER_ADDRESS``)."""
    mediation_model: str = "index"
    """Bayesian mediator in Tables 4-5: "index" (the PCA index as observed, as the paper and
    the frequentist steps) or "latent" (measurement model: a latent factor of the items)."""
    refits_dir: Path | None = None
    """Where refit loops keep finished draws so an interrupted run resumes (None: not kept)."""
    frequentist_only: bool = False
    """No MCMC and no bootstrap: the refits of :func:`robustness` (breakdown values only)."""

    def seed_for(self, part: str) -> int:
        """The child seed of ``part`` (:func:`bayes_pool.seeds.child_seed` of the root)."""
        return child_seed(self.seed, part)

    def run_length(self, spec):
        """``spec`` with this run's chains, draws and tuning (``--draws`` etc. reach every
        part); the part keeps its own backend and ``target_accept``."""
        s = self.spec.sampler
        return spec.with_sampler(chains=s.chains, draws=s.draws, tune=s.tune)


def part_table2(frame: pd.DataFrame, ctx: Context) -> Analysis:
    from bayes_pool.freq.descriptives import group_descriptives
    ctx.progress("Table 2: descriptives by treatment group")
    rows = group_descriptives(frame, TABLE2_VARIABLES, TREATMENT, study=STUDY_ID, table="2",
                              columns={1: "treatment", 0: "control"}, total=None,
                              difference="difference")
    return Analysis(estimates=rows)


def part_table3(frame: pd.DataFrame, ctx: Context) -> Analysis:
    analysis = Analysis(estimates=load_published(STUDY_ID).iloc[:0])
    for column in TABLE3_COLUMNS:
        ctx.progress(f"Table 3 column {column}: frequentist logit and Bayesian fit "
                     f"({ctx.spec.sampler.chains} chains x {ctx.spec.sampler.draws} draws)")
        analysis.extend(analyse_did(frame, table3_design(column), ctx.spec,
                                    seed=ctx.seed_for(f"table3 {column}"),
                                    study=STUDY_ID, table="3", column=column,
                                    progressbar=ctx.progressbar,
                                    bayesian=not ctx.frequentist_only))
    return analysis


def part_mediation(frame: pd.DataFrame, ctx: Context) -> Analysis:
    from bayes_pool.bayes.mediation import load_mediation_spec
    from bayes_pool.figures.mediation import plot_mediation
    from bayes_pool.mediation_workflow import analyse_mediation
    analysis = Analysis(estimates=load_published(STUDY_ID).iloc[:0])
    spec = ctx.run_length(load_mediation_spec())
    for column, (index, items) in MEDIATORS.items():
        ctx.progress(f"Tables 4-5 column {column}: mediation by the {index} index "
                     "(PCA of its items; stepwise steps, Sobel, bootstrap; joint Bayesian "
                     f"model, mediator: {ctx.mediation_model})")
        analysis.extend(analyse_mediation(
            frame, treatment=TREATMENT, mediator=index, outcome=OUTCOME,
            covariates=tuple(CONTROLS), unit=UNIT, time=TIME, items=list(items),
            seed=ctx.seed_for(f"mediation {column}"), study=STUDY_ID, tables=("4", "5"),
            column=column, spec=spec, bayesian=not ctx.frequentist_only,
            bootstrap=0 if ctx.frequentist_only else 200,
            progressbar=ctx.progressbar, measurement_model=ctx.mediation_model == "latent"))

    def draw(folder, synthetic, table):
        return {"mediation": plot_mediation(table[table["table"] == "mediation"],
                                            folder / "mediation.png",
                                            title="Mediation by social integration",
                                            synthetic=synthetic)}
    analysis.figures.append(draw)
    return analysis


def _with_cohort(frame: pd.DataFrame) -> pd.DataFrame:
    from bayes_pool.event_time import cohort_from_mapping
    return frame.assign(cohort=cohort_from_mapping(frame[UNIT], ADOPTION_YEAR))


def part_fig2(frame: pd.DataFrame, ctx: Context) -> Analysis:
    from bayes_pool.figures.event_study import plot_event_study
    from bayes_pool.staggered_workflow import analyse_event_study
    ctx.progress("Fig. 2: event study (leads and lags of adoption)")
    analysis = analyse_event_study(
        _with_cohort(frame), outcome=OUTCOME, treatment=TREATMENT, unit=UNIT, time=TIME,
        cohort="cohort", covariates=tuple(CONTROLS), seed=ctx.seed_for("fig2"), study=STUDY_ID,
        spec=ctx.spec, progressbar=ctx.progressbar, period_length=EVENT_PERIOD_YEARS,
        control="never",  # Eq. (5) has leads; not-yet-treated controls estimate lags only
        table="fig2", bayesian=not ctx.frequentist_only)
    analysis.figures.append(lambda folder, synthetic, table: {
        "event_study": plot_event_study(table, folder / "event_study.png", synthetic=synthetic,
                                        table="fig2")})
    return analysis


def part_staggered(frame: pd.DataFrame, ctx: Context) -> Analysis:
    from bayes_pool.staggered_workflow import analyse_staggered
    ctx.progress("Staggered-robust DiD: extended TWFE (cohort x period) next to TWFE")
    return analyse_staggered(
        _with_cohort(frame), outcome=OUTCOME, treatment=TREATMENT, unit=UNIT, time=TIME,
        cohort="cohort", covariates=tuple(CONTROLS), seed=ctx.seed_for("staggered"), study=STUDY_ID,
        spec=ctx.spec, progressbar=ctx.progressbar)


def part_table6(frame: pd.DataFrame, ctx: Context) -> Analysis:
    from bayes_pool.bayes.heterogeneity import load_heterogeneity_spec
    from bayes_pool.figures.heterogeneity import subgroup_forest
    from bayes_pool.heterogeneity_workflow import heterogeneity
    ctx.progress("Table 6: subgroup logits and the partially pooled Bayesian model "
                 "(3 splits)")
    result = heterogeneity(frame, table3_design("(2)"), table6_splits(),
                           spec=ctx.run_length(load_heterogeneity_spec()),
                           seed=ctx.seed_for("table6"),
                           separate=False, progressbar=ctx.progressbar)
    rows = result.tidy(study=STUDY_ID, table="6")
    # The pooled model's subgroup AMEs are the Bayesian counterparts of Table 6's cells.
    pooled = rows["column"].str.endswith("_pooled")
    rows.loc[pooled, "column"] = rows.loc[pooled, "column"].str.removesuffix("_pooled")
    draw = lambda folder, synthetic, table: {  # noqa: E731
        "heterogeneity": subgroup_forest(table, folder / "heterogeneity.png", synthetic=synthetic,
                                         term=TREATMENT, table="6",
                                         title="Policy effect by subgroup (AME)")}
    return Analysis(estimates=rows, posteriors=result.posteriors, figures=[draw])


def part_placebo(frame: pd.DataFrame, ctx: Context) -> Analysis:
    """Fig. 3 three ways: the placebo p-values, the randomization-inference p-values (RI-t,
    RI-beta; draws keep the data's switchers count and adoption years),
    and per placebo draw the posterior probability of a positive effect (Laplace, reusing one
    compiled model); plus the wild-cluster bootstrap for few treated clusters."""
    from threadpoolctl import threadpool_limits

    from bayes_pool import estimates
    from bayes_pool.bayes.fast import laplace_model, placebo_posteriors, posterior_rows_placebo
    from bayes_pool.figures.placebo import placebo_plot
    from bayes_pool.freq.placebo import placebo
    from bayes_pool.freq.wild_bootstrap import wild_cluster_bootstrap
    design = table3_design("(2)")
    prepared = design.prepare(frame)
    ctx.progress(f"Fig. 3: {ctx.placebo_draws} placebo refits (the data's adoption schedule "
                 "permuted across provinces; RI-t and RI-beta)")
    result = placebo(prepared, seed=ctx.seed_for("placebo"), n_draws=ctx.placebo_draws,
                     workers=ctx.workers, scheduler=ctx.scheduler, refits_dir=ctx.refits_dir)
    ctx.progress(f"Fig. 3, Bayesian: P(placebo effect > 0) for the {ctx.placebo_draws} draws "
                 "(Laplace approximation, one compiled model)")
    # one BLAS thread: small matrices gain nothing from more, and the last bits of every
    # number then do not depend on how many threads the machine offers
    with threadpool_limits(limits=1):
        fast = laplace_model(prepared, ctx.spec, seed=ctx.seed_for("placebo laplace"))
        actual_bayes = fast.fit()
        post = placebo_posteriors(fast, result.draws, refits_dir=ctx.refits_dir)
        ctx.progress("Few treated clusters: wild-cluster bootstrap of the linear-probability DiD")
        wcb = wild_cluster_bootstrap(prepared, seed=ctx.seed_for("wild bootstrap"))
    rows = [result.tidy(study=STUDY_ID, table="fig3", column="(2)"),
            posterior_rows_placebo(actual_bayes, post, unit_sd=fast.unit_sd,
                                   term=design.treatment, n_obs=prepared.n_obs, study=STUDY_ID,
                                   table="fig3", column="(2)"),
            wcb.tidy(study=STUDY_ID, table="inference", column="(2)")]
    facts = {"placebo": {"draws": ctx.placebo_draws, "ri_p_value": result.ri_p_value,
                         "ri_t_p_value": result.ri_t_p_value,
                         "share_p_below_actual": result.share_p_below,
                         "identifying_provinces": list(prepared.switchers),
                         "bayesian": {"method": "Laplace approximation, province SD fixed at "
                                                "its marginal posterior mode; with correlated "
                                                "unit effects each placebo draw's province "
                                                "means of the treatment are recomputed",
                                      "unit_sd": fast.unit_sd,
                                      "unit_structure": fast.structure.to_dict(),
                                      "prob_positive_actual": actual_bayes.prob_positive,
                                      "all_converged": bool(post["converged"].all())}}}
    draw = lambda folder, synthetic, table: {  # noqa: E731
        "placebo": placebo_plot(result, folder / "placebo.png", synthetic=synthetic,
                                bayes=post, bayes_actual=actual_bayes.prob_positive)}
    return Analysis(estimates=estimates.concat(*rows), facts=facts, figures=[draw],
                    results={"placebo": result, "placebo_bayes": post})


def part_table7(frame: pd.DataFrame, ctx: Context) -> Analysis:
    from bayes_pool.workflow import analyse_did as fit
    data = ctx.frame_2012 if ctx.frame_2012 is not None else frame
    if not (pd.to_numeric(data[TIME]) == 2012).any():
        ctx.progress("Table 7 skipped: the data hold no 2012 wave")
        return Analysis(estimates=load_published(STUDY_ID).iloc[:0],
                        facts={"table7": "skipped: no 2012 wave in the data"})
    analysis = Analysis(estimates=load_published(STUDY_ID).iloc[:0])
    for column, controls in {"(1)": (), "(2)": tuple(CONTROLS_2012)}.items():
        ctx.progress(f"Table 7 column {column}: with the 2012 wave")
        analysis.extend(fit(data, table3_design("(1)", controls), ctx.spec,
                            seed=ctx.seed_for(f"table7 {column}"),
                            study=STUDY_ID, table="7", column=column, progressbar=ctx.progressbar))
    return analysis


PARTS: dict[str, Callable[[pd.DataFrame, Context], Analysis]] = {
    "table2": part_table2,
    "table3": part_table3,
    "mediation": part_mediation,
    "fig2": part_fig2,
    "staggered": part_staggered,
    "table6": part_table6,
    "placebo": part_placebo,
    "table7": part_table7,
}
"""The analyses of the study, in the order they run."""


def run(frame, *, spec: ModelSpec, seed: int, progress=None, progressbar: bool = False,
        parts: tuple[str, ...] | None = None, workers: int | None = None,
        placebo_draws: int = PLACEBO_DRAWS, frame_2012: pd.DataFrame | None = None,
        scheduler: str | None = None, refits_dir: str | Path | bool | None = None,
        mediation_model: str = "index") -> Analysis:
    """Published rows plus the chosen parts (all by default), frequentist and Bayesian.

    The main analyses use the 2014-2018 waves; ``frame_2012`` (or the 2012 rows of ``frame``)
    feeds Table 7. Refit loops (placebo draws) run on ``workers`` local dask worker processes
    (None: one per core; 1: in-process) or on the dask scheduler at ``scheduler`` (default
    ``$DASK_SCHEDULER_ADDRESS``), and keep every finished draw in ``refits_dir`` (default
    ``outputs/<study>/.refits``, outside the run folder; ``False``: keep nothing), so a run
    interrupted in the middle of a loop resumes it. ``mediation_model``: see
    :class:`Context`.
    """
    if mediation_model not in MEDIATION_MODELS:
        raise ValueError(f"mediation_model must be one of {MEDIATION_MODELS}, got "
                         f"{mediation_model!r}")
    parts = tuple(PARTS) if parts is None else parts
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; valid: {list(PARTS)}")
    progress = progress or (lambda message: None)
    main = frame[pd.to_numeric(frame[TIME]).isin(MAIN_WAVES)].reset_index(drop=True)
    if frame_2012 is None and (pd.to_numeric(frame[TIME]) == 2012).any():
        frame_2012 = frame
    if refits_dir is None or refits_dir is True:
        from bayes_pool.checkpoint import refits_dir as default_refits_dir
        refits_dir = default_refits_dir(STUDY_ID)
    ctx = Context(spec=spec, seed=seed, progress=progress, progressbar=progressbar,
                  workers=workers, placebo_draws=placebo_draws, frame_2012=frame_2012,
                  scheduler=scheduler, refits_dir=Path(refits_dir) if refits_dir else None,
                  mediation_model=mediation_model)
    analysis = Analysis(estimates=load_published(STUDY_ID), facts={"parts": list(parts)})
    for name in parts:
        analysis.extend(PARTS[name](main, ctx))
    if "table3" in parts:
        analysis.extend(Analysis(estimates=_table5_benchmark(analysis.estimates)))
        analysis.facts["headline"] = HEADLINE
    return analysis


ROBUSTNESS_PARTS = ("table3", "mediation", "fig2")
"""The parts whose key estimates get breakdown values (E-value, mediation rho, parallel trends)."""


def robustness(frame: pd.DataFrame, *, seed: int) -> Analysis:
    """The frequentist refits of :data:`ROBUSTNESS_PARTS` on the 2014-2018 waves, with the
    same child seeds as :func:`run` and no MCMC or bootstrap: their breakdown pieces
    (``.robustness``) and the event study's fit (``.results``), for ``bayes-pool robustness``."""
    from bayes_pool.specs import load_spec
    main = frame[pd.to_numeric(frame[TIME]).isin(MAIN_WAVES)].reset_index(drop=True)
    ctx = Context(spec=load_spec("did_logit"), seed=seed, progress=lambda message: None,
                  progressbar=False, workers=1, placebo_draws=0, frame_2012=None,
                  frequentist_only=True)
    analysis = Analysis(estimates=load_published(STUDY_ID).iloc[:0])
    for name in ROBUSTNESS_PARTS:
        analysis.extend(PARTS[name](main, ctx))
    return analysis


HEADLINE = [{"table": "3", "column": "(2)", "term": TREATMENT, "quantity": q}
            for q in ("ame", "beta")]
"""The key estimate the report opens with: Table 3 column (2), the DiD logit with controls
(the paper's benchmark, printed again as Table 5's benchmark), as AME and as beta."""


def sensitivity_target(frame: pd.DataFrame, *, seed: int = 0):
    """The benchmark of ``bayes-pool sensitivity``: Table 3 column (2), the DiD logit with the
    twelve controls on the 2014-2018 waves; key quantity the AME of ``policy`` (``seed``: no
    random step here)."""
    from bayes_pool.sensitivity import PublishedCell, Target
    main = frame[pd.to_numeric(frame[TIME]).isin(MAIN_WAVES)].reset_index(drop=True)
    design = table3_design("(2)")
    cell = dict(study=STUDY_ID, table="3", column="(2)", term=TREATMENT)
    return Target(kind="did", study=STUDY_ID, table="3", column="(2)", outcome=design.outcome,
                  treatment=TREATMENT, covariates=tuple(design.covariates),
                  prepared=design.prepare(main), time=TIME,
                  marked=PublishedCell(**cell, quantity="ame"),
                  centre=PublishedCell(**cell, quantity="beta"),
                  description="Table 3 (2): DiD logit with controls, province and year effects")


def _table5_benchmark(table: pd.DataFrame) -> pd.DataFrame:
    """Table 5's "benchmark regression" is Table 3 column (2) printed again: same rows."""
    rows = table[(table["table"] == "3") & (table["column"] == "(2)")
                 & (table["term"] == TREATMENT) & (table["source"] != "published")].copy()
    rows["table"], rows["column"] = "5", "benchmark"
    rows["note"] = rows["note"].str.cat(["same model as Table 3 (2)"] * len(rows), sep="; ")
    return rows
