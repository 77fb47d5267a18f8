"""`bayes-pool report RUN_DIR`: (re)write the reanalysis report of a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayes_pool.commands.common import command, fail, out, say


@command("report")
def report(run_dir: Annotated[Path, typer.Argument(
        help="A run folder (outputs/STUDY/RUN-ID) or a sensitivity folder.")]):
    """(Re)write report.html and report.md of a run folder.

    report.html is one self-contained page: tables, figures, convergence, sensitivity and the
    manifest. `bayes-pool run` writes it by default; run this after adding sensitivity results
    (the folder, its sensitivity/ subfolder, or the manifest's "sensitivity" entry) or to
    refresh an older run."""
    from bayes_pool.errors import BayesPoolError
    from bayes_pool.report_page import collect, write

    try:
        rep = collect(run_dir)
        paths = write(rep)
    except (BayesPoolError, OSError) as exc:
        fail(exc if isinstance(exc, BayesPoolError) else BayesPoolError(str(exc)))
    if rep.synthetic:
        say("SYNTHETIC DATA: the report says so at the top")
    if rep.n_not_converged:
        say(f"{rep.n_not_converged} of {rep.n_bayes} posterior estimates NOT CONVERGED "
            "(flagged in the report)")
    for s in rep.sensitivity:
        say(f"sensitivity results from {s.label}")
    out.print(f"Report written to {paths['report_html']} and {paths['report_md']}")
