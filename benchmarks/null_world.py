"""Null-world study: the size of every inference method of the toolkit with 3 switching provinces.

SYNTHETIC DATA. For each seed, two null worlds of the pooling-did generator (``policy_effect =
0``; same seed, same covariates and noise): without and with province x year shocks
(``shock_sd = SHOCK_SD``). On each, Table 3 column (2) (TWFE logit, twelve controls, complete
cases) is tested for a zero policy coefficient by

- ``clustered``: the logit's SE clustered by province as Stata's ``logit, vce(cluster)``
  (G/(G - 1)), normal reference (the paper's test; :func:`bayes_pool.freq.did.fit_did`);
- ``clustered_t``: the same t-statistic against t(G - 1), G the provinces (Stata's reference);
- ``model_based``: the logit's information-matrix (iid) SE;
- ``ri_beta``: randomization inference on the coefficient, the data's adoption schedule
  permuted across provinces (same switchers count and adoption years), B draws;
- ``ri_t``: the same draws, statistic the clustered t (MacKinnon & Webb 2020);
- ``clustered_lpm``: the linear-probability TWFE with CRV1 SEs clustered by province
  (fixest/reghdfe small-sample factor, t(G - 1));
- ``wild``: wild cluster restricted bootstrap of the linear-probability TWFE (Webb weights).

A method rejects when its p-value is <= 0.05. The table gives, per world and method, the
rejection rate with its exact (Clopper-Pearson) 95% binomial interval; ``consistent_5pct`` says
whether 5% lies inside that interval. A method is called valid only if it is consistent in
both worlds.

Usage (one command; the stored table came from it with ``--workers 2 --cache DIR``; per-seed
results kept under ``--cache`` let an interrupted run resume)::

    .venv/bin/python benchmarks/null_world.py [--seeds 200] [--n 4000] [--ri-draws 39]
        [--boot 399] [--workers 2] [--cache DIR] [--out benchmarks/results]

Writes ``null_world.csv`` / ``.md`` / ``.json`` (table, settings, timing), ``null_world_pvalues
.csv`` (every p-value by seed, world and method) and ``null_world.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from scipy import stats

ALPHA = 0.05
N_DEFAULT = 4000
"""Respondents per data set: about half the paper's 7719, so that 2 x 200 data sets with 40
refits each run in well under an hour on the shared 2-core machine; the design (29
provinces, 3 switchers, 3 always treated, 3 waves, Table 3 (2) controls) is the paper's. The
switchers then have ~15 rows a wave instead of ~28, so province x year shocks weigh a little
less against sampling noise than at full size."""
RI_DRAWS = 39
"""Permutations per RI test: alpha * (B + 1) = 2 is an integer, so the RI test's size at 5% is
exactly 5% when the assignment is exchangeable (p-values on the grid 1/40, 2/40, ...)."""
RESULTS = Path(__file__).resolve().parent / "results"
METHODS = {
    "clustered": "logit, SE clustered by province as Stata's logit vce(cluster), normal (the "
                 "paper's)",
    "clustered_t": "logit, the same clustered t against t(G - 1)",
    "model_based": "logit, model-based (iid) SE",
    "ri_beta": "randomization inference, statistic = coefficient (RI-beta)",
    "ri_t": "randomization inference, statistic = clustered t (RI-t)",
    "clustered_lpm": "linear probability TWFE, CRV1 SE clustered by province (fixest), t(G - 1)",
    "wild": "wild cluster restricted bootstrap, LPM, Webb weights",
}


def null_seed(seed: int, settings: dict) -> list[dict]:
    """Every method's p-value for the policy coefficient in both null worlds of one seed."""
    from threadpoolctl import threadpool_limits

    from statsmodels.discrete.discrete_model import Logit

    from bayes_pool.freq.placebo import design_matrix, placebo
    from bayes_pool.freq.wild_bootstrap import wild_cluster_bootstrap
    from bayes_pool.studies.pooling_did.pipeline import table3_design
    from bayes_pool.studies.pooling_did.synthetic import simulate

    rows = []
    for world, sd in (("no shocks", 0.0), ("shocks", settings["shock_sd"])):
        frame = simulate(seed=seed, n=settings["n"], policy_effect=0.0, shock_sd=sd).frame
        prepared = table3_design("(2)").prepare(frame)
        with threadpool_limits(limits=1):
            ri = placebo(prepared, seed=seed, n_draws=settings["ri_draws"], workers=1)
            # Table 3's logit with model-based SEs (= freq.did.fit_did(cov_type="nonrobust"),
            # tests/test_placebo.py), on the placebo's design matrix: no formula parsing
            y, X, _, _ = design_matrix(prepared)
            iid = Logit(y, X).fit(disp=0, method="newton", maxiter=100)
            wild = wild_cluster_bootstrap(prepared, seed=seed, n_boot=settings["boot"],
                                          ci=False)
        G = prepared.frame[prepared.design.unit].nunique() - len(ri.dropped_units)
        p = {"clustered": ri.actual["p_value"],
             "clustered_t": float(2 * stats.t.sf(abs(ri.actual["t"]), G - 1)),
             "model_based": float(iid.pvalues[1]),
             "ri_beta": ri.ri_p_value, "ri_t": ri.ri_t_p_value,
             "clustered_lpm": wild.p_clustered, "wild": wild.p_value}
        rows += [dict(seed=seed, world=world, method=m, p_value=float(v),
                      coef=ri.actual["coef"], n_obs=ri.n_obs) for m, v in p.items()]
    return rows


