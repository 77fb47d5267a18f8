"""`bayes-pool psm`: propensity-score matching and Bayesian ATTs on any data set."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_pool import runs
from bayes_pool.commands.common import (
    CategoricalOpt, ChainsOpt, DrawsOpt, FreqOnlyOpt, IdOpt, MaxDivOpt, MaxRhatOpt, MinEssOpt,
    OutOpt, ReferenceOpt, SeedOpt, StrictOpt, TableOpt, TuneOpt, base_thresholds,
    categorical_record, convergence_record, covariate_frame, fail, finish, gate,
    load_user_data, print_table, say, spec_with_sampler, split, thresholds, with_convergence)
from bayes_pool.commands.invocation import invocation
from bayes_pool.errors import BayesPoolError


def register(app) -> None:
    app.command("psm")(psm)


def psm(data: Annotated[Path, typer.Option(help="Data file (.csv .parquet .dta .sav).")],
        treatment: Annotated[str, typer.Option(help="0/1 treatment column.")],
        outcome: Annotated[str, typer.Option(help="Outcome column.")],
        covariates: Annotated[str, typer.Option(help="Comma-separated propensity covariates.")],
        categorical: CategoricalOpt = "", reference: ReferenceOpt = None,
        exact: Annotated[str, typer.Option(
            help="Comma-separated (categorical) covariates to match exactly on: adds column "
                 "knn_exact, k-NN within their cells, next to knn/radius/kernel.")] = "",
        mapping: Annotated[Optional[Path], typer.Option(help="TOML column mapping.")] = None,
        seed: SeedOpt = 2023,
        bootstrap: Annotated[int, typer.Option(
            help="Bootstrap replicates (radius, kernel SEs).")] = 200,
        out_dir: OutOpt = None, draws: DrawsOpt = None, tune: TuneOpt = None,
        chains: ChainsOpt = None, strict: StrictOpt = False,
        frequentist_only: FreqOnlyOpt = False,
        id_col: IdOpt = None, max_r_hat: MaxRhatOpt = None, min_ess: MinEssOpt = None,
        max_divergences: MaxDivOpt = None, table: TableOpt = None):
    """Propensity-score matching and Bayesian ATTs on any data set.

    Matching: k-NN (k=4, caliper 0.02), radius 0.01 and kernel, with --exact also k-NN within
    exact cells, each with its balance table. Bayesian: propensity, IPW, doubly robust and
    regression ATTs. Text, categorical and value-labelled covariates enter as 0/1 indicators;
    balance is reported for every level."""
    from bayes_pool.categorical import parse_reference
    from bayes_pool.psm_workflow import analyse_psm, prepare_psm
    from bayes_pool.workflow import write_run
    start = time.perf_counter()
    covs, cats, exacts = list(split(covariates)), list(split(categorical)), list(split(exact))
    gates = thresholds(max_r_hat, min_ess, max_divergences)
    labels = {"table": table or "psm", "balance_table": f"{table or 'psm'}_balance"}
    try:
        refs = parse_reference(reference or ())
        model_spec = with_convergence(spec_with_sampler("propensity_logit", draws, tune, chains),
                                      gates)
        loaded = load_user_data(data, mapping=mapping, unique=id_col)
        frame = covariate_frame(loaded, covs)
        prepare_psm(frame, treatment=treatment, outcome=outcome, covariates=covs,
                    categorical=cats, reference=refs, exact=exacts)  # reject bad input
        with runs.run_folder("psm", out=out_dir, seed=seed) as folder:
            say("Matching (k-NN, radius, kernel"
                + (f", k-NN exact on {', '.join(exacts)}" if exacts else "")
                + "), balance, and Bayesian propensity models")
            analysis = analyse_psm(frame, treatment=treatment, outcome=outcome,
                                   covariates=covs, categorical=cats, reference=refs,
                                   seed=seed, study="psm", spec=model_spec,
                                   bootstrap=bootstrap, exact=exacts, **labels,
                                   bayesian=not frequentist_only,
                                   progressbar=sys.stderr.isatty())
            analysis.estimates = gate(analysis.estimates, base_thresholds(model_spec), gates)
            write_run(folder, analysis, study="psm", title=f"PSM on {data.name}",
                      synthetic=False, key_term=treatment,
                      manifest={"command": "psm", "seed": seed, "data": loaded.manifest(),
                                "invocation": invocation("psm", locals()),
                                "categorical": categorical_record(analysis),
                                "convergence": convergence_record(model_spec, gates),
                                "spec": model_spec.to_dict(),
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    est = analysis.estimates
    print_table(est[(est["quantity"] == "att")], f"ATT of {treatment!r} on {outcome!r}")
    finish(runs.last_run("psm"), est, strict)
