"""Benchmark: `bayes-pool sensitivity pooling-did` with every prior set at the default sampler
settings (4 chains x 1000 draws after 1000 tuning, nutpie) on the synthetic data.

Acceptance (issue 5): at least 5 prior sets in under 5 minutes on 2 cores. Prints and writes
JSON (wall time, per-set diagnostics, machine load before and after) to
``benchmarks/results/sensitivity.json`` or ``--json PATH``.

    .venv/bin/python benchmarks/sensitivity.py [--priors all] [--workers 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_SECONDS = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--priors", default="all")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" /
                        "sensitivity.json")
    args = parser.parse_args()
    cli = Path(sys.executable).with_name("bayes-pool")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [str(cli), "sensitivity", "pooling-did", "--priors", args.priors,
               "--workers", str(args.workers), "--seed", str(args.seed), "--out", str(out)]
        load_before = os.getloadavg()
        start = time.perf_counter()
        # its own outputs folder: no finished prior set is read back from an earlier run
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env={**os.environ, "BAYES_POOL_OUTPUTS": tmp})
        wall = time.perf_counter() - start
        load_after = os.getloadavg()
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            return proc.returncode
        import pandas as pd
        table = pd.read_csv(out / "sensitivity.csv")
        manifest = json.loads((out / "manifest.json").read_text())
    result = {
        "command": " ".join(cmd[:-2]), "wall_seconds": round(wall, 1),
        "limit_seconds": LIMIT_SECONDS, "under_limit": wall < LIMIT_SECONDS,
        "prior_sets": len(table), "sampler": manifest["model"]["spec"]["sampler"],
        "cpus": os.cpu_count(), "load_average_before": load_before,
        "load_average_after": load_after,
        "per_set": table[["prior_set", "mean", "sd", "ci_low", "ci_high", "p_positive", "r_hat",
                          "ess_bulk", "divergences", "converged"]].to_dict(orient="records"),
    }
    text = json.dumps(result, indent=2, default=str)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
