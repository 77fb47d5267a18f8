"""`bayes-pool compare RUN_DIR`: print the comparison table of an earlier run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayes_pool.commands.common import command, fail, print_comparison
from bayes_pool.errors import BayesPoolError


@command("compare")
def compare_cmd(run_dir: Annotated[Path, typer.Argument(help="A run folder under outputs/.")]):
    """Print the published vs frequentist vs Bayesian comparison of an earlier run."""
    import json
    if not (run_dir / "estimates.csv").exists():
        fail(BayesPoolError(f"{run_dir} holds no estimates.csv (is it a finished run folder?)"))
    synthetic = json.loads((run_dir / "manifest.json").read_text()).get("synthetic", True) \
        if (run_dir / "manifest.json").exists() else True
    print_comparison(run_dir, synthetic)
