"""Scale benchmark (issue 6): the frequentist and Bayesian benchmark DiD logit at survey sizes.

The benchmark model is Table 3 column (2) of Zhang & Chen (2024) -- logit of self-rated health
on the policy, twelve controls, year effects and province intercepts -- fitted to SYNTHETIC
draws of the ``pooling-did`` generator with n = 7,719 (the paper's sample), 30,000 and 170,000
respondents (the CMDS has about 170,000 a year); the model keeps the complete cases of the
2014-2018 waves. Each size runs in a fresh subprocess so its peak resident memory is its own:

- frequentist: statsmodels logit with province and year dummies, clustered SEs and the
  delta-method AMEs (``bayes_pool.freq.did.fit_did``), one BLAS thread;
- Bayesian: the toolkit's default path (``bayes_pool.bayes.did.fit_did``: Bambi + nutpie,
  4 chains x 1000 draws after the spec's tuning on 2 cores, per-draw AMEs), with R-hat, ESS,
  divergences, leapfrog steps of the kept draws and the sampling time per such step;
- Laplace: the stated approximation of ``bayes_pool.bayes.fast`` (Gaussian at the posterior
  mode, province SD at the mode of its Laplace-approximated marginal posterior), to be read
  against NUTS where both ran.

Usage::

    .venv/bin/python benchmarks/scale.py [--sizes 7719,30000,170000] [--limit 900]
        [--methods freq,nuts,laplace] [--chains C --draws D --tune T] [--name scale]

Writes ``benchmarks/results/<name>.json`` and ``<name>.md``. ``--limit`` is the wall-clock
limit of one size's subprocess in seconds (a size that exceeds it is reported as such);
``--chains/--draws/--tune`` override the spec's sampler settings for every size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
SIZES = (7719, 30000, 170000)
METHODS = ("freq", "nuts", "laplace")
SEED = 2024


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(n: int, sampler: dict | None = None, methods: tuple[str, ...] = METHODS) -> dict:
    """The fits of ``methods`` at one size, in this process (called in a subprocess by
    :func:`main`); ``sampler`` overrides the spec's chains/draws/tune for NUTS."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from bayes_pool.bayes import did as bayes_did
    from bayes_pool.bayes.fast import laplace_model, unit_sd_from_posterior
    from bayes_pool.freq import did as freq_did
    from bayes_pool.specs import load_spec
    from bayes_pool.studies.pooling_did import pipeline
    from bayes_pool.studies.pooling_did.synthetic import simulate

    t0 = time.perf_counter()
    frame = simulate(seed=SEED, n=n).frame
    main = frame[frame["year"].isin(pipeline.MAIN_WAVES)].reset_index(drop=True)
    prepared = pipeline.table3_design("(2)").prepare(main)
    out = {"respondents": n, "n_obs": prepared.n_obs,
           "simulate_s": round(time.perf_counter() - t0, 2)}
    spec = load_spec("did_logit").with_sampler(**(sampler or {}))

    if "freq" in methods:
        with threadpool_limits(1):
            t0 = time.perf_counter()
            freq = freq_did.fit_did(prepared)
            out["freq_s"] = round(time.perf_counter() - t0, 2)
        ame = freq.tidy(study="bench", table="3", column="(2)")
        row = ame[(ame.term == "policy") & (ame.quantity == "ame")].iloc[0]
        out["freq_ame_policy"] = [round(float(row.estimate), 4), round(float(row.se), 4)]
        out["peak_mib_after_freq"] = round(_peak_mib(), 0)

    if "laplace" in methods:
        # The stated approximation: Laplace at the mode with the province SD at the mode of
        # its Laplace-approximated marginal posterior (bayes/fast.py), compiled once.
        t0 = time.perf_counter()
        fast = laplace_model(prepared, spec, seed=SEED)
        fit = fast.fit()
        out.update({
            "laplace_s": round(time.perf_counter() - t0, 1),
            "laplace_ame_policy": [round(fit.ame_mean, 4), round(fit.ame_sd, 4)],
            "laplace_beta_policy": [round(fit.beta_mean, 4), round(fit.beta_sd, 4)],
            "laplace_unit_sd": round(fast.unit_sd, 4),
            "laplace_converged": bool(fit.converged),
            "peak_mib_after_laplace": round(_peak_mib(), 0),
        })

    if "nuts" in methods:
        t0 = time.perf_counter()
        res = bayes_did.fit_did(prepared, spec, seed=SEED)
        out["bayes_s"] = round(time.perf_counter() - t0, 1)
        rows = res.tidy(study="bench", table="3", column="(2)")
        pol = rows[(rows.term == "policy") & (rows.quantity == "ame")].iloc[0]
        beta = rows[(rows.term == "policy") & (rows.quantity == "beta")].iloc[0]
        stats = res.idata["sample_stats"]
        post = res.idata["posterior"]
        sampling = float(post.attrs.get("sampling_time", np.nan))
        steps = int(np.asarray(stats["n_steps"]).sum())
        s = spec.sampler
        out.update({
            "bayes_sampling_s": round(sampling, 1),
            "bayes_ame_policy": [round(float(pol.estimate), 4), round(float(pol.se), 4)],
            "bayes_beta_policy": [round(float(beta.estimate), 4), round(float(beta.se), 4)],
            "bayes_unit_sd": round(unit_sd_from_posterior(res.idata, prepared.design.unit), 4),
            "max_r_hat": round(float(rows.r_hat.max()), 4),
            "min_ess_bulk": round(float(rows.ess_bulk.min()), 0),
            "divergences": int(res.divergences),
            "converged": bool(rows.converged.all()),
            # Leapfrog steps of the kept draws (Bambi discards the tuning steps' statistics);
            # the time per step of the kept draws includes the tuning time, so it is about
            # twice the time of one gradient.
            "draw_steps": steps,
            "leapfrog_per_draw": round(steps / (s.chains * s.draws), 1),
            "ms_per_draw_step": round(1e3 * sampling * min(s.chains, s.cores) / steps, 3),
            "sampler": f"{s.backend} {s.adaptation}, {s.chains} x {s.draws} after {s.tune}, "
                       f"{min(s.chains, s.cores)} at a time, "
                       + ("non-centred" if f"1|{prepared.design.unit}_offset" in {
                           rv.name for rv in res.model.backend.model.free_RVs} else "centred"),
        })
    out["peak_mib"] = round(_peak_mib(), 0)
    return out


