"""`bayes-pool`: simulate, run, compare, and the generic `did` on any data set.

Every command checks its input before it creates anything under ``outputs/``; a rejected input
exits with code 2 and a message naming the column, the values and the row count.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from bayes_pool import __version__, compare, estimates, runs, studies
from bayes_pool.errors import BayesPoolError, ConvergenceError
from bayes_pool.seeds import child_seed
from bayes_pool.specs import check_approx

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Bayesian reanalysis of published studies next to frequentist "
                       "replications and the published numbers.")
console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 160)

EXIT_INPUT = 2
EXIT_NOT_CONVERGED = 3

SeedOpt = Annotated[int, typer.Option(help="Root random seed (data generator and sampler).")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Write the run here instead of "
                                                "a new folder under outputs/.")]
DrawsOpt = Annotated[Optional[int], typer.Option(help="Posterior draws per chain (default: spec).")]
TuneOpt = Annotated[Optional[int], typer.Option(help="Tuning steps per chain (default: spec).")]
ChainsOpt = Annotated[Optional[int], typer.Option(help="Chains (default: spec).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit non-zero (3) if any posterior "
                                         "fails the convergence thresholds.")]
MaxRhatOpt = Annotated[Optional[float], typer.Option(
    "--max-r-hat", min=0.0, help="Converged only if R-hat <= this (default: spec, 1.01).")]
MinEssOpt = Annotated[Optional[float], typer.Option(
    "--min-ess", min=0.0, help="Converged only if bulk and tail ESS >= this (default: spec, 400).")]
MaxDivOpt = Annotated[Optional[int], typer.Option(
    "--max-divergences", min=0, help="Converged only if divergences <= this (default: spec, 0).")]
FreqOnlyOpt = Annotated[bool, typer.Option(
    "--frequentist-only", help="Skip the Bayesian models (quick look).")]
IdOpt = Annotated[Optional[str], typer.Option(
    "--id", help="Respondent id column: checked to be complete and free of duplicates.")]
CategoricalOpt = Annotated[str, typer.Option(
    help="Comma-separated numeric covariates to expand into 0/1 indicators (text, pandas "
         "categorical and value-labelled covariates always are; others enter linearly).")]
ReferenceOpt = Annotated[Optional[list[str]], typer.Option(
    "--reference", help="COL=LEVEL: reference level of a categorical covariate (repeatable; "
                        "default: its most frequent level).")]
TableOpt = Annotated[Optional[str], typer.Option(
    "--table", help="Label of the rows' table column (default: the analysis, e.g. psm).")]
StudyArg = Annotated[str, typer.Argument(help="Study id (`bayes-pool studies` lists them).")]
ColumnOpt = Annotated[Optional[str], typer.Option(
    "--column", help="Label of the rows' column column (default: the analysis's own).")]


def _fail(exc: Exception) -> None:
    from rich.markup import escape  # messages quote mapping syntax such as [missing] codes
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def _say(msg: str) -> None:
    console.print(f"[cyan]›[/] {msg}", highlight=False)


def _spec(name: str, draws, tune, chains):
    from bayes_pool.specs import load_spec
    spec = load_spec(name)
    changes = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items() if v is not None}
    return spec.with_sampler(**changes) if changes else spec


def _load_user_data(path: Path, schema=None, mapping: Path | None = None,
                    unique: str | None = None):
    from bayes_pool.data import load
    return load(path, schema=schema, mapping=mapping, unique=unique)


def _split(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _covariate_frame(loaded, covariates) -> pd.DataFrame:
    """The loaded frame with value-labelled covariates as categoricals of their labels."""
    from bayes_pool.data.labels import apply_value_labels
    return apply_value_labels(loaded.frame, loaded.value_labels, covariates)[0]


def _categorical_record(analysis) -> dict:
    """The categorical expansions of an analysis's facts, by covariate, for the manifest."""
    found = {}
    for facts in analysis.facts.values():
        if isinstance(facts, dict) and isinstance(facts.get("categorical"), dict):
            found.update(facts["categorical"])
    return found


def _flag(option: str) -> str:
    """A run option as its command-line flag (``parts`` is ``--only``)."""
    return "--" + ("only" if option == "parts" else option.replace("_", "-"))


