"""The benchmark suite (`make bench`): samplers on the benchmark DiD logit, the frequentist
fit, and the whole `run` of each study, measured in one process on one machine.

The benchmark model is Table 3 column (2) of Zhang & Chen (2024): hierarchical logit with the
policy, twelve controls, year effects and partially pooled province intercepts, on the
default SYNTHETIC data (seed 2024, n = 7719 before the 2014-2018 filter). Each path draws
4 chains x 1000 on 2 cores after its own default tuning: 1000 steps for PyMC, the spec's
(``models/did_logit.toml``) for the toolkit; the warm nutpie refit is also timed at 1000.
The baseline is what Bambi gives out of the box (its Bernoulli family, non-centred group
effects) with PyMC's default sampler; the toolkit's model is the same posterior written for
speed (:mod:`bayes_pool.bayes.families`, :mod:`bayes_pool.bayes.parameterization`), and the
"Bambi + nutpie" row separates the sampler's share of the gain from the model's. Times are
reported next to the baseline measured in the same run (ratios), because the development
machine is shared and absolute seconds move with its load (the load average is recorded).

Usage::

    .venv/bin/python benchmarks/suite.py [--only sampler,freq,smi-psm,pooling-did]
        [--out benchmarks/results]

Writes ``suite.json`` and ``suite.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("sampler", "freq", "smi-psm", "pooling-did")
CHAINS, DRAWS, PYMC_TUNE = 4, 1000, 1000


def benchmark_design():
    """The prepared benchmark design (Table 3 column (2)) on the default synthetic data."""
    from bayes_pool.studies.pooling_did import pipeline
    from bayes_pool.studies.pooling_did.synthetic import simulate
    frame = simulate().frame
    main = frame[frame["year"].isin(pipeline.MAIN_WAVES)].reset_index(drop=True)
    return pipeline.table3_design("(2)").prepare(main)


def _sampler_stats(idata, wall: float, compile_s: float | None, term: str = "policy") -> dict:
    """ESS per second (policy and the minimum over parameters), R-hat, divergences, leapfrog
    steps and the time per gradient.

    ``draw_steps`` counts the leapfrog steps (one gradient each) of the kept draws; the
    tuning steps, about as many again, are counted only where the trace keeps them (nutpie
    called directly; Bambi and PyMC discard them), and only then is ``us_per_gradient``
    (sampling time x parallel chains / all steps) given."""
    import arviz_stats as azs
    import numpy as np
    post = idata["posterior"]
    names = [v for v in post.data_vars if not v.startswith("ame_")
             and not v.endswith("_offset")]
    summ = azs.summary(idata, var_names=names, kind="diagnostics")
    stats = idata["sample_stats"]
    sampling = float(post.attrs.get("sampling_time", np.nan))
    if not np.isfinite(sampling):
        sampling = wall - (compile_s or 0.0)
    steps = int(np.asarray(stats["n_steps"]).sum()) if "n_steps" in stats else None
    warm = idata["warmup_sample_stats"] if "warmup_sample_stats" in idata.children else None
    total = (steps + int(np.asarray(warm["n_steps"]).sum())
             if steps is not None and warm is not None and "n_steps" in warm else None)
    policy = summ.loc[summ.index.str.fullmatch(term)]
    return {
        "wall_s": round(wall, 2),
        "compile_s": round(compile_s, 2) if compile_s is not None else round(wall - sampling, 2),
        "sampling_s": round(sampling, 2),
        "ess_bulk_policy": round(float(policy["ess_bulk"].iloc[0]), 0),
        "ess_per_s_policy": round(float(policy["ess_bulk"].iloc[0]) / sampling, 1),
        "min_ess_bulk": round(float(summ["ess_bulk"].min()), 0),
        "min_ess_per_s": round(float(summ["ess_bulk"].min()) / sampling, 1),
        "max_r_hat": round(float(summ["r_hat"].max()), 4),
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        "draw_steps": steps,
        "total_steps": total,
        "us_per_gradient": (round(1e6 * sampling * min(CHAINS, os.cpu_count() or 1) / total, 1)
                            if total else None),
        "policy_mean": round(float(post[term].mean()), 4),
        "policy_sd": round(float(post[term].std()), 4),
        "policy_mcse_mean": round(float(policy["mcse_mean"].iloc[0]), 5),
    }


def bench_samplers(prepared, seed: int = 1) -> dict:
    """(a) Bambi's model + PyMC's default NUTS (the baseline), (a') Bambi's model + nutpie
    with the toolkit's options, (b) the toolkit's default path (``bayes_pool.bayes.did.fit_did``
    with the spec, AME draws included in its wall time), (b') the same with nutpie's diagonal
    mass matrix, (c) nutpie on the toolkit's compiled model reused (warm refits: no
    compilation), at the spec's tuning and at 1000 tuning steps."""
    import bambi as bmb
    import numpy as np
    import nutpie

    from bayes_pool.bayes import did as bayes_did
    from bayes_pool.bayes.levels import level_vehicle
    from bayes_pool.bayes.sampling import bambi_traced_names, nutpie_options, traced_names
    from bayes_pool.specs import load_spec
    spec = load_spec("did_logit").with_sampler(chains=CHAINS, draws=DRAWS)

    def options(n_dim: int) -> dict:  # the toolkit's target_accept and adaptation
        return nutpie_options(spec.sampler, n_dim)
    out = {}

    structure = bayes_did.unit_structure(prepared, spec)  # the same model: unit means included

    def plain_bambi():
        model = bmb.Model(bayes_did.formula(prepared, structure), structure.frame,
                          family="bernoulli", priors=bayes_did.priors(prepared, spec, structure))
        model.build()
        return model

    t0 = time.perf_counter()
    idata = plain_bambi().fit(draws=DRAWS, tune=PYMC_TUNE, chains=CHAINS, cores=2,
                              inference_method="pymc", random_seed=seed, progressbar=False)
    out["pymc_default"] = _sampler_stats(idata, time.perf_counter() - t0, None)
    out["pymc_default"]["note"] = f"Bambi's model, PyMC NUTS defaults, tune {PYMC_TUNE}"
    print("pymc default:", out["pymc_default"], flush=True)

    t0 = time.perf_counter()
    idata = plain_bambi().fit(draws=DRAWS, tune=spec.sampler.tune, chains=CHAINS, cores=2,
                              inference_method="nutpie", random_seed=seed, progressbar=False,
                              nuts=options(sum(v.size for v in
                                               plain_bambi().backend.model.initial_point().values())))
    out["bambi_nutpie"] = _sampler_stats(idata, time.perf_counter() - t0, None)
    out["bambi_nutpie"]["note"] = (f"Bambi's model, nutpie with the toolkit's options, tune "
                                   f"{spec.sampler.tune}")
    print("bambi + nutpie:", out["bambi_nutpie"], flush=True)

    t0 = time.perf_counter()
    res = bayes_did.fit_did(prepared, spec, seed=seed)
    wall = time.perf_counter() - t0
    out["toolkit_default"] = _sampler_stats(res.idata, wall, None)
    out["toolkit_default"]["note"] = (f"toolkit's model and nutpie, tune {spec.sampler.tune}; "
                                      "wall includes the per-draw AME")
    print("toolkit default:", out["toolkit_default"], flush=True)

    t0 = time.perf_counter()
    diag = bayes_did.fit_did(prepared, spec.with_sampler(adaptation="diag"), seed=seed)
    out["toolkit_diag"] = _sampler_stats(diag.idata, time.perf_counter() - t0, None)
    out["toolkit_diag"]["note"] = "as the default, nutpie's diagonal mass matrix"
    print("toolkit diag:", out["toolkit_diag"], flush=True)

    # What the toolkit's path samples: the model through its unit levels (levels.py), tracing
    # what that path traces (not the per-row response mean).
    t0 = time.perf_counter()
    vehicle = level_vehicle(res.model, f"1|{prepared.design.unit}")
    compiled = nutpie.compile_pymc_model(vehicle.model,
                                         var_names=traced_names(vehicle.model, res.model))
    compile_s = time.perf_counter() - t0
    nutpie.sample(compiled, draws=DRAWS, tune=spec.sampler.tune, chains=CHAINS, cores=2,
                  seed=seed, progress_bar=False, **options(compiled.n_dim))  # cold
    for key, tune in (("nutpie_warm", spec.sampler.tune), ("nutpie_warm_tune1000", 1000)):
        t0 = time.perf_counter()
        warm = nutpie.sample(compiled, draws=DRAWS, tune=tune, chains=CHAINS, cores=2,
                             seed=seed + 1, progress_bar=False, **options(compiled.n_dim))
        out[key] = _sampler_stats(warm, time.perf_counter() - t0, 0.0)
        out[key]["model_compile_s"] = round(compile_s, 2)
        out[key]["note"] = f"toolkit's compiled model reused, tune {tune}; second call timed"
        print(key, out[key], flush=True)

    # The same warm refit of the exchangeable model (no unit means): what the correlated
    # unit structure costs (docs/unit_effects.md); and of the correlated model as Bambi writes
    # it (intercepts beside the means' coefficients): what sampling through the levels saves.
    from dataclasses import replace
    exch, _ = bayes_did.build(prepared, replace(spec, unit_effects="exchangeable"))
    written, _ = bayes_did.build(prepared, spec)
    for key, model, what in (
            ("nutpie_warm_exchangeable", exch, "exchangeable unit intercepts (no unit means)"),
            ("nutpie_warm_bambi_form", written, "correlated model as Bambi writes it (not "
                                                "through the unit levels)")):
        compiled = nutpie.compile_pymc_model(model.backend.model,
                                             var_names=bambi_traced_names(model))
        nutpie.sample(compiled, draws=DRAWS, tune=spec.sampler.tune, chains=CHAINS, cores=2,
                      seed=seed, progress_bar=False, **options(compiled.n_dim))  # cold
        t0 = time.perf_counter()
        warm = nutpie.sample(compiled, draws=DRAWS, tune=spec.sampler.tune, chains=CHAINS,
                             cores=2, seed=seed + 1, progress_bar=False,
                             **options(compiled.n_dim))
        out[key] = _sampler_stats(warm, time.perf_counter() - t0, 0.0)
        out[key]["note"] = f"as nutpie_warm, {what}, tune {spec.sampler.tune}"
        print(key, out[key], flush=True)

    base = out["pymc_default"]
    for row in out.values():
        row["ess_per_s_policy_vs_pymc"] = round(row["ess_per_s_policy"]
                                                / base["ess_per_s_policy"], 2)
        row["wall_vs_pymc"] = round(row["wall_s"] / base["wall_s"], 2)
        # Same posterior? The policy mean's difference from PyMC's in units of their MCSEs.
        row["policy_mean_z_vs_pymc"] = round(
            (row["policy_mean"] - base["policy_mean"])
            / float(np.hypot(row["policy_mcse_mean"], base["policy_mcse_mean"]) or np.nan), 2)
    return out


def bench_freq(prepared, repeats: int = 5) -> dict:
    """The frequentist benchmark fit (statsmodels logit with province and year dummies,
    clustered SEs, AMEs by ``get_margeff``), one BLAS thread, median of ``repeats``."""
    import statistics

    from threadpoolctl import threadpool_limits

    from bayes_pool.freq.did import fit_did
    times = []
    with threadpool_limits(1):
        for _ in range(repeats):
            t0 = time.perf_counter()
            fit_did(prepared)
            times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 3), "repeats": repeats}


