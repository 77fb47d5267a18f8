"""The one path of the generic analysis commands (`did`, `psm`, `mediate`) on a user's file.

A command reads the file and rejects bad input (:func:`load_checked`) before anything exists
under ``outputs/``; then :func:`write_analysis` fits it through the public API
(:mod:`bayes_pool.api`, the same call a notebook makes), re-judges the posteriors against the
thresholds given on the command line and writes the run folder with its manifest.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bayes_pool import runs
from bayes_pool.commands.common import (base_thresholds, categorical_record, convergence_record,
                                        covariate_frame, finish, gate, load_user_data,
                                        print_comparison, print_table, say)
from bayes_pool.commands.invocation import invocation


def load_checked(data: Path, *, mapping: Path | None, id_col: str | None, covariates,
                 check: Callable[[pd.DataFrame], object], published: Path | None = None):
    """The user's file (``.manifest()`` for the run) and its frame, value-labelled covariates
    as categoricals of their labels, after ``check(frame)`` accepted it and the ledger file
    ``published`` (if given) passed its checks."""
    if published is not None:
        from bayes_pool.published import read_ledger
        read_ledger(published)
    loaded = load_user_data(data, mapping=mapping, unique=id_col)
    frame = covariate_frame(loaded, covariates)
    check(frame)
    return loaded, frame


def backends(frequentist_only: bool) -> tuple[str, ...]:
    """The API's ``backends`` for ``--frequentist-only`` given or not."""
    return ("frequentist",) if frequentist_only else ("frequentist", "bayesian")


def progressbar() -> bool:
    """Show the samplers' progress bars when stderr is a terminal."""
    return sys.stderr.isatty()


def write_analysis(command: str, fit: Callable[[], object], *, loaded, title: str,
                   key_term: str, spec, gates: dict, seed: int, out_dir: Path | None,
                   scope: dict, manifest: dict, start: float, progress: str):
    """In a new run folder of ``command``: say ``progress``, run ``fit()`` (an API call; its
    result's ``.analysis``), re-judge its posterior rows against ``gates`` (on top of
    ``spec``'s thresholds) and write the run, its manifest holding the data, the invocation
    (from the command's ``scope``), the categorical expansions, the thresholds, ``manifest``
    and the time since ``start``. Returns the analysis."""
    from bayes_pool.workflow import write_run  # imports PyMC: after the checks
    with runs.run_folder(command, out=out_dir, seed=seed) as folder:
        say(progress)
        analysis = fit().analysis
        ledger = analysis.facts.get("published")
        if ledger:
            say(f"Published ledger: {ledger['answered']} of {ledger['rows']} rows answered by "
                "a fitted row" + (f"; not answered (check --table/--column and the terms): "
                                  f"{', '.join(ledger['unanswered'])}"
                                  if ledger["unanswered"] else ""))
        analysis.estimates = gate(analysis.estimates, base_thresholds(spec), gates)
        write_run(folder, analysis, study=command, title=title, synthetic=False,
                  key_term=key_term, manifest={
                      "command": command, "seed": seed, "data": loaded.manifest(),
                      "invocation": invocation(command, scope),
                      "categorical": categorical_record(analysis),
                      "convergence": convergence_record(spec, gates), **manifest,
                      "elapsed_seconds": round(time.perf_counter() - start, 1)})
    return analysis


def show(command: str, est: pd.DataFrame, shown: pd.Series, title: str, strict: bool) -> None:
    """Print the ``shown`` rows of the run (and, with a ``--published`` ledger, its
    comparison), say where it went and, with ``strict``, exit 3 if a posterior fails the
    thresholds."""
    print_table(est[shown & (est["source"] != "published")], title)
    if (est["source"] == "published").any():
        print_comparison(runs.last_run(command), synthetic=False)
    finish(runs.last_run(command), est, strict)
