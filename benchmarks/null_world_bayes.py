"""Null-world study, Bayesian rows: how often the 95% posterior interval of the policy
coefficient excludes 0 when the effect is 0, with and without the province x year effect.

SYNTHETIC DATA. The same data sets as :mod:`benchmarks.null_world` (pooling-did generator,
``policy_effect = 0``, the same seeds, n and shock SD; both worlds), Table 3 column (2), fitted
with full NUTS by :func:`bayes_pool.bayes.did.fit_did` and the ``did_logit`` spec (correlated
unit effects, the toolkit's default) twice:

- ``bayes_cre``: the default model, no unit x time effect;
- ``bayes_cre_unit_time``: the same with ``unit_time = true``, ``(1|province:year)``.

A fit "rejects" when the equal-tailed 95% interval of the policy coefficient excludes 0; its
"p-value" is the two-sided posterior tail probability 2 min(P(beta > 0), P(beta < 0)), so the
frequentist table's rule (p <= 0.05) applies unchanged. Each fit's R-hat, ESS and divergences
are kept; the table says how many fits were unconverged, and their rejections are counted
like the others (dropping them would choose seeds after looking).

Usage (per-fit results kept under ``--cache``, so a stopped run resumes; ``--tabulate`` writes
the table of the seeds finished so far)::

    .venv/bin/python benchmarks/null_world_bayes.py [--seeds 50] [--chains 2] [--draws 1000]
        [--cache DIR] [--tabulate] [--out benchmarks/results]

Writes ``null_world_bayes.csv`` / ``.md`` / ``.json`` and ``null_world_bayes_draws.csv`` (every
fit), and redraws ``null_world.png`` with the Bayesian rows next to the frequentist ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from null_world import ALPHA, N_DEFAULT, RESULTS, rate_cells, rate_table  # noqa: E402

MODELS = {
    "bayes_cre": "Bayesian logit, correlated unit effects (default), 95% interval excludes 0",
    "bayes_cre_unit_time": "the same with a province x year effect (unit_time = true)",
}


def fit_one(task: dict, settings: dict) -> dict:
    """One world, one seed, one model: the policy coefficient's posterior tail probability and
    the fit's convergence."""
    from bayes_pool.bayes.did import fit_did
    from bayes_pool.specs import load_spec
    from bayes_pool.studies.pooling_did.pipeline import table3_design
    from bayes_pool.studies.pooling_did.synthetic import simulate

    sd = settings["shock_sd"] if task["world"] == "shocks" else 0.0
    frame = simulate(seed=task["seed"], n=settings["n"], policy_effect=0.0, shock_sd=sd).frame
    prepared = table3_design("(2)").prepare(frame)
    spec = load_spec("did_logit").with_sampler(chains=settings["chains"],
                                               draws=settings["draws"], time_limit=0)
    spec = replace(spec, unit_time=task["method"] == "bayes_cre_unit_time")
    start = time.perf_counter()
    res = fit_did(prepared, spec, seed=task["seed"])
    term = prepared.design.treatment
    draws = res.idata["posterior"][term].values.ravel()
    tail = float(min((draws > 0).mean(), (draws < 0).mean()))
    low, high = np.quantile(draws, [ALPHA / 2, 1 - ALPHA / 2])
    row = res.tidy(study="null-world", table="3", column="(2)")
    beta = row[(row["term"] == term) & (row["quantity"] == "beta")].iloc[0]
    return dict(seed=task["seed"], world=task["world"], method=task["method"],
                p_value=2 * tail, excludes_zero=bool(low > 0 or high < 0),
                mean=float(draws.mean()), sd=float(draws.std()), low=float(low),
                high=float(high), r_hat=float(beta["r_hat"]), ess_bulk=float(beta["ess_bulk"]),
                divergences=int(res.divergences), converged=bool(beta["converged"]),
                seconds=round(time.perf_counter() - start, 1))


