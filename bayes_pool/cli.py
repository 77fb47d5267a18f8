"""`bayes-pool`: simulate, run, compare, and the generic `did` on any data set.

Every command checks its input before it creates anything under ``outputs/``; a rejected input
exits with code 2 and a message naming the column, the values and the row count.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from bayes_pool import __version__, compare, runs, studies
from bayes_pool.errors import BayesPoolError, ConvergenceError

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


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def _say(msg: str) -> None:
    console.print(f"[cyan]›[/] {msg}", highlight=False)


def _spec(name: str, draws, tune, chains):
    from bayes_pool.specs import load_spec
    spec = load_spec(name)
    changes = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items() if v is not None}
    return spec.with_sampler(**changes) if changes else spec


def _load_user_data(path: Path, schema=None, mapping: Path | None = None):
    from bayes_pool.data import load
    return load(path, schema=schema, mapping=mapping)


@app.command()
def simulate(study: Annotated[str, typer.Argument(help="Study id: pooling-did or smi-psm.")],
             seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
             n: Annotated[Optional[int], typer.Option(help="Rows.")] = None,
             out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for the CSV "
                                                             "and its truth JSON.")] = None):
    """Write the study's calibrated synthetic data set (CSV) and its truth (JSON)."""
    try:
        mod = studies.get(study)
        kwargs = {k: v for k, v in dict(seed=seed, n=n).items() if v is not None}
        data = mod.simulate(**kwargs)
    except (BayesPoolError, ValueError) as exc:
        _fail(exc)
    folder = out_dir or runs.OUTPUTS_DIR / study / "synthetic"
    data_path, truth_path = data.write(folder, stem=f"synthetic-seed{data.seed}")
    out.print(f"SYNTHETIC data: {len(data.frame)} rows -> {data_path}\ntruth -> {truth_path}")


