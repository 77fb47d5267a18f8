"""What every `bayes-pool` command shares: the consoles, the exit codes, the option types,
reading a spec and a data file, the convergence flags, and printing a run's result."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from bayes_pool import compare, estimates
from bayes_pool.errors import ConvergenceError

COMMANDS: dict[str, Callable] = {}
"""Every command's function by its name on the command line (see :func:`command`)."""


def command(name: str):
    """Declare the decorated function the command ``name``;
    :func:`~bayes_pool.commands.register_all` adds every declared command to the app."""
    def declare(fn: Callable) -> Callable:
        COMMANDS[name] = fn
        return fn
    return declare


console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 160)

EXIT_INPUT = 2
EXIT_NOT_CONVERGED = 3

DataOpt = Annotated[Path, typer.Option(help="Data file (.csv .parquet .dta .sav).")]
OutcomeOpt = Annotated[str, typer.Option(help="Outcome column.")]
TreatmentOpt = Annotated[str, typer.Option(help="0/1 treatment column.")]
MappingOpt = Annotated[Optional[Path], typer.Option(help="TOML column mapping.")]
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
PublishedOpt = Annotated[Optional[Path], typer.Option(
    "--published", help="Ledger CSV of the paper's numbers (the columns of "
                        "studies/*/published.csv): its rows go into estimates.csv and are "
                        "compared with the rows of the same --table/--column, term and "
                        "quantity in comparison.csv.")]


def fail(exc: Exception) -> None:
    """Print ``exc`` as the command's error and exit with code 2 (bad input)."""
    from rich.markup import escape  # messages quote mapping syntax such as [missing] codes
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def say(msg: str) -> None:
    """A progress line on stderr."""
    console.print(f"[cyan]›[/] {msg}", highlight=False)


def spec_with_sampler(name: str, draws, tune, chains):
    """The spec ``name`` (in models/ or a TOML path) with the sampler settings given."""
    from bayes_pool.specs import load_spec
    return with_sampler(load_spec(name), draws, tune, chains)


def with_sampler(spec, draws, tune, chains):
    """``spec`` with the sampler settings given on the command line (None: the spec's)."""
    changes = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items()
               if v is not None}
    return spec.with_sampler(**changes) if changes else spec


def load_user_data(path: Path, schema=None, mapping: Path | None = None,
                   unique: str | None = None):
    from bayes_pool.data import load
    return load(path, schema=schema, mapping=mapping, unique=unique)


def split(text: str) -> tuple[str, ...]:
    """A comma-separated option as its items."""
    return tuple(c.strip() for c in text.split(",") if c.strip())


def covariate_frame(loaded, covariates) -> pd.DataFrame:
    """The loaded frame with value-labelled covariates as categoricals of their labels."""
    from bayes_pool.data.labels import apply_value_labels
    return apply_value_labels(loaded.frame, loaded.value_labels, covariates)[0]


def categorical_record(analysis) -> dict:
    """The categorical expansions of an analysis's facts, by covariate, for the manifest."""
    found = {}
    for facts in analysis.facts.values():
        if isinstance(facts, dict) and isinstance(facts.get("categorical"), dict):
            found.update(facts["categorical"])
    return found


def flag(option: str) -> str:
    """A run option as its command-line flag (``parts`` is ``--only``)."""
    return "--" + ("only" if option == "parts" else option.replace("_", "-"))


def thresholds(max_r_hat, min_ess, max_divergences) -> dict:
    """Convergence thresholds given on the command line, as :class:`specs.Convergence` fields."""
    given = dict(max_r_hat=max_r_hat, min_ess_bulk=min_ess, min_ess_tail=min_ess,
                 max_divergences=max_divergences)
    return {k: v for k, v in given.items() if v is not None}


def with_convergence(spec, overrides: dict):
    """A copy of ``spec`` (a ModelSpec, or a spec wrapping one as ``.model``) whose
    [convergence] thresholds are replaced by ``overrides``."""
    from dataclasses import replace
    if not overrides or spec is None:
        return spec
    if hasattr(spec, "model"):  # MediationSpec and the like wrap a ModelSpec
        return replace(spec, model=with_convergence(spec.model, overrides))
    return replace(spec, convergence=replace(spec.convergence, **overrides))


def gate(est: pd.DataFrame, base, overrides: dict) -> pd.DataFrame:
    """Re-judge every posterior row against the thresholds given on the command line, from
    the diagnostic columns (:func:`bayes_pool.estimates.rejudge`; ``base``: the run's spec
    thresholds)."""
    return estimates.rejudge(est, overrides, base)


def base_thresholds(spec):
    """The spec's convergence thresholds (the defaults when there is no spec)."""
    from bayes_pool.specs import Convergence
    return spec.convergence if spec is not None else Convergence()


def convergence_record(spec, overrides: dict) -> dict:
    """For the manifest: the thresholds the run's posteriors were judged by, and which of
    them the command line set."""
    from dataclasses import asdict
    return {"thresholds": asdict(base_thresholds(spec)), "overridden": sorted(overrides)}


def print_comparison(run_dir: Path, synthetic: bool, term: str | None = None) -> None:
    """The published vs frequentist vs Bayesian rows of ``term`` (default: the run's key
    term) of a run folder, as a table on stdout."""
    est = estimates.read_csv(run_dir / "estimates.csv")
    comp = compare.comparison(est)
    term = term or key_term(run_dir)
    title = ("SYNTHETIC DATA — " if synthetic else "") + f"comparison ({run_dir.name})"
    table = Table(title=title, title_style="bold")
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


def key_term(run_dir: Path) -> str | None:
    """The key term a run folder's manifest names (None without a manifest)."""
    import json
    manifest = run_dir / "manifest.json"
    return json.loads(manifest.read_text()).get("key_term") if manifest.exists() else None


def print_table(est: pd.DataFrame, title: str) -> None:
    """Estimates rows as a short table on stdout."""
    table = Table(title=title)
    for col in ["quantity", "source", "estimate", "se", "ci_low", "ci_high", "r_hat", "ess_bulk"]:
        table.add_column(col)
    for r in est.itertuples():
        f = lambda x: "–" if pd.isna(x) else f"{x:.4g}"  # noqa: E731
        table.add_row(r.quantity, r.source, f(r.estimate), f(r.se), f(r.ci_low), f(r.ci_high),
                      f(r.r_hat), f(r.ess_bulk))
    out.print(table)


def finish(folder: Path, est: pd.DataFrame, strict: bool) -> None:
    """Say where the run went and warn of posteriors that fail the thresholds; with
    ``strict``, exit with code 3 if any does."""
    out.print(f"Run written to {folder}")
    bayes = est[est["source"] == "bayesian"]
    bad = bayes[~bayes["converged"].fillna(False).astype(bool)]
    if len(bad):
        console.print(f"[bold yellow]warning:[/] {len(bad)} posterior estimate(s) fail the "
                      "convergence thresholds and are flagged NOT CONVERGED in the tables")
        if strict:
            console.print(f"[bold red]--strict:[/] {ConvergenceError.__name__}")
            raise typer.Exit(EXIT_NOT_CONVERGED)