def markdown(table: pd.DataFrame, fits: pd.DataFrame, settings: dict) -> str:
    lines = [
        "# Null-world non-coverage of 0 by the Bayesian 95% interval (SYNTHETIC DATA)",
        "",
        f"The data sets of `null_world.md` (seeds 1-{fits['seed'].max()}, "
        f"{settings['seeds']} seeds, n = {settings['n']}, "
        f"shock SD {settings['shock_sd']}), Table 3 column (2), full NUTS ({settings['chains']} "
        f"chains x {settings['draws']} draws, the did_logit spec otherwise). A fit rejects when "
        "its equal-tailed 95% interval of the policy coefficient excludes 0. Interval: exact "
        "(Clopper-Pearson) 95% binomial.",
        "",
        "| model | world | rejections | rate | 95% interval | 5% inside | valid in both worlds "
        "| unconverged fits | median s/fit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        g = fits[(fits["world"] == r.world) & (fits["method"] == r.method)]
        lines.append(
            f"{rate_cells(r)} | {int((~g['converged']).sum())} (max div "
            f"{int(g['divergences'].max())}, max R-hat {g['r_hat'].max():.3f}) | "
            f"{g['seconds'].median():.0f} |")
    return "\n".join(lines) + "\n"


def agreement(fits: pd.DataFrame, pvalues: pd.DataFrame, method: str = "model_based") -> str:
    """How the Bayesian rejections line up, data set by data set, with a frequentist test's on
    the same seeds (``null_world_pvalues.csv``)."""
    freq = pvalues[(pvalues["method"] == method) & pvalues["seed"].isin(fits["seed"])]
    freq = freq.assign(reject=freq["p_value"] <= ALPHA).set_index(["seed", "world"])["reject"]
    lines = []
    for model, g in fits.groupby("method", sort=False):
        bay = g.set_index(["seed", "world"])["excludes_zero"]
        same = int((bay == freq.reindex(bay.index)).sum())
        lines.append(f"- `{model}`: the same decision as the `{method}` test on {same} of "
                     f"{len(bay)} data sets (Bayesian rejections: "
                     f"{sorted(set(bay.index[bay].get_level_values(0)))}, {method}: "
                     f"{sorted(set(freq.index[freq].get_level_values(0)))}).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--n", type=int, default=N_DEFAULT)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--tabulate", action="store_true",
                        help="only tabulate the seeds already finished in --cache (every world "
                             "and model of a seed done), fitting nothing")
    args = parser.parse_args(argv)

    from bayes_pool.checkpoint import Checkpoint
    from bayes_pool.figures.placebo import null_world_plot
    from bayes_pool.parallel import map_refits
    from bayes_pool.runs import package_versions
    from bayes_pool.studies.pooling_did.synthetic import SHOCK_SD

    settings = dict(seeds=args.seeds, n=args.n, chains=args.chains, draws=args.draws,
                    shock_sd=SHOCK_SD, alpha=ALPHA)
    tasks = [dict(seed=s, world=w, method=m) for s in range(1, args.seeds + 1)
             for w in ("no shocks", "shocks") for m in MODELS]
    tag = f"bayes-n{args.n}-c{args.chains}-d{args.draws}-sd{SHOCK_SD}"
    store = Checkpoint(args.cache / tag) if args.cache else None
    start = time.perf_counter()
    if args.tabulate:
        if store is None:
            parser.error("--tabulate needs --cache")
        fits = pd.DataFrame(list(store.done().values()))
        per_seed = fits.groupby("seed").size()
        fits = fits[fits["seed"].isin(per_seed.index[per_seed == 2 * len(MODELS)])]
        settings["seeds"] = int(fits["seed"].nunique())
    else:
        fits = pd.DataFrame(map_refits(
            fit_one, tasks, shared=settings, workers=1, checkpoint=store,
            progress=lambda done, total: print(f"{done}/{total} fits", flush=True)))
    seconds = time.perf_counter() - start
    table = rate_table(fits[["seed", "world", "method", "p_value"]])
    table["description"] = table["method"].map(MODELS)
    args.out.mkdir(parents=True, exist_ok=True)
    fits.to_csv(args.out / "null_world_bayes_draws.csv", index=False)
    table.to_csv(args.out / "null_world_bayes.csv", index=False)
    text = markdown(table, fits, settings)
    pfile = args.out / "null_world_pvalues.csv"
    if pfile.exists():
        text += ("\nSeed by seed, against the frequentist tests of `null_world.md` on the same "
                 "data sets:\n\n" + agreement(fits, pd.read_csv(pfile)))
    (args.out / "null_world_bayes.md").write_text(text)
    freq = pd.read_csv(args.out / "null_world.csv")
    null_world_plot(pd.concat([freq, table], ignore_index=True), args.out / "null_world.png",
                    synthetic=True)
    summary = {"benchmark": "null_world_bayes", "synthetic": True, "settings": settings,
               "seconds": round(seconds, 1), "load_average": os.getloadavg(),
               "machine": platform.machine(), "cpus": os.cpu_count(),
               "date": datetime.now(timezone.utc).isoformat(), "versions": package_versions(),
               "table": table.to_dict(orient="records")}
    (args.out / "null_world_bayes.json").write_text(json.dumps(summary, indent=2, default=str)
                                                    + "\n")
    print(text)
    return summary


if __name__ == "__main__":
    main()
