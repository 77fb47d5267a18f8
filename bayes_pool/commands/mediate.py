"""`bayes-pool mediate`: natural indirect, direct and total effects on any data set."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_pool import runs
from bayes_pool.commands.common import (
    CategoricalOpt, ChainsOpt, ColumnOpt, DrawsOpt, IdOpt, MaxDivOpt, MaxRhatOpt, MinEssOpt,
    OutOpt, ReferenceOpt, SeedOpt, StrictOpt, TableOpt, TuneOpt, base_thresholds,
    categorical_record, convergence_record, covariate_frame, fail, finish, gate,
    load_user_data, print_table, say, split, thresholds, with_convergence)
from bayes_pool.commands.invocation import invocation
from bayes_pool.errors import BayesPoolError


def register(app) -> None:
    app.command("mediate")(mediate)


def mediate(data: Annotated[Path, typer.Option(help="Data file (.csv .parquet .dta .sav).")],
            treatment: Annotated[str, typer.Option(help="0/1 treatment column.")],
            mediator: Annotated[str, typer.Option(help="Mediator column (continuous).")],
            outcome: Annotated[str, typer.Option(help="Outcome column.")],
            covariates: Annotated[str, typer.Option(help="Comma-separated controls.")] = "",
            outcome_family: Annotated[str, typer.Option(
                help="bernoulli (logit) or gaussian.")] = "bernoulli",
            unit: Annotated[Optional[str], typer.Option(help="Unit column (fixed/partially "
                                                        "pooled effects).")] = None,
            time_col: Annotated[Optional[str], typer.Option("--time", help="Time column.")] = None,
            mapping: Annotated[Optional[Path], typer.Option(help="TOML column mapping.")] = None,
            seed: SeedOpt = 2024,
            bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 200,
            out_dir: OutOpt = None, draws: DrawsOpt = None, tune: TuneOpt = None,
            chains: ChainsOpt = None, strict: StrictOpt = False,
            frequentist_only: Annotated[bool, typer.Option(
                "--frequentist-only", help="Skip the Bayesian model (quick look).")] = False,
            id_col: IdOpt = None, max_r_hat: MaxRhatOpt = None, min_ess: MinEssOpt = None,
            max_divergences: MaxDivOpt = None, categorical: CategoricalOpt = "",
            reference: ReferenceOpt = None, table: TableOpt = None, column: ColumnOpt = None):
    """Mediation on any data set: natural indirect, direct and total effects.

    Also the proportion mediated, each frequentist (stepwise, Sobel, bootstrap) and Bayesian
    (joint model). Text, categorical and value-labelled covariates enter as 0/1 indicators."""
    from bayes_pool.bayes.mediation import load_mediation_spec
    from bayes_pool.categorical import expand, parse_reference
    from bayes_pool.figures.mediation import plot_mediation
    from bayes_pool.freq.mediation import MediationDesign
    from bayes_pool.mediation_workflow import analyse_mediation
    from bayes_pool.workflow import write_run
    start = time.perf_counter()
    covs, cats = split(covariates), split(categorical)
    gates = thresholds(max_r_hat, min_ess, max_divergences)
    tables = (f"{table}_mediator", f"{table}_outcome") if table else ("mediator_model",
                                                                       "outcome_model")
    try:
        refs = parse_reference(reference or ())
        model_spec = load_mediation_spec()
        changes = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items()
                   if v is not None}
        if changes:
            model_spec = model_spec.with_sampler(**changes)
        model_spec = with_convergence(model_spec, gates)
        loaded = load_user_data(data, mapping=mapping, unique=id_col)
        frame = covariate_frame(loaded, covs)
        ex = expand(frame, covs, categorical=cats, reference=refs,  # reject bad input
                    required=[c for c in (treatment, mediator, outcome, unit, time_col) if c])
        MediationDesign(outcome=outcome, treatment=treatment, mediator=mediator,
                        covariates=ex.covariates, unit=unit, time=time_col,
                        family=outcome_family).prepare(ex.frame)
        with runs.run_folder("mediate", out=out_dir, seed=seed) as folder:
            say("Mediation: stepwise steps, Sobel, bootstrap, and the joint Bayesian model")
            analysis = analyse_mediation(frame, treatment=treatment, mediator=mediator,
                                         outcome=outcome, covariates=covs, categorical=cats,
                                         reference=refs, unit=unit, tables=tables,
                                         column=column,
                                         time=time_col, outcome_family=outcome_family,
                                         seed=seed, study="mediate", spec=model_spec,
                                         bootstrap=bootstrap, bayesian=not frequentist_only,
                                         progressbar=sys.stderr.isatty())
            analysis.figures.append(lambda folder, synthetic, table: {
                "mediation": plot_mediation(table[table["table"] == "mediation"],
                                            folder / "mediation.png",
                                            title=f"Mediation by {mediator}",
                                            synthetic=synthetic)})
            analysis.estimates = gate(analysis.estimates, base_thresholds(model_spec), gates)
            write_run(folder, analysis, study="mediate", title=f"Mediation on {data.name}",
                      synthetic=False, key_term=treatment,
                      manifest={"command": "mediate", "seed": seed, "data": loaded.manifest(),
                                "invocation": invocation("mediate", locals()),
                                "categorical": categorical_record(analysis),
                                "convergence": convergence_record(model_spec, gates),
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    est = analysis.estimates
    print_table(est[est["table"] == "mediation"], f"Mediation of {treatment!r} by {mediator!r}")
    finish(runs.last_run("mediate"), est, strict)