def bench_run(study: str) -> dict:
    """The whole default `bayes-pool run STUDY` on its synthetic data, as a user runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BAYES_POOL_OUTPUTS": tmp}
        t0 = time.perf_counter()
        proc = subprocess.run([str(Path(sys.executable).parent / "bayes-pool"), "run", study],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"wall_s": round(wall, 1), "exit_code": proc.returncode,
                    "error": proc.stderr[-2000:]}
        manifests = list(Path(tmp).glob(f"{study}/*/manifest.json"))
        parts = json.loads(manifests[0].read_text()).get("facts", {}).get("parts") if manifests \
            else None
        return {"wall_s": round(wall, 1), "exit_code": 0, "parts": parts}


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# Benchmarks ({result['date']})", "",
             f"Machine: {m['cpus']} cores, {m['platform']}, Python {m['python']}; load average "
             f"before {m['load_before']}, after {m['load_after']}. Data: SYNTHETIC "
             "(default seed).", ""]
    if "sampler" in result:
        lines += ["## Benchmark DiD logit (Table 3 (2), n = "
                  f"{result['n_obs']}, {CHAINS} x {DRAWS} draws; tuning in the notes)", "",
                  "| path | wall s | compile s | sampling s | ESS/s policy | vs PyMC | "
                  "min ESS/s | R-hat max | div | steps (draws) | steps (all) | µs/grad | policy mean (sd) | "
                  "z vs PyMC | note |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in result["sampler"].items():
            lines.append(f"| {name} | {r['wall_s']} | {r['compile_s']} | {r['sampling_s']} | "
                         f"{r['ess_per_s_policy']} | {r['ess_per_s_policy_vs_pymc']}x | "
                         f"{r['min_ess_per_s']} | {r['max_r_hat']} | {r['divergences']} | "
                         f"{r['draw_steps']} | {r['total_steps'] or '–'} | "
                         f"{r['us_per_gradient'] or '–'} | "
                         f"{r['policy_mean']} ({r['policy_sd']}) | "
                         f"{r['policy_mean_z_vs_pymc']} | {r.get('note', '')} |")
        lines.append("")
    if "freq" in result:
        lines += [f"Frequentist benchmark fit (statsmodels logit + AMEs, 1 thread): "
                  f"{result['freq']['median_s']} s (median of {result['freq']['repeats']}).", ""]
    for study in ("smi-psm", "pooling-did"):
        if study in result:
            r = result[study]
            status = "ok" if r.get("exit_code") == 0 else f"FAILED (exit {r.get('exit_code')})"
            lines.append(f"Whole `bayes-pool run {study}`: {r['wall_s']} s ({status}).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    result: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version(),
                                "load_before": [round(x, 2) for x in os.getloadavg()]}}
    from bayes_pool.runs import package_versions
    result["versions"] = package_versions()
    t_all = time.perf_counter()
    if {"sampler", "freq"} & set(sections):
        prepared = benchmark_design()
        result["n_obs"] = prepared.n_obs
        if "sampler" in sections:
            result["sampler"] = bench_samplers(prepared)
        if "freq" in sections:
            result["freq"] = bench_freq(prepared)
    for study in ("smi-psm", "pooling-did"):
        if study in sections:
            print(f"whole run of {study} ...", flush=True)
            result[study] = bench_run(study)
            print(study, result[study], flush=True)
    result["total_s"] = round(time.perf_counter() - t_all, 1)
    result["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "suite.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "suite.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return result


if __name__ == "__main__":
    main()
