"""`bayes-pool mediate`: natural indirect, direct and total effects on any data set."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from bayes_pool.commands.common import (
    CategoricalOpt, ChainsOpt, ColumnOpt, DataOpt, DrawsOpt, IdOpt, MappingOpt, MaxDivOpt,
    MaxRhatOpt, MinEssOpt, OutOpt, OutcomeOpt, ReferenceOpt, SeedOpt, StrictOpt, TableOpt,
    TreatmentOpt, TuneOpt, command, fail, split, thresholds, with_convergence, with_sampler)
from bayes_pool.commands.common import PublishedOpt
from bayes_pool.commands.generic import (backends, load_checked, progressbar, show,
                                         write_analysis)
from bayes_pool.commands.did import VcovOpt
from bayes_pool.errors import BayesPoolError


@command("mediate")
def mediate(data: DataOpt, treatment: TreatmentOpt,
            mediator: Annotated[str, typer.Option(help="Mediator column (continuous).")],
            outcome: OutcomeOpt,
            covariates: Annotated[str, typer.Option(help="Comma-separated controls.")] = "",
            outcome_family: Annotated[str, typer.Option(
                help="bernoulli (logit) or gaussian.")] = "bernoulli",
            unit: Annotated[Optional[str], typer.Option(help="Unit column (fixed/partially "
                                                        "pooled effects).")] = None,
            time_col: Annotated[Optional[str], typer.Option("--time", help="Time column.")] = None,
            mapping: MappingOpt = None, seed: SeedOpt = 2024,
            bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 200,
            out_dir: OutOpt = None, draws: DrawsOpt = None, tune: TuneOpt = None,
            chains: ChainsOpt = None, strict: StrictOpt = False,
            frequentist_only: Annotated[bool, typer.Option(
                "--frequentist-only", help="Skip the Bayesian model (quick look).")] = False,
            id_col: IdOpt = None, max_r_hat: MaxRhatOpt = None, min_ess: MinEssOpt = None,
            max_divergences: MaxDivOpt = None, categorical: CategoricalOpt = "",
            reference: ReferenceOpt = None, table: TableOpt = None, column: ColumnOpt = None,
            vcov: VcovOpt = None, published: PublishedOpt = None):
    """Mediation on any data set: natural indirect, direct and total effects.

    Also the proportion mediated, each frequentist (stepwise, Sobel, bootstrap) and Bayesian
    (joint model). Text, categorical and value-labelled covariates enter as 0/1 indicators."""
    start, scope = time.perf_counter(), dict(locals())  # the arguments, for the invocation
    from bayes_pool.bayes.mediation import load_mediation_spec
    from bayes_pool.categorical import expand, parse_reference
    from bayes_pool.design.mediation import MediationDesign
    covs, cats = split(covariates), split(categorical)
    gates = thresholds(max_r_hat, min_ess, max_divergences)
    try:
        refs = parse_reference(reference or ())
        if vcov is not None:
            from bayes_pool.freq.ols import check_vcov
            check_vcov(vcov)
        model_spec = with_convergence(with_sampler(load_mediation_spec(), draws, tune, chains),
                                      gates)

        def check(frame):
            ex = expand(frame, covs, categorical=cats, reference=refs,
                        required=[c for c in (treatment, mediator, outcome, unit, time_col) if c])
            MediationDesign(outcome=outcome, treatment=treatment, mediator=mediator,
                            covariates=ex.covariates, unit=unit, time=time_col,
                            family=outcome_family).prepare(ex.frame)

        loaded, frame = load_checked(data, mapping=mapping, id_col=id_col, covariates=covs,
                                     check=check, published=published)

        def fit():
            import bayes_pool.api as bp
            from bayes_pool.figures.mediation import plot_mediation
            result = bp.mediate(frame, treatment=treatment, mediator=mediator, outcome=outcome,
                                covariates=covs, family=outcome_family, unit=unit,
                                time=time_col, categorical=cats, reference=refs,
                                spec=model_spec, seed=seed, backends=backends(frequentist_only),
                                bootstrap=bootstrap, table=table, column=column,
                                progressbar=progressbar(), vcov=vcov, published=published)
            result.analysis.figures.append(lambda folder, synthetic, est: {
                "mediation": plot_mediation(est[est["table"] == "mediation"],
                                            folder / "mediation.png",
                                            title=f"Mediation by {mediator}",
                                            synthetic=synthetic)})
            return result

        analysis = write_analysis(
            "mediate", fit, loaded=loaded, title=f"Mediation on {data.name}",
            key_term=treatment, spec=model_spec, gates=gates, seed=seed, out_dir=out_dir,
            scope=scope, start=start, manifest={},
            progress="Mediation: stepwise steps, Sobel, bootstrap, and the joint Bayesian model")
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    est = analysis.estimates
    show("mediate", est, est["table"] == "mediation",
         f"Mediation of {treatment!r} by {mediator!r}", strict)
