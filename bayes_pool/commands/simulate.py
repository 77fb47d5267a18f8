"""`bayes-pool simulate STUDY`: write a study's calibrated synthetic data and its truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_pool import runs, studies
from bayes_pool.commands.common import StudyArg, command, fail, out
from bayes_pool.errors import BayesPoolError


@command("simulate")
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
        fail(exc)
    folder = out_dir or runs.outputs_dir() / study / "synthetic"
    data_path, truth_path = data.write(folder, stem=f"synthetic-seed{data.seed}")
    out.print(f"SYNTHETIC data: {len(data.frame)} rows -> {data_path}\ntruth -> {truth_path}")
