"""`bayes-pool robustness RUN_DIR`: how robust a run's key estimates are to their identifying
assumptions, added to a finished run (its robustness/ folder and report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayes_pool.commands.common import command, fail, out, say


@command("robustness")
def robustness(run_dir: Annotated[Path, typer.Argument(
        help="A finished run folder: outputs/STUDY/RUN-ID of run, did, psm or mediate.")]):
    """Add the breakdown analyses of a run's key estimates to its folder and report.

    Rosenbaum bounds (matched ATTs), E-values (logit DiD odds ratios), the omitted-variable
    robustness value (OLS), the mediation rho at which the indirect effect vanishes and the
    parallel-trends breakdown Mbar (event studies), as they apply. Refits the run's frequentist
    parts on its data (no MCMC; a did/psm/mediate run needs its data file where the manifest
    says) and writes RUN_DIR/robustness/ (robustness.csv, a curve and a figure per analysis),
    then rewrites the report."""
    from bayes_pool.api_studies import how_robust as compute
    from bayes_pool.errors import BayesPoolError
    say(f"Refitting the frequentist parts of {run_dir} (no MCMC) for the breakdown values")
    try:
        table = compute(run_dir)
    except (BayesPoolError, ValueError, OSError) as exc:
        fail(exc if isinstance(exc, BayesPoolError) else BayesPoolError(str(exc)))
    _print(table)
    out.print(f"Robustness written to {Path(run_dir) / 'robustness'}; report rewritten")


def _print(table) -> None:
    from rich.table import Table
    shown = Table(title="How robust is it?")
    for col in ["estimate", "analysis", "parameter", "breakdown", "status"]:
        shown.add_column(col)
    for r in table.itertuples():
        breakdown = "–" if r.breakdown != r.breakdown else f"{r.breakdown:.3g}"
        shown.add_row(f"{r.table} {r.column}: {r.quantity} of {r.term}", str(r.analysis),
                      str(r.parameter), breakdown, str(r.status))
    out.print(shown)
