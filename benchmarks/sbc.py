"""Benchmark: simulation-based calibration of the benchmark DiD logit (with correlated unit
effects; without and with the unit x time effect) and the joint mediation model (issue 7,
item 6; issue 14), at the slow tier's settings (``bayes_pool.calibration.BENCHMARK``).

Writes, under ``benchmarks/results/sbc/`` (or ``--out``): ``ranks_<model>.csv`` (one row per
simulation and parameter: truth, rank, posterior mean/SD, R-hat, ESS, divergences, status),
``rank_histograms.png`` (``rank_histograms_<models>.png`` for a subset) and ``summary.json``
(merged with the records of models not rerun; settings, counts of failed / divergent /
unconverged refits, times, per-parameter uniformity tests, machine load before and after).
The design is SYNTHETIC (``bayes_pool.calibration.design_frame``).

    .venv/bin/python benchmarks/sbc.py [--models did_logit,did_logit_unit_time,mediation] [--n-sims N] [--workers 2]
        [--refits-dir outputs/sbc/.refits]

Finished refits are kept under ``--refits-dir`` as they arrive; a rerun after an interruption
reads them back (same problem, settings and code) and refits only the rest, so the reported
seconds then cover only the refits it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ("did_logit", "did_logit_unit_time", "mediation")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(PROBLEMS))
    parser.add_argument("--n-sims", type=int, default=None, help="override N (a quick check)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sbc")
    parser.add_argument("--refits-dir", default=str(ROOT / "outputs" / "sbc" / ".refits"),
                        help="finished refits are kept here, so an interrupted run resumes "
                             "(an empty string: keep none)")
    args = parser.parse_args()

    import importlib.metadata as md

    from bayes_pool import calibration as sbc
    from bayes_pool.figures.calibration import rank_histograms

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - set(PROBLEMS)
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {list(PROBLEMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    build = {"did_logit": lambda: sbc.did_logit_problem(unit_time=False),
             "did_logit_unit_time": lambda: sbc.did_logit_problem(unit_time=True),
             "mediation": sbc.mediation_problem}
    summary = {"synthetic_design": True, "cpus": os.cpu_count(), "workers": args.workers,
               "python": platform.python_version(),
               "versions": {p: md.version(p) for p in ("pymc", "bambi", "nutpie", "arviz-stats")},
               "models": {}}
    results = []
    for name in models:
        settings = sbc.BENCHMARK[name]
        if args.n_sims:
            settings = replace(settings, n_sims=args.n_sims)
        problem = build[name]()
        load_before = os.getloadavg()
        start = time.perf_counter()

        def progress(done, total, start=start, name=name):
            if done % 10 == 0 or done == total:
                print(f"{name}: {done}/{total} refits, {time.perf_counter() - start:.0f} s",
                      flush=True)

        result = sbc.run_sbc(problem, settings, workers=args.workers, progress=progress,
                             refits_dir=args.refits_dir or None)
        record = result.to_dict()
        record.update(load_average_before=load_before, load_average_after=os.getloadavg(),
                      design={"n": problem.prepared.n_obs,
                              "units": int(problem.prepared.frame["unit"].nunique()),
                              "periods": int(problem.prepared.frame["period"].nunique()),
                              "switching_units": len(problem.prepared.switchers),
                              "covariates": list(problem.prepared.design.covariates)},
                      parameters=problem.parameters, target_accept=problem.target_accept)
        summary["models"][name] = record
        result.ranks.to_csv(args.out / f"ranks_{name}.csv", index=False, lineterminator="\n")
        results.append(result)
        print(json.dumps({**result.counts(), "seconds": record["seconds"]}, default=str))
        print(result.summary().to_string(index=False), flush=True)
    figure = "rank_histograms.png" if set(models) == set(PROBLEMS) else \
        f"rank_histograms_{'+'.join(models)}.png"
    rank_histograms(results, args.out / figure, synthetic=True,
                    title="Simulation-based calibration (synthetic design, prior-predictive data)")
    # a run of some models keeps the other models' records of an earlier run
    path = args.out / "summary.json"
    if path.exists():
        summary["models"] = {**json.loads(path.read_text()).get("models", {}),
                             **summary["models"]}
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