def _pair(value) -> str:
    return f"{value[0]} ({value[1]})" if value else "–"


def to_markdown(result: dict) -> str:
    """One row per size; columns a size did not run are '–'."""
    lines = [f"# Scale benchmark ({result['date']})", "",
             f"Machine: {result['cpus']} cores; load average before {result['load_before']}. "
             "Data: SYNTHETIC (pooling-did generator, seed 2024). Model: Table 3 (2) logit.", "",
             "| respondents | rows | freq s | NUTS s (sampling) | sampler | µs/draw step/row "
             "| leapfrog/draw | min ESS | max R-hat | div | Laplace s | peak MiB "
             "| AME policy: freq / NUTS / Laplace (SE or SD) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["sizes"]:
        g = lambda key: r.get(key, "–")  # noqa: E731
        nuts = (f"{r['bayes_s']} ({r['bayes_sampling_s']})" if "bayes_s" in r
                else r.get("error", "–"))
        ms = r.get("ms_per_draw_step", r.get("ms_per_gradient"))  # older results: old name
        per_row = f"{1e3 * ms / r['n_obs']:.3f}" if ms else "–"
        lines.append(
            f"| {r['respondents']} | {g('n_obs')} | {g('freq_s')} | {nuts} | {g('sampler')} | "
            f"{per_row} | {g('leapfrog_per_draw')} | {g('min_ess_bulk')} | {g('max_r_hat')} | "
            f"{g('divergences')} | {g('laplace_s')} | {g('peak_mib')} | "
            f"{_pair(r.get('freq_ame_policy'))} / {_pair(r.get('bayes_ame_policy'))} / "
            f"{_pair(r.get('laplace_ame_policy'))} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--limit", type=float, default=900.0,
                        help="wall-clock seconds allowed for one size (default 900)")
    for name in ("chains", "draws", "tune", "cores"):
        parser.add_argument(f"--{name}", type=int, help=f"{name} (default: the spec's)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated fits of {METHODS} (default all)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--name", default="scale", help="output file stem (default scale)")
    args = parser.parse_args(argv)
    sampler = {k: getattr(args, k) for k in ("chains", "draws", "tune", "cores")
               if getattr(args, k) is not None}
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if set(methods) - set(METHODS):
        parser.error(f"unknown method(s) {sorted(set(methods) - set(METHODS))}; from {METHODS}")
    if args.one:
        print(json.dumps(measure(args.one, sampler, methods)))
        return 0
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()],
              "sizes": []}
    for n in (int(x) for x in args.sizes.split(",")):
        print(f"n = {n} ...", flush=True)
        t0 = time.perf_counter()
        try:
            extra = [f"--{k}={v}" for k, v in sampler.items()] + [f"--methods={args.methods}"]
            proc = subprocess.run([sys.executable, __file__, "--one", str(n), *extra],
                                  capture_output=True, text=True, timeout=args.limit)
        except subprocess.TimeoutExpired:
            row = {"respondents": n, "error": f"over the {args.limit:.0f} s limit"}
        else:
            if proc.returncode == 0:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                row = {"respondents": n, "error": f"exit {proc.returncode}",
                       "stderr": proc.stderr[-2000:]}
        row["subprocess_wall_s"] = round(time.perf_counter() - t0, 1)
        print(row, flush=True)
        result["sizes"].append(row)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