def _thresholds(max_r_hat, min_ess, max_divergences) -> dict:
    """Convergence thresholds given on the command line, as :class:`specs.Convergence` fields."""
    given = dict(max_r_hat=max_r_hat, min_ess_bulk=min_ess, min_ess_tail=min_ess,
                 max_divergences=max_divergences)
    return {k: v for k, v in given.items() if v is not None}


def _with_convergence(spec, overrides: dict):
    """A copy of ``spec`` (a ModelSpec, or a spec wrapping one as ``.model``) whose
    [convergence] thresholds are replaced by ``overrides``."""
    from dataclasses import replace
    if not overrides or spec is None:
        return spec
    if hasattr(spec, "model"):  # MediationSpec and the like wrap a ModelSpec
        return replace(spec, model=_with_convergence(spec.model, overrides))
    return replace(spec, convergence=replace(spec.convergence, **overrides))


def _gate(est: pd.DataFrame, base, overrides: dict) -> pd.DataFrame:
    """Re-judge every posterior row against the thresholds given on the command line, from
    the diagnostic columns (:func:`bayes_pool.estimates.rejudge`; ``base``: the run's spec
    thresholds)."""
    return estimates.rejudge(est, overrides, base)


@app.command()
def simulate(study: StudyArg,
             seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
             n: Annotated[Optional[int], typer.Option(help="Rows.")] = None,
             out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for the CSV "
                                                             "and its truth JSON.")] = None):
    """Write the study's calibrated synthetic data set (CSV) and its truth (JSON)."""
    try:
        kwargs = {k: v for k, v in dict(seed=seed, n=n).items() if v is not None}
        data = studies.get(study).simulate(**kwargs)
    except (BayesPoolError, ValueError) as exc:
        _fail(exc)
    folder = out_dir or runs.outputs_dir() / study / "synthetic"
    data_path, truth_path = data.write(folder, stem=f"synthetic-seed{data.seed}")
    out.print(f"SYNTHETIC data: {len(data.frame)} rows -> {data_path}\ntruth -> {truth_path}")


