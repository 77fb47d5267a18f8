"""Running a study file's analyses (:mod:`bayes_pool.study_file`): each through the
:mod:`bayes_pool.api` function of its kind (``linear``: OLS with classical SEs and the Bambi
regression), relabelled to the study and the published table/column it answers, beside the
rows of the study's ledger. The result is one :class:`~bayes_pool.workflow.Analysis`, ready
for :func:`bayes_pool.workflow.write_run`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bayes_pool import estimates
from bayes_pool.errors import InputError, SpecError
from bayes_pool.seeds import child_seed
from bayes_pool.study_file import AnalysisDecl, StudyFile, api_function, callable_ref, subset


def analyse(study: StudyFile, frame: pd.DataFrame, *, seed: int, sampler=(None, None, None),
            progress: Callable[[str], None] = lambda m: None, progressbar: bool = False):
    """Run every analysis (seeded by its name under ``seed``; ``sampler``: draws, tune,
    chains or None for the spec's) and add the published rows; ledger rows that no analysis
    answers are listed in ``facts["notes"]``."""
    from bayes_pool.workflow import Analysis
    out = Analysis(estimates=read_ledger(study.published, study.id) if study.published
                   else estimates.frame([]))
    for a in study.analyses:
        progress(f"{a.name}: {a.kind} ({', '.join(a.backends)})")
        out.extend(_run_one(a, subset(frame, a, a.name), study=study.id,
                            seed=child_seed(seed, a.name), sampler=sampler,
                            progressbar=progressbar))
    out.facts["notes"] = unanswered(out.estimates)
    out.facts["analyses"] = {a.name: {"kind": a.kind, "table": a.table, "column": a.column,
                                      "subset": a.subset, "priors": a.priors, **a.options}
                             for a in study.analyses}
    return out


def _spec(a: AnalysisDecl, frame: pd.DataFrame, default: str, sampler):
    """The analysis's ModelSpec: its ``spec`` (or ``default``) with its prior set applied
    (``sd_y`` is the outcome's SD over the rows complete in the analysis's columns)."""
    from bayes_pool.priors import apply_prior_set, load_prior_set
    from bayes_pool.specs import load_spec
    spec = load_spec(a.spec or default)
    changes = {k: v for k, v in zip(("draws", "tune", "chains"), sampler) if v is not None}
    spec = spec.with_sampler(**changes) if changes else spec
    if not a.priors:
        return spec
    used = [c for _, c in a.columns() if c in frame.columns]
    sd_y = float(frame[list(dict.fromkeys(used))].dropna()[a.options["outcome"]].std(ddof=1))
    return apply_prior_set(spec, load_prior_set(a.priors), roles=tuple(spec.priors),
                           refs={"sd_y": sd_y})


def _run_one(a: AnalysisDecl, frame: pd.DataFrame, *, study: str, seed: int, sampler,
             progressbar: bool):
    from bayes_pool.api import DID_SPECS
    from bayes_pool.workflow import Analysis
    if a.kind == "python":
        return _python(a, frame, study=study, seed=seed, sampler=sampler,
                       progressbar=progressbar)
    if a.kind == "linear":
        return _linear(a, frame, study=study, seed=seed, sampler=sampler,
                       progressbar=progressbar)
    kwargs = dict(a.options, seed=seed, backends=a.backends, progressbar=progressbar)
    if a.kind in ("did", "staggered", "event_study"):
        kwargs["spec"] = _spec(a, frame, DID_SPECS[a.options.get("family", "bernoulli")],
                               sampler)
    else:
        kwargs.update(spec=a.spec, draws=sampler[0], tune=sampler[1], chains=sampler[2])
    params = inspect.signature(api_function(a.kind)).parameters
    if "table" in params:
        kwargs["table"] = a.table
    if "column" in params and a.column:
        kwargs["column"] = a.column
    result = api_function(a.kind)(frame, **kwargs)
    rows = result.tidy().copy()
    rows["study"] = study
    if "table" not in params:  # staggered / event study label their own table
        rows.loc[rows["table"] == a.kind, "table"] = a.table
    analysis = result.analysis
    return Analysis(estimates=estimates.frame(rows),
                    posteriors={f"{a.name}_{k}": v for k, v in analysis.posteriors.items()},
                    facts={f"{a.name}_{k}": v for k, v in analysis.facts.items()},
                    figures=analysis.figures)


def _linear(a: AnalysisDecl, frame: pd.DataFrame, *, study: str, seed: int, sampler,
            progressbar: bool):
    """OLS with classical SEs and, unless left out, the Bambi linear regression."""
    from bayes_pool.freq.ols import fit_ols
    from bayes_pool.workflow import Analysis
    o = a.options
    covariates = list(o.get("covariates", ()))
    column = a.column or "linear"
    ols = fit_ols(frame, o["outcome"], [o["treatment"], *covariates])
    rows, posteriors = [], {}
    if "frequentist" in a.backends:
        rows += [ols.tidy(study=study, table=a.table, column=column), estimates.frame([
            estimates.row(study=study, table=a.table, column=column, term="model",
                          quantity="r_squared", source="frequentist",
                          estimate=float(ols.result.rsquared), n_obs=ols.n_obs)])]
    facts = {"n_obs": ols.n_obs, "r_squared": float(ols.result.rsquared)}
    if "bayesian" in a.backends:
        from bayes_pool.bayes.linear import fit_linear
        spec = _spec(a, frame, "linear_regression", sampler)
        bay = fit_linear(frame, outcome=o["outcome"], treatment=o["treatment"],
                         covariates=covariates, spec=spec, seed=seed, progressbar=progressbar)
        rows.append(bay.tidy(study=study, table=a.table, column=column))
        posteriors[a.name] = bay.idata
        facts.update(divergences=bay.divergences, priors=spec.priors)
    return Analysis(estimates=estimates.concat(*rows), posteriors=posteriors,
                    facts={a.name: facts})


def _python(a: AnalysisDecl, frame: pd.DataFrame, *, study: str, seed: int, sampler,
            progressbar: bool):
    """A study's own analysis: ``function(frame, **roles, **options, study=, table=, column=,
    seed=, draws=, tune=, chains=, backends=, priors=, progressbar=)`` returning an
    :class:`~bayes_pool.workflow.Analysis` whose rows carry the given labels."""
    from bayes_pool.workflow import Analysis
    o = dict(a.options)
    fn = callable_ref(o.pop("function"), f"analysis {a.name!r}: key 'function'")
    extra = o.pop("options", {})
    out = fn(frame, **o, **extra, study=study, table=a.table, column=a.column or a.name,
             seed=seed, draws=sampler[0], tune=sampler[1], chains=sampler[2],
             backends=a.backends, priors=a.priors, progressbar=progressbar)
    if not isinstance(out, Analysis):
        raise SpecError(f"analysis {a.name!r}: {a.options['function']} returned "
                        f"{type(out).__name__}, not a bayes_pool.workflow.Analysis")
    return out


def read_ledger(path: Path, study: str) -> pd.DataFrame:
    """A ledger CSV (the columns of ``published.LEDGER_COLUMNS``) as published rows of the
    estimates table; its ``study`` column must be the study file's id."""
    from bayes_pool.published import FLAGS, LEDGER_COLUMNS, LEDGER_NUMERIC
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(df.columns) != LEDGER_COLUMNS:
        raise InputError(f"{path}: columns {list(df.columns)}; expected {LEDGER_COLUMNS}")
    wrong = df.index[(df["study"] != study) | ~df["flag"].isin(FLAGS)].tolist()
    if wrong:
        raise InputError(f"{path}: rows {wrong[:10]} have a 'study' other than {study!r} or a "
                         f"'flag' not in {list(FLAGS)}")
    for col in LEDGER_NUMERIC:
        num = pd.to_numeric(df[col].replace("", None), errors="coerce")
        if (num.isna() & (df[col] != "")).any():
            raise InputError(f"{path}: column {col!r} holds text that is not a number")
        df[col] = num
    notes = df.apply(lambda r: "; ".join(
        [f"row: {r['row']}"] + [f"{k}: {r[k]}" for k in ("stars", "flag") if r[k]]
        + ([r["note"]] if r["note"] else [])), axis=1) if len(df) else ""
    rows = df[["study", "table", "column", "term", "quantity", *LEDGER_NUMERIC]].assign(
        source="published", note=notes)
    return estimates.frame(rows)


def unanswered(table: pd.DataFrame) -> list[str]:
    """The published cells (table, column, term, quantity) no frequentist or Bayesian row
    answers, one line each."""
    from bayes_pool.compare import KEYS
    pub = table[table["source"] == "published"]
    done = set(map(tuple, table.loc[table["source"] != "published", KEYS].to_numpy()))
    return [f"published table {r.table}, column {r.column}, {r.term} {r.quantity}: no "
            "analysis answers it" for r in pub.itertuples()
            if (r.study, r.table, r.column, r.term, r.quantity) not in done]