def rate_table(pvalues: pd.DataFrame) -> pd.DataFrame:
    """Rejection rate at ALPHA with its exact 95% binomial interval, per world and method."""
    out = []
    for (world, method), g in pvalues.groupby(["world", "method"], sort=False):
        k, n = int((g["p_value"] <= ALPHA).sum()), len(g)
        ci = stats.binomtest(k, n, ALPHA).proportion_ci(confidence_level=0.95, method="exact")
        out.append(dict(world=world, method=method, seeds=n, rejections=k, rate=k / n,
                        ci_low=ci.low, ci_high=ci.high,
                        consistent_5pct=bool(ci.low <= ALPHA <= ci.high),
                        description=METHODS.get(method, method)))
    table = pd.DataFrame(out)
    both = table.groupby("method")["consistent_5pct"].transform("all")
    table["valid_both_worlds"] = both
    return table


def rate_text(table: pd.DataFrame, method: str) -> str:
    """'4.5% [2.1, 8.4] without shocks, 12.0% [7.9, 17.3] with (200 seeds each)'."""
    rows = table[table["method"] == method].set_index("world")

    def one(world):
        r = rows.loc[world]
        return f"{100 * r.rate:.1f}% [{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}]"
    return (f"{one('no shocks')} without province x year shocks, {one('shocks')} with "
            f"({int(rows['seeds'].min())} seeds each)")


def markdown(table: pd.DataFrame, settings: dict) -> str:
    lines = [
        "# Null-world rejection rates at 5% (SYNTHETIC DATA)",
        "",
        f"pooling-did generator, `policy_effect = 0`, n = {settings['n']} respondents per data "
        f"set (Table 3 column (2): complete cases, twelve controls), seeds "
        f"1-{settings['seeds']}; world with shocks: province x year shock SD "
        f"{settings['shock_sd']} on the logit. RI: {settings['ri_draws']} permutations of the "
        f"data's adoption schedule; wild bootstrap: {settings['boot']} draws. Reject when "
        f"p <= {ALPHA}. Interval: exact (Clopper-Pearson) 95% binomial.",
        "",
        "| method | world | rejections | rate | 95% interval | 5% inside | valid in both worlds |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [rate_cells(r) + " |" for r in table.itertuples()]
    return "\n".join(lines) + "\n"


def rate_cells(r) -> str:
    """A row of :func:`rate_table` as markdown cells (method to 'valid in both worlds')."""
    return (f"| {r.method}: {r.description} | {r.world} | {r.rejections}/{r.seeds} | "
            f"{100 * r.rate:.1f}% | [{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}] | "
            f"{'yes' if r.consistent_5pct else 'no'} | {'yes' if r.valid_both_worlds else 'no'}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--n", type=int, default=N_DEFAULT,
                        help=f"respondents per data set (default {N_DEFAULT})")
    parser.add_argument("--ri-draws", type=int, default=RI_DRAWS)
    parser.add_argument("--boot", type=int, default=399)
    parser.add_argument("--workers", type=int, default=1,
                        help="dask worker processes (1: in-process)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep per-seed results here to resume (default: none)")
    args = parser.parse_args(argv)

    from bayes_pool.checkpoint import Checkpoint
    from bayes_pool.figures.placebo import null_world_plot
    from bayes_pool.parallel import map_refits
    from bayes_pool.runs import package_versions
    from bayes_pool.studies.pooling_did.synthetic import SHOCK_SD

    settings = dict(seeds=args.seeds, n=args.n, ri_draws=args.ri_draws,
                    boot=args.boot, shock_sd=SHOCK_SD, alpha=ALPHA)
    tag = f"v2-n{settings['n']}-ri{args.ri_draws}-boot{args.boot}-sd{SHOCK_SD}"
    store = Checkpoint(args.cache / tag) if args.cache else None
    start = time.perf_counter()
    out = map_refits(null_seed, list(range(1, args.seeds + 1)), shared=settings,
                     workers=args.workers, checkpoint=store,
                     progress=lambda done, total: print(f"{done}/{total} seeds", flush=True))
    seconds = time.perf_counter() - start
    pvalues = pd.DataFrame([r for rows in out for r in rows])
    table = rate_table(pvalues)
    args.out.mkdir(parents=True, exist_ok=True)
    pvalues.to_csv(args.out / "null_world_pvalues.csv", index=False)
    table.to_csv(args.out / "null_world.csv", index=False)
    (args.out / "null_world.md").write_text(markdown(table, settings))
    null_world_plot(table, args.out / "null_world.png", synthetic=True)
    summary = {"benchmark": "null_world", "synthetic": True, "settings": settings,
               "seconds": round(seconds, 1), "workers": args.workers,
               "load_average": os.getloadavg(), "machine": platform.machine(),
               "cpus": os.cpu_count(), "date": datetime.now(timezone.utc).isoformat(),
               "versions": package_versions(),
               "rates": {m: rate_text(table, m) for m in table["method"].unique()},
               "table": table.to_dict(orient="records")}
    (args.out / "null_world.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(markdown(table, settings))
    print(f"{seconds:.0f} s")
    return summary


if __name__ == "__main__":
    main()