@app.command()
def run(study: StudyArg,
        data: Annotated[Optional[Path], typer.Option(help="Survey file (.dta .sav .csv "
                                                     ".parquet); default: synthetic data.")] = None,
        mapping: Annotated[Optional[Path], typer.Option(help="TOML mapping raw -> canonical "
                                                        "columns and recodes.")] = None,
        seed: SeedOpt = 2024, spec: Annotated[Optional[str], typer.Option(
            help="Model spec name in models/ or a TOML path.")] = None,
        out_dir: OutOpt = None, draws: DrawsOpt = None, tune: TuneOpt = None,
        chains: ChainsOpt = None, strict: StrictOpt = False,
        only: Annotated[Optional[str], typer.Option(
            help="Comma-separated parts to run (default all), e.g. table2,table3.")] = None,
        placebo_draws: Annotated[Optional[int], typer.Option(
            help="Placebo refits (default 500, as the paper).")] = None,
        workers: Annotated[Optional[int], typer.Option(
            help="Parallel workers for refit loops (default: all cores; 1 = in-process).")] = None,
        mediation_model: Annotated[Optional[str], typer.Option(
            help="Bayesian mediator of a study's mediation part: index (the index as "
                 "observed, as the paper; default) or latent (measurement model of its "
                 "items, slower).")] = None,
        scheduler: Annotated[Optional[str], typer.Option(
            help="Existing dask scheduler for refit loops, e.g. tcp://host:8786 (default: "
                 "$DASK_SCHEDULER_ADDRESS, else a local cluster).")] = None,
        max_r_hat: MaxRhatOpt = None, min_ess: MinEssOpt = None,
        max_divergences: MaxDivOpt = None):
    """Re-analyse a study: published vs frequentist vs Bayesian, into a new run folder."""
    start = time.perf_counter()
    gates = _thresholds(max_r_hat, min_ess, max_divergences)
    extra = {k: v for k, v in dict(
        parts=tuple(p.strip() for p in only.split(",") if p.strip()) if only else None,
        placebo_draws=placebo_draws, workers=workers, scheduler=scheduler,
        mediation_model=mediation_model).items()
        if v is not None}
    try:
        record = studies.get(study)
        record.check_options(extra, flag=_flag)
        model_spec = _with_convergence(
            _spec(spec or record.default_spec, draws, tune, chains)
            if record.default_spec or spec else None, gates)
        if data is None:
            _say(f"No --data: generating the SYNTHETIC {study} data set (seed {seed})")
            sim = record.simulate(seed=seed)
            frame, synthetic = sim.frame, True
            source = {"kind": "synthetic", "seed": seed, "options": sim.options, "truth": sim.truth}
            if record.synthetic_extras is not None:
                extras = record.synthetic_extras(seed)
                extra.update(extras["run_kwargs"])
                source["extras"] = extras["manifest"]
        else:
            _say(f"Loading {data}")
            loaded = _load_user_data(data, mapping=mapping)
            frame, synthetic = record.prepare(loaded.frame, source=str(data)), False
            source = {"kind": "file", **loaded.manifest()}
        record.check(frame)  # reject bad input before any folder or model exists
        if synthetic:
            from bayes_pool.data.io import fingerprint
            source.update(fingerprint=fingerprint(frame), n_rows=len(frame))
        with runs.run_folder(study, out=out_dir, seed=seed) as folder:
            analysis = record.pipeline(frame, spec=model_spec, seed=seed, progress=_say,
                               progressbar=sys.stderr.isatty(), **extra)
            analysis.estimates = _gate(analysis.estimates, _base(model_spec), gates)
            _say("Writing estimates, comparison, posterior and figures")
            from bayes_pool.workflow import write_run
            write_run(folder, analysis, study=study, title=record.title, synthetic=synthetic,
                      key_term=record.key_term, manifest={
                                "command": "run", "seed": seed, "data": source,
                                "table_names": dict(record.labels),
                                "invocation": _invocation("run", locals()),
                                "convergence": _convergence_record(model_spec, gates),
                                "spec": model_spec.to_dict() if model_spec else None,
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        _fail(exc)
    final = runs.last_run(study)
    _print_comparison(final, synthetic, record.key_term)
    _finish(final, analysis.estimates, strict)


@app.command("compare")
def compare_cmd(run_dir: Annotated[Path, typer.Argument(help="A run folder under outputs/.")]):
    """Print the published vs frequentist vs Bayesian comparison of an earlier run."""
    import json
    if not (run_dir / "estimates.csv").exists():
        _fail(BayesPoolError(f"{run_dir} holds no estimates.csv (is it a finished run folder?)"))
    synthetic = json.loads((run_dir / "manifest.json").read_text()).get("synthetic", True) \
        if (run_dir / "manifest.json").exists() else True
    _print_comparison(run_dir, synthetic)


@app.command()
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
    covs, cats = _split(covariates), _split(categorical)
    gates = _thresholds(max_r_hat, min_ess, max_divergences)
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
        model_spec = _with_convergence(
            _spec(spec or ("did_logit" if family == "bernoulli" else "did_linear"),
                  draws, tune, chains), gates)
        loaded = _load_user_data(data, mapping=mapping, unique=id_col)
        frame = _covariate_frame(loaded, covs)
        design.check(frame)  # reject bad input before any folder or model exists
        with runs.run_folder("did", out=out_dir, seed=seed) as folder:
            from bayes_pool.workflow import analyse_did, write_run  # imports PyMC: after checks
            _say(f"Fitting {family} DiD: frequentist TWFE" + ("" if frequentist_only else
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
                _say("Event study: leads and lags of adoption")
                analysis.extend(analyse_event_study(
                    frame, seed=child_seed(seed, "event_study"), **roles))
                analysis.figures.append(lambda folder, synthetic, est: {
                    "event_study": plot_event_study(est, folder / "event_study.png",
                                                    synthetic=synthetic)})
            if staggered:
                from bayes_pool.staggered_workflow import analyse_staggered
                _say("Extended TWFE: cohort x period effects, aggregated ATT")
                analysis.extend(analyse_staggered(frame, seed=child_seed(seed, "staggered"),
                                                  **roles))
            analysis.estimates = _gate(analysis.estimates, _base(model_spec), gates)
            write_run(folder, analysis, study="did", title=f"DiD on {data.name}", synthetic=False,
                      key_term=treatment, manifest={"command": "did", "seed": seed,
                                "invocation": _invocation("did", locals()),
                                "convergence": _convergence_record(model_spec, gates),
                                "data": loaded.manifest(),
                                "design": design.__dict__ | {"covariates": list(covs)},
                                "categorical": _categorical_record(analysis),
                                "spec": model_spec.to_dict(),
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        _fail(exc)
    final = runs.last_run("did")
    est = analysis.estimates
    _print_table(est[est["term"] == treatment], f"DiD estimates of {treatment!r}")
    _finish(final, est, strict)


@app.command()
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
        bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates (radius, kernel SEs).")] = 200,
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
    covs, cats, exacts = list(_split(covariates)), list(_split(categorical)), list(_split(exact))
    gates = _thresholds(max_r_hat, min_ess, max_divergences)
    labels = {"table": table or "psm", "balance_table": f"{table or 'psm'}_balance"}
    try:
        refs = parse_reference(reference or ())
        model_spec = _with_convergence(_spec("propensity_logit", draws, tune, chains), gates)
        loaded = _load_user_data(data, mapping=mapping, unique=id_col)
        frame = _covariate_frame(loaded, covs)
        prepare_psm(frame, treatment=treatment, outcome=outcome, covariates=covs,
                    categorical=cats, reference=refs, exact=exacts)  # reject bad input
        with runs.run_folder("psm", out=out_dir, seed=seed) as folder:
            _say("Matching (k-NN, radius, kernel"
                 + (f", k-NN exact on {', '.join(exacts)}" if exacts else "")
                 + "), balance, and Bayesian propensity models")
            analysis = analyse_psm(frame, treatment=treatment, outcome=outcome,
                                   covariates=covs, categorical=cats, reference=refs,
                                   seed=seed, study="psm", spec=model_spec,
                                   bootstrap=bootstrap, exact=exacts, **labels,
                                   bayesian=not frequentist_only,
                                   progressbar=sys.stderr.isatty())
            analysis.estimates = _gate(analysis.estimates, _base(model_spec), gates)
            write_run(folder, analysis, study="psm", title=f"PSM on {data.name}",
                      synthetic=False, key_term=treatment,
                      manifest={"command": "psm", "seed": seed, "data": loaded.manifest(),
                                "invocation": _invocation("psm", locals()),
                                "categorical": _categorical_record(analysis),
                                "convergence": _convergence_record(model_spec, gates),
                                "spec": model_spec.to_dict(),
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        _fail(exc)
    est = analysis.estimates
    _print_table(est[(est["quantity"] == "att")], f"ATT of {treatment!r} on {outcome!r}")
    _finish(runs.last_run("psm"), est, strict)


@app.command()
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
    covs, cats = _split(covariates), _split(categorical)
    gates = _thresholds(max_r_hat, min_ess, max_divergences)
    tables = (f"{table}_mediator", f"{table}_outcome") if table else ("mediator_model",
                                                                       "outcome_model")
    try:
        refs = parse_reference(reference or ())
        model_spec = load_mediation_spec()
        changes = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items()
                   if v is not None}
        if changes:
            model_spec = model_spec.with_sampler(**changes)
        model_spec = _with_convergence(model_spec, gates)
        loaded = _load_user_data(data, mapping=mapping, unique=id_col)
        frame = _covariate_frame(loaded, covs)
        ex = expand(frame, covs, categorical=cats, reference=refs,  # reject bad input
                    required=[c for c in (treatment, mediator, outcome, unit, time_col) if c])
        MediationDesign(outcome=outcome, treatment=treatment, mediator=mediator,
                        covariates=ex.covariates, unit=unit, time=time_col,
                        family=outcome_family).prepare(ex.frame)
        with runs.run_folder("mediate", out=out_dir, seed=seed) as folder:
            _say("Mediation: stepwise steps, Sobel, bootstrap, and the joint Bayesian model")
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
            analysis.estimates = _gate(analysis.estimates, _base(model_spec), gates)
            write_run(folder, analysis, study="mediate", title=f"Mediation on {data.name}",
                      synthetic=False, key_term=treatment,
                      manifest={"command": "mediate", "seed": seed, "data": loaded.manifest(),
                                "invocation": _invocation("mediate", locals()),
                                "categorical": _categorical_record(analysis),
                                "convergence": _convergence_record(model_spec, gates),
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        _fail(exc)
    est = analysis.estimates
    _print_table(est[est["table"] == "mediation"], f"Mediation of {treatment!r} by {mediator!r}")
    _finish(runs.last_run("mediate"), est, strict)


@app.command()
def rerun(manifest: Annotated[Path, typer.Argument(help="manifest.json of an earlier run.")],
          out_dir: OutOpt = None, strict: StrictOpt = False):
    """Repeat an earlier run from its manifest into a new folder.

    Same command (run, did, psm, mediate or sensitivity), data, seed, spec and sampler; with
    the same data and machine the estimates are identical."""
    import json
    try:
        recorded = json.loads(Path(manifest).read_text())
        invocation = recorded["invocation"]
    except (OSError, ValueError, KeyError) as exc:
        _fail(BayesPoolError(f"{manifest}: not a bayes_pool run manifest with an 'invocation' "
                             f"record ({exc})"))
    commands = _rerunnable()
    name = invocation.get("command")
    if name not in commands:
        _fail(BayesPoolError(f"{manifest}: command {name!r} cannot be rerun; rerun repeats "
                             f"{sorted(commands)}"))
    args = {k: (Path(v) if k in _PATH_ARGS and v is not None else v)
            for k, v in invocation["args"].items()}
    args["out_dir"] = out_dir
    if name == "sensitivity":
        if strict:
            _fail(BayesPoolError("--strict: sensitivity has no convergence exit code; read "
                                 "the converged column of its sensitivity.csv"))
    else:
        args["strict"] = strict
    commands[name](**args)


def _rerunnable() -> dict:
    """The commands that record an invocation in their manifest, by name."""
    from bayes_pool.commands.sensitivity import sensitivity
    return {"run": run, "did": did, "psm": psm, "mediate": mediate, "sensitivity": sensitivity}


_PATH_ARGS = {"data", "mapping", "priors_dir"}
_TOML_ARGS = {"spec", "model", "priors"}
"""Arguments naming specs or prior sets: names, or .toml paths that a rerun must find from
any directory (comma lists for ``priors``)."""
_GATE_ARGS = ["max_r_hat", "min_ess", "max_divergences"]
_LABEL_ARGS = ["categorical", "reference", "table", "column"]
_INVOCATION_ARGS = {
    "run": ["study", "data", "mapping", "seed", "spec", "draws", "tune", "chains", "only",
            "placebo_draws", "workers", "mediation_model", *_GATE_ARGS],
    "did": ["data", "outcome", "treatment", "unit", "time_col", "covariates", "family",
            "mapping", "seed", "spec", "draws", "tune", "chains", "cohort", "staggered",
            "event_study", "control", "id_col", *_GATE_ARGS, *_LABEL_ARGS, "approx",
            "frequentist_only"],
    "psm": ["data", "treatment", "outcome", "covariates", "categorical", "reference", "exact",
            "mapping", "seed", "bootstrap", "draws", "tune", "chains", "frequentist_only",
            "id_col", *_GATE_ARGS, "table"],
    "mediate": ["data", "treatment", "mediator", "outcome", "covariates", "outcome_family",
                "unit", "time_col", "mapping", "seed", "bootstrap", "draws", "tune", "chains",
                "frequentist_only", "id_col", *_GATE_ARGS, *_LABEL_ARGS],
    "sensitivity": ["study", "model", "priors", "priors_dir", "data", "mapping", "seed", "draws",
                    "tune", "chains", "workers", "prior_draws", "checks"],
}
"""The arguments of each command that decide its numbers: what ``rerun`` hands back."""


def _base(spec):
    """The spec's convergence thresholds (the defaults when there is no spec)."""
    from bayes_pool.specs import Convergence
    return spec.convergence if spec is not None else Convergence()


def _convergence_record(spec, overrides: dict) -> dict:
    """For the manifest: the thresholds the run's posteriors were judged by, and which of
    them the command line set."""
    from dataclasses import asdict
    return {"thresholds": asdict(_base(spec)), "overridden": sorted(overrides)}


def _invocation(command: str, scope: dict) -> dict:
    """The command and the arguments that decide its numbers, for ``rerun``."""
    args = {k: (str(scope[k]) if isinstance(scope[k], Path) else scope[k])
            for k in _INVOCATION_ARGS[command]}
    for k in _PATH_ARGS & set(args):
        if args[k] is not None:
            args[k] = str(Path(args[k]).resolve())
    for k in _TOML_ARGS & set(args):
        if args[k] is not None:
            args[k] = ",".join(_resolve_toml(x.strip()) for x in args[k].split(","))
    return {"command": command, "args": args}


def _resolve_toml(name_or_path: str) -> str:
    """A spec or prior set name as given; a path to one, absolute."""
    from bayes_pool.specs import is_path
    return str(Path(name_or_path).resolve()) if is_path(name_or_path) else name_or_path


@app.command()
def version():
    """Print the version."""
    out.print(__version__)


def _print_comparison(run_dir: Path, synthetic: bool, term: str | None = None) -> None:
    est = estimates.read_csv(run_dir / "estimates.csv")
    comp = compare.comparison(est)
    term = term or _key_term(run_dir)
    table = Table(title=("SYNTHETIC DATA — " if synthetic else "") + f"comparison ({run_dir.name})",
                  title_style="bold")
    for col in ["table", "column", "term", "quantity", "published", "frequentist", "bayesian",
                "95% CI", "Δfreq/SE", "Δbayes/SE", "R-hat", "ESS", "div", "ok"]:
        table.add_column(col, justify="right" if col not in ("term", "quantity") else "left")
    shown = comp[comp["quantity"].isin(["beta", "ame", "att"]) & (comp["term"] == term)]
    for r in shown.itertuples():
        f = lambda x, d=3: "–" if pd.isna(x) else f"{x:.{d}f}"  # noqa: E731
        table.add_row(r.table, r.column, r.term, r.quantity, f(r.published), f(r.frequentist),
                      f(r.bayesian), "–" if pd.isna(r.bayes_ci_low) else
                      f"[{r.bayes_ci_low:.3f}, {r.bayes_ci_high:.3f}]", f(r.freq_diff_se, 2),
                      f(r.bayes_diff_se, 2), f(r.r_hat), f(r.ess_bulk, 0), f(r.divergences, 0),
                      "" if pd.isna(r.converged) else ("yes" if r.converged else "NO"))
    out.print(table)
    out.print(f"Full comparison: {run_dir / 'comparison.md'}")


def _key_term(run_dir: Path) -> str | None:
    import json
    manifest = run_dir / "manifest.json"
    return json.loads(manifest.read_text()).get("key_term") if manifest.exists() else None


def _print_table(est: pd.DataFrame, title: str) -> None:
    table = Table(title=title)
    for col in ["quantity", "source", "estimate", "se", "ci_low", "ci_high", "r_hat", "ess_bulk"]:
        table.add_column(col)
    for r in est.itertuples():
        f = lambda x: "–" if pd.isna(x) else f"{x:.4g}"  # noqa: E731
        table.add_row(r.quantity, r.source, f(r.estimate), f(r.se), f(r.ci_low), f(r.ci_high),
                      f(r.r_hat), f(r.ess_bulk))
    out.print(table)


def _finish(folder: Path, est: pd.DataFrame, strict: bool) -> None:
    out.print(f"Run written to {folder}")
    bayes = est[est["source"] == "bayesian"]
    bad = bayes[~bayes["converged"].fillna(False).astype(bool)]
    if len(bad):
        console.print(f"[bold yellow]warning:[/] {len(bad)} posterior estimate(s) fail the "
                      "convergence thresholds and are flagged NOT CONVERGED in the tables")
        if strict:
            console.print(f"[bold red]--strict:[/] {ConvergenceError.__name__}")
            raise typer.Exit(EXIT_NOT_CONVERGED)


from bayes_pool.commands import register_all  # noqa: E402  (needs the helpers above)

register_all(app)


def _reflowed(doc: str | None) -> str:
    """A docstring with each paragraph on one line: Typer keeps the source's line breaks in
    the command list and in all but the first paragraph, which would break sentences."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


for _info in app.registered_commands:
    _info.help = _reflowed(_info.help or _info.callback.__doc__)


def main():  # pragma: no cover
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except runs.RunInterrupted as exc:
        console.print(f"[bold red]{exc}[/]: the run folder was removed; earlier runs are untouched")
        raise SystemExit(130) from None


if __name__ == "__main__":  # pragma: no cover
    main()
