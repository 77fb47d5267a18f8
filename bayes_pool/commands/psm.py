"""`bayes-pool psm`: propensity-score matching and Bayesian ATTs on any data set."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from bayes_pool.commands.common import (
    CategoricalOpt, ChainsOpt, DataOpt, DrawsOpt, FreqOnlyOpt, IdOpt, MappingOpt, MaxDivOpt,
    MaxRhatOpt, MinEssOpt, OutOpt, OutcomeOpt, ReferenceOpt, SeedOpt, StrictOpt, TableOpt,
    TreatmentOpt, TuneOpt, command, fail, spec_with_sampler, split, thresholds,
    with_convergence)
from bayes_pool.commands.common import PublishedOpt
from bayes_pool.commands.generic import (backends, load_checked, progressbar, show,
                                         write_analysis)
from bayes_pool.errors import BayesPoolError


@command("psm")
def psm(data: DataOpt, treatment: TreatmentOpt, outcome: OutcomeOpt,
        covariates: Annotated[str, typer.Option(help="Comma-separated propensity covariates.")],
        categorical: CategoricalOpt = "", reference: ReferenceOpt = None,
        exact: Annotated[str, typer.Option(
            help="Comma-separated (categorical) covariates to match exactly on: adds column "
                 "knn_exact, k-NN within their cells, next to knn/radius/kernel.")] = "",
        mapping: MappingOpt = None, seed: SeedOpt = 2023,
        bootstrap: Annotated[int, typer.Option(
            help="Bootstrap replicates (radius, kernel SEs).")] = 200,
        out_dir: OutOpt = None, draws: DrawsOpt = None, tune: TuneOpt = None,
        chains: ChainsOpt = None, strict: StrictOpt = False,
        frequentist_only: FreqOnlyOpt = False,
        id_col: IdOpt = None, max_r_hat: MaxRhatOpt = None, min_ess: MinEssOpt = None,
        max_divergences: MaxDivOpt = None, table: TableOpt = None,
        published: PublishedOpt = None):
    """Propensity-score matching and Bayesian ATTs on any data set.

    Matching: k-NN (k=4, caliper 0.02), radius 0.01 and kernel, with --exact also k-NN within
    exact cells, each with its balance table. Bayesian: propensity, IPW, doubly robust and
    regression ATTs. Text, categorical and value-labelled covariates enter as 0/1 indicators;
    balance is reported for every level."""
    start, scope = time.perf_counter(), dict(locals())  # the arguments, for the invocation
    from bayes_pool.categorical import parse_reference
    from bayes_pool.psm_workflow import prepare_psm
    covs, cats, exacts = list(split(covariates)), list(split(categorical)), list(split(exact))
    gates = thresholds(max_r_hat, min_ess, max_divergences)
    try:
        refs = parse_reference(reference or ())
        model_spec = with_convergence(spec_with_sampler("propensity_logit", draws, tune, chains),
                                      gates)
        loaded, frame = load_checked(
            data, mapping=mapping, id_col=id_col, covariates=covs,
            check=lambda f: prepare_psm(f, treatment=treatment, outcome=outcome, covariates=covs,
                                        categorical=cats, reference=refs, exact=exacts),
            published=published)

        def fit():
            import bayes_pool.api as bp
            return bp.psm(frame, treatment=treatment, outcome=outcome, covariates=covs,
                          categorical=cats, reference=refs, exact=exacts, spec=model_spec,
                          seed=seed, backends=backends(frequentist_only), bootstrap=bootstrap,
                          table=table or "psm", published=published,
                          progressbar=progressbar())

        analysis = write_analysis(
            "psm", fit, loaded=loaded, title=f"PSM on {data.name}", key_term=treatment,
            spec=model_spec, gates=gates, seed=seed, out_dir=out_dir, scope=scope, start=start,
            manifest={"spec": model_spec.to_dict()},
            progress="Matching (k-NN, radius, kernel"
                     + (f", k-NN exact on {', '.join(exacts)}" if exacts else "")
                     + "), balance, and Bayesian propensity models")
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    est = analysis.estimates
    show("psm", est, est["quantity"] == "att", f"ATT of {treatment!r} on {outcome!r}", strict)