@app.command()
def run(study: Annotated[str, typer.Argument(help="Study id: pooling-did or smi-psm.")],
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
            help="Parallel workers for refit loops (default: all cores; 1 = in-process).")] = None):
    """Re-analyse a study: published vs frequentist vs Bayesian, into a new run folder."""
    start = time.perf_counter()
    extra = {k: v for k, v in dict(
        parts=tuple(p.strip() for p in only.split(",") if p.strip()) if only else None,
        placebo_draws=placebo_draws, workers=workers).items() if v is not None}
    try:
        mod = studies.get(study)
        model_spec = _spec(spec or mod.DEFAULT_SPEC, draws, tune, chains) if mod.DEFAULT_SPEC or spec else None
        if data is None:
            _say(f"No --data: generating the SYNTHETIC {study} data set (seed {seed})")
            sim = mod.simulate(seed=seed)
            frame, synthetic = sim.frame, True
            source = {"kind": "synthetic", "seed": seed, "options": sim.options, "truth": sim.truth}
            if hasattr(mod, "synthetic_extras"):
                extras = mod.synthetic_extras(seed)
                extra.update(extras["run_kwargs"])
                source["extras"] = extras["manifest"]
        else:
            _say(f"Loading {data}")
            loaded = _load_user_data(data, mapping=mapping)
            frame, synthetic = mod.prepare(loaded.frame, source=str(data)), False
            source = {"kind": "file", **loaded.manifest()}
        if synthetic:
            from bayes_pool.data.io import fingerprint
            source.update(fingerprint=fingerprint(frame), n_rows=len(frame))
        with runs.run_folder(study, out=out_dir, seed=seed) as folder:
            analysis = mod.run(frame, spec=model_spec, seed=seed, progress=_say,
                               progressbar=sys.stderr.isatty(), **extra)
            _say("Writing estimates, comparison, posterior and figures")
            from bayes_pool.workflow import write_run
            write_run(folder, analysis, study=study, title=mod.TITLE, synthetic=synthetic,
                      key_term=mod.KEY_TERM, manifest={"command": "run", "seed": seed, "data": source,
                                "invocation": _invocation("run", locals()),
                                "spec": model_spec.to_dict() if model_spec else None,
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        _fail(exc)
    final = runs.last_run(study)
    _print_comparison(final, synthetic, mod.KEY_TERM)
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
            "--event-study", help="Also fit the event study (needs --cohort).")] = False):
    """Frequentist (unit and time FE, SEs clustered by unit) and Bayesian (partially pooled
    units, time effects) DiD on any data set; writes estimates.csv. With --cohort, also the
    staggered-robust ATT (--staggered) and event-time coefficients (--event-study)."""
    from bayes_pool.design import DiDDesign
    from bayes_pool.workflow import analyse_did, write_run
    start = time.perf_counter()
    covs = tuple(c.strip() for c in covariates.split(",") if c.strip())
    try:
        design = DiDDesign(outcome=outcome, treatment=treatment, unit=unit, time=time_col,
                           covariates=covs, family=family)
        if (staggered or event_study) and not cohort:
            raise BayesPoolError("--staggered and --event-study need --cohort COL: the first "
                                 "treated period of each unit (0 or empty for never treated)")
        model_spec = _spec(spec or ("did_logit" if family == "bernoulli" else "did_linear"),
                           draws, tune, chains)
        loaded = _load_user_data(data, mapping=mapping)
        design.prepare(loaded.frame)  # reject bad input before any folder exists
        with runs.run_folder("did", out=out_dir, seed=seed) as folder:
            _say(f"Fitting {family} DiD: frequentist TWFE and Bayesian "
                 f"({model_spec.sampler.chains} x {model_spec.sampler.draws} draws)")
            analysis = analyse_did(loaded.frame, design, model_spec, seed=seed, study="did",
                                   table="did", column=family, progressbar=sys.stderr.isatty())
            roles = dict(outcome=outcome, treatment=treatment, unit=unit, time=time_col,
                         cohort=cohort, covariates=covs, family=family, study="did",
                         spec=model_spec, progressbar=sys.stderr.isatty())
            if event_study:
                from bayes_pool.figures.event_study import plot_event_study
                from bayes_pool.staggered_workflow import analyse_event_study
                _say("Event study: leads and lags of adoption")
                analysis.extend(analyse_event_study(loaded.frame, seed=seed + 1, **roles))
                analysis.figures.append(lambda folder, synthetic, table: {
                    "event_study": plot_event_study(table[table["table"] == "fig2"],
                                                    folder / "event_study.png",
                                                    synthetic=synthetic)})
            if staggered:
                from bayes_pool.staggered_workflow import analyse_staggered
                _say("Extended TWFE: cohort x period effects, aggregated ATT")
                analysis.extend(analyse_staggered(loaded.frame, seed=seed + 2, **roles))
            write_run(folder, analysis, study="did", title=f"DiD on {data.name}", synthetic=False,
                      key_term=treatment, manifest={"command": "did", "seed": seed,
                                "invocation": _invocation("did", locals()),
                                "data": loaded.manifest(),
                                "design": design.__dict__ | {"covariates": list(covs)},
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
        categorical: Annotated[str, typer.Option(
            help="Comma-separated covariates to dummy-code (others enter linearly).")] = "",
        mapping: Annotated[Optional[Path], typer.Option(help="TOML column mapping.")] = None,
        seed: SeedOpt = 2023,
        bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates (radius, kernel SEs).")] = 200,
        out_dir: OutOpt = None, draws: DrawsOpt = None, tune: TuneOpt = None,
        chains: ChainsOpt = None, strict: StrictOpt = False,
        frequentist_only: Annotated[bool, typer.Option(
            "--frequentist-only", help="Skip the Bayesian models (quick look).")] = False):
    """Propensity-score matching (k-NN k=4 caliper 0.02, radius 0.01, kernel) with balance
    tables, and Bayesian propensity, IPW, doubly robust and regression ATTs, on any data set."""
    from bayes_pool.psm_workflow import analyse_psm
    from bayes_pool.workflow import write_run
    start = time.perf_counter()
    covs = [c.strip() for c in covariates.split(",") if c.strip()]
    cats = [c.strip() for c in categorical.split(",") if c.strip()]
    try:
        model_spec = _spec("propensity_logit", draws, tune, chains)
        loaded = _load_user_data(data, mapping=mapping)
        from bayes_pool.freq.psm import PSMDesign
        PSMDesign(treatment=treatment, outcome=outcome, covariates=tuple(covs),
                  categorical=tuple(cats)).prepare(loaded.frame)  # reject bad input first
        with runs.run_folder("psm", out=out_dir, seed=seed) as folder:
            _say("Matching (k-NN, radius, kernel), balance, and Bayesian propensity models")
            analysis = analyse_psm(loaded.frame, treatment=treatment, outcome=outcome,
                                   covariates=covs, categorical=cats, seed=seed, study="psm",
                                   spec=model_spec, bootstrap=bootstrap,
                                   bayesian=not frequentist_only,
                                   progressbar=sys.stderr.isatty())
            write_run(folder, analysis, study="psm", title=f"PSM on {data.name}",
                      synthetic=False, key_term=treatment,
                      manifest={"command": "psm", "seed": seed, "data": loaded.manifest(),
                                "invocation": _invocation("psm", locals()),
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
                "--frequentist-only", help="Skip the Bayesian model (quick look).")] = False):
    """Mediation on any data set: natural indirect, direct and total effects and the
    proportion mediated, frequentist (stepwise, Sobel, bootstrap) and Bayesian (joint model)."""
    from bayes_pool.bayes.mediation import load_mediation_spec
    from bayes_pool.figures.mediation import plot_mediation
    from bayes_pool.freq.mediation import MediationDesign
    from bayes_pool.mediation_workflow import analyse_mediation
    from bayes_pool.workflow import write_run
    start = time.perf_counter()
    covs = tuple(c.strip() for c in covariates.split(",") if c.strip())
    try:
        model_spec = load_mediation_spec()
        changes = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items()
                   if v is not None}
        if changes:
            model_spec = model_spec.with_sampler(**changes)
        loaded = _load_user_data(data, mapping=mapping)
        MediationDesign(outcome=outcome, treatment=treatment, mediator=mediator,
                        covariates=covs, unit=unit, time=time_col,
                        family=outcome_family).prepare(loaded.frame)
        with runs.run_folder("mediate", out=out_dir, seed=seed) as folder:
            _say("Mediation: stepwise steps, Sobel, bootstrap, and the joint Bayesian model")
            analysis = analyse_mediation(loaded.frame, treatment=treatment, mediator=mediator,
                                         outcome=outcome, covariates=covs, unit=unit,
                                         time=time_col, outcome_family=outcome_family,
                                         seed=seed, study="mediate", spec=model_spec,
                                         bootstrap=bootstrap, bayesian=not frequentist_only,
                                         progressbar=sys.stderr.isatty())
            analysis.figures.append(lambda folder, synthetic, table: {
                "mediation": plot_mediation(table[table["table"] == "mediation"],
                                            folder / "mediation.png",
                                            title=f"Mediation by {mediator}",
                                            synthetic=synthetic)})
            write_run(folder, analysis, study="mediate", title=f"Mediation on {data.name}",
                      synthetic=False, key_term=treatment,
                      manifest={"command": "mediate", "seed": seed, "data": loaded.manifest(),
                                "invocation": _invocation("mediate", locals()),
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        _fail(exc)
    est = analysis.estimates
    _print_table(est[est["table"] == "mediation"], f"Mediation of {treatment!r} by {mediator!r}")
    _finish(runs.last_run("mediate"), est, strict)


@app.command()
def rerun(manifest: Annotated[Path, typer.Argument(help="manifest.json of an earlier run.")],
          out_dir: OutOpt = None, strict: StrictOpt = False):
    """Repeat an earlier run from its manifest (same command, data, seed, spec and sampler)
    into a new folder; with the same data and machine the estimates are identical."""
    import json
    try:
        recorded = json.loads(Path(manifest).read_text())
        invocation = recorded["invocation"]
    except (OSError, ValueError, KeyError) as exc:
        _fail(BayesPoolError(f"{manifest}: not a bayes_pool run manifest with an 'invocation' "
                             f"record ({exc})"))
    args = {k: (Path(v) if k in _PATH_ARGS and v is not None else v)
            for k, v in invocation["args"].items()}
    args.update(out_dir=out_dir, strict=strict)
    command = {"run": run, "did": did, "psm": psm, "mediate": mediate}[invocation["command"]]
    command(**args)


_PATH_ARGS = {"data", "mapping"}
_INVOCATION_ARGS = {
    "run": ["study", "data", "mapping", "seed", "spec", "draws", "tune", "chains", "only",
            "placebo_draws", "workers"],
    "did": ["data", "outcome", "treatment", "unit", "time_col", "covariates", "family",
            "mapping", "seed", "spec", "draws", "tune", "chains", "cohort", "staggered",
            "event_study"],
    "psm": ["data", "treatment", "outcome", "covariates", "categorical", "mapping", "seed",
            "bootstrap", "draws", "tune", "chains", "frequentist_only"],
    "mediate": ["data", "treatment", "mediator", "outcome", "covariates", "outcome_family",
                "unit", "time_col", "mapping", "seed", "bootstrap", "draws", "tune", "chains",
                "frequentist_only"],
}


def _invocation(command: str, scope: dict) -> dict:
    """The command and the arguments that decide its numbers, for ``rerun``."""
    args = {k: (str(scope[k]) if isinstance(scope[k], Path) else scope[k])
            for k in _INVOCATION_ARGS[command]}
    for k in _PATH_ARGS & set(args):
        if args[k] is not None:
            args[k] = str(Path(args[k]).resolve())
    return {"command": command, "args": args}


@app.command()
def version():
    """Print the version."""
    out.print(__version__)


def _print_comparison(run_dir: Path, synthetic: bool, term: str | None = None) -> None:
    est = pd.read_csv(run_dir / "estimates.csv", keep_default_na=True)
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


def main():  # pragma: no cover
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except runs.RunInterrupted as exc:
        console.print(f"[bold red]{exc}[/]: the run folder was removed; earlier runs are untouched")
        raise SystemExit(130) from None


if __name__ == "__main__":  # pragma: no cover
    main()
