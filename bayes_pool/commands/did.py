"""`bayes-pool did`: difference-in-differences on any data set (with --staggered, --event-study)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_pool import runs
from bayes_pool.commands.common import (
    CategoricalOpt, ChainsOpt, ColumnOpt, DrawsOpt, FreqOnlyOpt, IdOpt, MaxDivOpt, MaxRhatOpt,
    MinEssOpt, OutOpt, ReferenceOpt, SeedOpt, StrictOpt, TableOpt, TuneOpt, base_thresholds,
    categorical_record, convergence_record, covariate_frame, fail, finish, gate,
    load_user_data, print_table, say, spec_with_sampler, split, thresholds, with_convergence)
from bayes_pool.commands.invocation import invocation
from bayes_pool.errors import BayesPoolError
from bayes_pool.seeds import child_seed
from bayes_pool.specs import check_approx


def register(app) -> None:
    app.command("did")(did)


def did(data: Annotated[Path, typer.Option(help="Data file (.csv .parquet .dta .sav).")],
        outcome: Annotated[str, typer.Option(help="Outcome column.")],
        treatment: Annotated[str, typer.Option(help="0/1 treatment column (on after adoption).")],
        unit: Annotated[str, typer.Option(help="Unit column (e.g. province).")],
        time_col: Annotated[str, typer.Option("--time", help="Time column (e.g. year).")],
        covariates: Annotated[str, typer.Option(help="Comma-separated control columns.")] = "",
        family: Annotated[str, typer.Option(help="bernoulli (logit) or gaussian.")] = "bernoulli",
        mapping: Annotated[Optional[Path], typer.Option(help="TOML column mapping.")] = None,
        seed: SeedOpt = 2024, spec: Annotated[Optional[str], typer.Option(
            help="Model spec (default did_logit or did_linear).")] = None,
        out_dir: OutOpt = None, draws: DrawsOpt = None, tune: TuneOpt = None,
        chains: ChainsOpt = None, strict: StrictOpt = False,
        cohort: Annotated[Optional[str], typer.Option(
            help="First treated period of each unit (0 or empty: never treated).")] = None,
        staggered: Annotated[bool, typer.Option(
            "--staggered", help="Also fit Wooldridge's extended TWFE (needs --cohort).")] = False,
        event_study: Annotated[bool, typer.Option(
            "--event-study", help="Also fit the event study (needs --cohort).")] = False,
        control: Annotated[str, typer.Option(
            help="Control group of --staggered and --event-study: notyet (not-yet-treated, "
                 "R etwfe's default) or never (never-treated).")] = "notyet",
        id_col: IdOpt = None, max_r_hat: MaxRhatOpt = None, min_ess: MinEssOpt = None,
        max_divergences: MaxDivOpt = None,
        approx: Annotated[Optional[str], typer.Option(
            help="'laplace': the Laplace approximation instead of NUTS (logit; for data too "
                 "large for NUTS, e.g. a full survey year; treatment rows only).")] = None,
        categorical: CategoricalOpt = "", reference: ReferenceOpt = None,
        table: TableOpt = None, column: ColumnOpt = None,
        frequentist_only: FreqOnlyOpt = False):
    """Difference-in-differences on any data set, frequentist and Bayesian.

    Frequentist: unit and time fixed effects, SEs clustered by unit. Bayesian: partially pooled
    units and time effects. Writes estimates.csv. With --cohort, also the staggered-robust ATT
    (--staggered) and event-time coefficients (--event-study). Text, categorical and
    value-labelled covariates enter as 0/1 indicators."""
    from bayes_pool.categorical import parse_reference
    from bayes_pool.design import DiDDesign
    start = time.perf_counter()
    covs, cats = split(covariates), split(categorical)
    gates = thresholds(max_r_hat, min_ess, max_divergences)
    try:
        refs = parse_reference(reference or ())
        design = DiDDesign(outcome=outcome, treatment=treatment, unit=unit, time=time_col,
                           covariates=covs, family=family, categorical=cats, reference=refs)
        if (staggered or event_study) and not cohort:
            raise BayesPoolError("--staggered and --event-study need --cohort COL: the first "
                                 "treated period of each unit (0 or empty for never treated)")
        if control not in ("notyet", "never"):
            raise BayesPoolError(f"--control must be notyet or never, got {control!r}")
        check_approx(approx, family)
        model_spec = with_convergence(
            spec_with_sampler(spec or ("did_logit" if family == "bernoulli" else "did_linear"),
                              draws, tune, chains), gates)
        loaded = load_user_data(data, mapping=mapping, unique=id_col)
        frame = covariate_frame(loaded, covs)
        design.check(frame)  # reject bad input before any folder or model exists
        with runs.run_folder("did", out=out_dir, seed=seed) as folder:
            from bayes_pool.workflow import analyse_did, write_run  # imports PyMC: after checks
            say(f"Fitting {family} DiD: frequentist TWFE" + ("" if frequentist_only else
                 " and Bayesian " + ("(Laplace approximation)" if approx else
                                     f"({model_spec.sampler.chains} x "
                                     f"{model_spec.sampler.draws} draws)")))
            analysis = analyse_did(frame, design, model_spec, seed=seed, study="did",
                                   table=table or "did", column=column or family,
                                   approx=approx, progressbar=sys.stderr.isatty(),
                                   bayesian=not frequentist_only)
            roles = dict(outcome=outcome, treatment=treatment, unit=unit, time=time_col,
                         cohort=cohort, covariates=covs, family=family, study="did",
                         spec=model_spec, progressbar=sys.stderr.isatty(), control=control,
                         categorical=cats, reference=refs, bayesian=not frequentist_only)
            if event_study:
                from bayes_pool.figures.event_study import plot_event_study
                from bayes_pool.staggered_workflow import analyse_event_study
                say("Event study: leads and lags of adoption")
                analysis.extend(analyse_event_study(
                    frame, seed=child_seed(seed, "event_study"), **roles))
                analysis.figures.append(lambda folder, synthetic, est: {
                    "event_study": plot_event_study(est, folder / "event_study.png",
                                                    synthetic=synthetic)})
            if staggered:
                from bayes_pool.staggered_workflow import analyse_staggered
                say("Extended TWFE: cohort x period effects, aggregated ATT")
                analysis.extend(analyse_staggered(frame, seed=child_seed(seed, "staggered"),
                                                  **roles))
            analysis.estimates = gate(analysis.estimates, base_thresholds(model_spec), gates)
            write_run(folder, analysis, study="did", title=f"DiD on {data.name}", synthetic=False,
                      key_term=treatment, manifest={"command": "did", "seed": seed,
                                "invocation": invocation("did", locals()),
                                "convergence": convergence_record(model_spec, gates),
                                "data": loaded.manifest(),
                                "design": design.__dict__ | {"covariates": list(covs)},
                                "categorical": categorical_record(analysis),
                                "spec": model_spec.to_dict(),
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    final = runs.last_run("did")
    est = analysis.estimates
    print_table(est[est["term"] == treatment], f"DiD estimates of {treatment!r}")
    finish(final, est, strict)
