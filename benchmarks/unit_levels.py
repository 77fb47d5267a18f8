"""What the correlated unit structure costs in a warm fit of the benchmark DiD logit.

SYNTHETIC DATA (Table 3 (2) on the default sample, as :mod:`benchmarks.suite`). Three compiled
models, each sampled cold once and then warm ``--reps`` times in alternation (4 chains x 1000
draws after the spec's 500 tuning steps, 2 cores), so that the machine's load falls on all
three alike:

- ``exchangeable``: intercepts without unit means (the old default, biased; the reference);
- ``levels``: the default, correlated random effects sampled through the unit levels
  (:mod:`bayes_pool.bayes.levels`);
- ``bambi_form``: the same correlated model as Bambi writes it (intercepts beside the means'
  coefficients).

Leapfrog steps do not depend on the load; wall seconds do, so the ratio of medians is what to
read. Usage::

    .venv/bin/python benchmarks/unit_levels.py [--reps 3] [--out benchmarks/results]

Writes ``unit_levels.json`` and ``unit_levels.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import CHAINS, DRAWS, benchmark_design  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def compiled_models(prepared, spec) -> dict:
    """The three models of the module docstring, compiled for nutpie."""
    import nutpie

    from bayes_pool.bayes import did as bayes_did
    from bayes_pool.bayes.levels import level_vehicle
    from bayes_pool.bayes.sampling import bambi_traced_names, traced_names
    correlated, _ = bayes_did.build(prepared, spec)
    exchangeable, _ = bayes_did.build(prepared, replace(spec, unit_effects="exchangeable"))
    vehicle = level_vehicle(correlated, f"1|{prepared.design.unit}")
    return {
        "exchangeable": nutpie.compile_pymc_model(
            exchangeable.backend.model, var_names=bambi_traced_names(exchangeable)),
        "levels": nutpie.compile_pymc_model(
            vehicle.model, var_names=traced_names(vehicle.model, correlated)),
        "bambi_form": nutpie.compile_pymc_model(
            correlated.backend.model, var_names=bambi_traced_names(correlated)),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import nutpie

    from bayes_pool.runs import package_versions
    from bayes_pool.specs import load_spec
    spec = load_spec("did_logit")
    from bayes_pool.bayes.sampling import nutpie_options
    models = compiled_models(benchmark_design(), spec)
    kw = dict(draws=DRAWS, tune=spec.sampler.tune, chains=CHAINS, cores=2, progress_bar=False)
    for compiled in models.values():
        nutpie.sample(compiled, seed=1, **kw,
                      **nutpie_options(spec.sampler, compiled.n_dim))  # cold: first call
    runs = []
    for rep in range(args.reps):
        for name, compiled in models.items():
            start = time.perf_counter()
            idata = nutpie.sample(compiled, seed=2 + rep, **kw,
                                  **nutpie_options(spec.sampler, compiled.n_dim))
            wall = time.perf_counter() - start
            steps = int(idata.sample_stats["n_steps"].sum())
            tuning = int(idata.warmup_sample_stats["n_steps"].sum())
            runs.append(dict(model=name, rep=rep, wall_s=round(wall, 2), steps=steps + tuning,
                             steps_drawing=steps, us_per_step=round(1e6 * wall / (steps + tuning)),
                             divergences=int(idata.sample_stats["diverging"].sum()),
                             load=round(os.getloadavg()[0], 2)))
            print(runs[-1], flush=True)
    med = {m: {k: float(np.median([r[k] for r in runs if r["model"] == m]))
               for k in ("wall_s", "steps", "us_per_step")} for m in models}
    ratio = {m: {k: round(v / med["exchangeable"][k], 3) for k, v in med[m].items()}
             for m in models}
    summary = {"benchmark": "unit_levels", "synthetic": True, "reps": args.reps,
               "draws": DRAWS, "chains": CHAINS, "tune": spec.sampler.tune, "runs": runs,
               "median": med, "ratio_to_exchangeable": ratio,
               "date": datetime.now(timezone.utc).isoformat(), "versions": package_versions()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "unit_levels.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["# Warm-fit cost of the correlated unit structure (SYNTHETIC DATA)", "",
             f"Benchmark DiD logit, {CHAINS} x {DRAWS} draws, tune {spec.sampler.tune}, "
             f"{args.reps} warm fits of each model in alternation ({summary['date'][:16]} UTC); "
             "medians, and ratios to the exchangeable model.", "",
             "| model | wall s | ratio | leapfrog steps | ratio | µs a step | ratio |",
             "|---|---|---|---|---|---|---|"]
    for m in models:
        lines.append(f"| {m} | {med[m]['wall_s']:.2f} | {ratio[m]['wall_s']:.2f} | "
                     f"{med[m]['steps']:,.0f} | {ratio[m]['steps']:.2f} | "
                     f"{med[m]['us_per_step']:.0f} | {ratio[m]['us_per_step']:.2f} |")
    (args.out / "unit_levels.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


if __name__ == "__main__":
    main()
