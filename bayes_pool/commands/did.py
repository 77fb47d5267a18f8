"""`bayes-pool did`: difference-in-differences on any data set (with --staggered, --event-study)."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from bayes_pool.commands.common import (
    CategoricalOpt, ChainsOpt, ColumnOpt, DataOpt, DrawsOpt, FreqOnlyOpt, IdOpt, MappingOpt,
    MaxDivOpt, MaxRhatOpt, MinEssOpt, OutOpt, OutcomeOpt, ReferenceOpt, SeedOpt, StrictOpt,
    TableOpt, TuneOpt, command, fail, say, spec_with_sampler, split, thresholds,
    with_convergence)
from bayes_pool.commands.common import PublishedOpt
from bayes_pool.commands.generic import (backends, load_checked, progressbar, show,
                                         write_analysis)
from bayes_pool.errors import BayesPoolError
from bayes_pool.seeds import child_seed
from bayes_pool.specs import check_approx

VcovOpt = Annotated[Optional[str], typer.Option(
    help="Frequentist SEs, with Stata's small-sample conventions: cluster (by --cluster; "
         "linear: CRV1 as reghdfe, t(G-1); logit: G/(G-1)), iid (as regress / logit) or hc1 "
         "(as regress, robust: N/(N-K); logit: N/(N-1)). A 2x2 or few-unit design needs iid "
         "or hc1.")]


@command("did")
def did(data: DataOpt, outcome: OutcomeOpt,
        treatment: Annotated[str, typer.Option(help="0/1 treatment column (on after adoption).")],
        unit: Annotated[str, typer.Option(help="Unit column (e.g. province).")],
        time_col: Annotated[str, typer.Option("--time", help="Time column (e.g. year).")],
        covariates: Annotated[str, typer.Option(help="Comma-separated control columns.")] = "",
        family: Annotated[str, typer.Option(
            help="bernoulli (logit), gaussian, or t (linear with a Student-t likelihood in the "
                 "Bayesian model, for heavy-tailed outcomes; the frequentist fit stays "
                 "OLS).")] = "bernoulli",
        mapping: MappingOpt = None, seed: SeedOpt = 2024,
        spec: Annotated[Optional[str], typer.Option(
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
        frequentist_only: FreqOnlyOpt = False, vcov: VcovOpt = "cluster",
        cluster: Annotated[Optional[str], typer.Option(
            help="Column the SEs are clustered by with --vcov cluster (default: --unit; the "
                 "plain DiD only).")] = None,
        unit_effects: Annotated[Optional[str], typer.Option(
            help="Bayesian unit effects: correlated (the spec's default), exchangeable, or "
                 "fixed (one dummy per unit, not pooled: needed with fewer than 5 units; "
                 "plain DiD only).")] = None,
        published: PublishedOpt = None):
    """Difference-in-differences on any data set, frequentist and Bayesian.

    Frequentist: unit and time fixed effects, SEs clustered by unit (--vcov iid or hc1 for a
    2x2 or few units). Bayesian: partially pooled units (--unit-effects fixed for fewer than
    5) and time effects; --family t for a Student-t likelihood. Writes estimates.csv. With
    --cohort, also the staggered-robust ATT (--staggered) and event-time coefficients
    (--event-study). Text, categorical and value-labelled covariates enter as 0/1
    indicators."""
    start, scope = time.perf_counter(), dict(locals())  # the arguments, for the invocation
    from bayes_pool.api import DID_SPECS, _unit_effects
    from bayes_pool.categorical import parse_reference
    from bayes_pool.design import DiDDesign
    from bayes_pool.freq.ols import check_vcov
    from bayes_pool.mundlak import check_pooling
    from bayes_pool.specs import design_family, require_pooled
    covs, cats = split(covariates), split(categorical)
    gates = thresholds(max_r_hat, min_ess, max_divergences)
    try:
        refs = parse_reference(reference or ())
        if family not in DID_SPECS:
            raise BayesPoolError(f"--family must be one of {sorted(DID_SPECS)}, got {family!r}")
        design = DiDDesign(outcome=outcome, treatment=treatment, unit=unit, time=time_col,
                           covariates=covs, family=design_family(family), categorical=cats,
                           reference=refs, cluster=cluster)
        check_vcov(vcov)
        if cluster and (staggered or event_study):
            raise BayesPoolError("--cluster other than the unit is for the plain DiD only; "
                                 "--staggered and --event-study cluster by --unit")
        if (staggered or event_study) and not cohort:
            raise BayesPoolError("--staggered and --event-study need --cohort COL: the first "
                                 "treated period of each unit (0 or empty for never treated)")
        if control not in ("notyet", "never"):
            raise BayesPoolError(f"--control must be notyet or never, got {control!r}")
        check_approx(approx, family)
        model_spec = with_convergence(
            spec_with_sampler(spec or DID_SPECS[family], draws, tune, chains), gates
        ).with_unit_effects(_unit_effects(unit_effects))
        if staggered or event_study:
            require_pooled(model_spec, "--staggered or --event-study")
        if approx and model_spec.unit_effects == "fixed":
            raise BayesPoolError("--approx laplace approximates partially pooled units; drop "
                                 "it with --unit-effects fixed")
        loaded, frame = load_checked(data, mapping=mapping, id_col=id_col, covariates=covs,
                                     check=design.check, published=published)
        if not frequentist_only:
            check_pooling(model_spec.unit_effects, frame[unit].nunique(), unit)
        roles = dict(outcome=outcome, treatment=treatment, unit=unit, time=time_col,
                     covariates=covs, family=family, categorical=cats, reference=refs,
                     spec=model_spec, backends=backends(frequentist_only),
                     progressbar=progressbar(), vcov=vcov)

        def fit():
            import bayes_pool.api as bp
            result = bp.did(frame, **roles, seed=seed, approx=approx, table=table or "did",
                            column=column, cluster=cluster, published=published)
            if event_study:
                from bayes_pool.figures.event_study import plot_event_study
                say("Event study: leads and lags of adoption")
                result.analysis.extend(bp.event_study(
                    frame, **roles, cohort=cohort, control=control,
                    seed=child_seed(seed, "event_study")).analysis)
                result.analysis.figures.append(lambda folder, synthetic, est: {
                    "event_study": plot_event_study(est, folder / "event_study.png",
                                                    synthetic=synthetic)})
            if staggered:
                say("Extended TWFE: cohort x period effects, aggregated ATT")
                result.analysis.extend(bp.staggered(
                    frame, **roles, cohort=cohort, control=control,
                    seed=child_seed(seed, "staggered")).analysis)
            return result

        sampler = model_spec.sampler
        analysis = write_analysis(
            "did", fit, loaded=loaded, title=f"DiD on {data.name}", key_term=treatment,
            spec=model_spec, gates=gates, seed=seed, out_dir=out_dir, scope=scope, start=start,
            manifest={"design": design.__dict__ | {"covariates": list(covs)},
                      "spec": model_spec.to_dict()},
            progress=f"Fitting {family} DiD: frequentist TWFE" + (
                "" if frequentist_only else " and Bayesian " + (
                    "(Laplace approximation)" if approx else
                    f"({sampler.chains} x {sampler.draws} draws)")))
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    est = analysis.estimates
    show("did", est, est["term"] == treatment, f"DiD estimates of {treatment!r}", strict)
