"""Population ("pseudo-true") values of Zhang & Chen's Tables 3-7 in the synthetic world.

Most published cells are estimands of misspecified models: a logit without the mediators
(whose noise attenuates every coefficient), a logit on a noisily measured index, a logit
without controls. The generator's structural coefficients are therefore not what the
estimators target. The *truth* of a cell is defined uniformly as its probability limit in
the generator's world: the same frequentist estimator the pipeline uses, applied to one very
large SYNTHETIC draw (default 300,000 rows, plus 300,000 rows with the 2012 wave for Table 7).

The fits are the pipeline's own frequentist steps with the pipeline's own configuration
(:func:`~bayes_pool.studies.pooling_did.pipeline.table3_design`, ``MEDIATORS``,
``table6_splits``, ``CONTROLS_2012``) called without their Bayesian halves, so the truth
cannot drift from what the recovery test compares it with. Each value's ``se`` is the
estimator's own SE at the population size: its Monte Carlo error as a stand-in for the
probability limit. The natural mediation effects (``indirect``, ``direct``, ``total``,
``proportion_mediated``) would need a bootstrap at this size and have ``se`` NaN.

At 300,000 rows the 11 logit fits take 7-8 minutes on one core with a peak of 8.7 GB
(statsmodels' delta-method AMEs over ~45 columns dominate both); :func:`population_values`
can keep its result in a cache folder, keyed by ``n``, ``seed`` and a fingerprint of the
package's source.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from bayes_pool import estimates
from bayes_pool.studies.pooling_did.contract import CONTROLS, CONTROLS_2012, OUTCOME, STUDY_ID, \
    TIME, TREATMENT, UNIT
from bayes_pool.studies.pooling_did.synthetic import simulate

POPULATION_N = 300_000
"""Rows of each population draw: the MC error is sqrt(7719 / 300000) = 0.16 of a sample SE."""
POPULATION_SEED = 900_001
"""Seed of the population draw (the 2012-wave draw uses seed + 1); far from test seeds."""
WAVES_2012 = (2012, 2014, 2016, 2018)
COLUMNS = ["study", "table", "column", "term", "quantity", "estimate", "se", "n_obs"]


def population_frames(n: int = POPULATION_N, seed: int = POPULATION_SEED):
    """The two SYNTHETIC population draws: main waves, and with the 2012 wave (Table 7)."""
    return simulate(seed=seed, n=n), simulate(seed=seed + 1, n=n, waves=WAVES_2012)


def population_values(n: int = POPULATION_N, seed: int = POPULATION_SEED, *,
                      cache_dir: str | Path | None = None, progress=None) -> pd.DataFrame:
    """Frequentist estimates of every Table 3-7 cell (and the mediation effects) on a large draw.

    Parameters
    ----------
    n, seed
        Size and seed of each population draw (see :func:`population_frames`).
    cache_dir
        Folder where the result is kept as CSV and reused when ``n``, ``seed`` and the
        package's source are unchanged (None: no cache).
    progress
        Optional ``progress(message)`` callback.

    Returns
    -------
    pandas.DataFrame
        One row per (table, column, term, quantity) with ``estimate`` (the population value),
        ``se`` (its MC error) and ``n_obs``; tables ``3``-``7`` and ``mediation``.
        ``attrs["truth"]`` holds the generator's closed-form truths of both draws (``main``,
        ``frame_2012``), ``attrs["n"]``, ``attrs["seed"]``; ``attrs["synthetic"]`` is True.
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"pooling_did_population_n{n}_s{seed}_{_fingerprint()}"
        if path.with_suffix(".csv").exists() and path.with_suffix(".json").exists():
            out = pd.read_csv(path.with_suffix(".csv"), dtype={"table": str, "column": str})
            out.attrs.update(json.loads(path.with_suffix(".json").read_text()))
            return out
    say = progress or (lambda message: None)
    main, wave_2012 = population_frames(n, seed)
    with threadpool_limits(1):
        table = _fit_all(main.frame, wave_2012.frame, say)
    out = table.loc[table["source"] == "frequentist", COLUMNS].reset_index(drop=True)
    out.attrs.update({"synthetic": True, "n": n, "seed": seed,
                      "truth": {"main": main.truth, "frame_2012": wave_2012.truth}})
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(path.with_suffix(".csv"), index=False, float_format="%.12g")
        path.with_suffix(".json").write_text(json.dumps(out.attrs))
    return out


def _fit_all(frame: pd.DataFrame, frame_2012: pd.DataFrame, say) -> pd.DataFrame:
    """The pipeline's frequentist steps of Tables 3-7 (no Bayesian fits, no bootstrap)."""
    from bayes_pool.bayes.heterogeneity import load_heterogeneity_spec
    from bayes_pool.heterogeneity_workflow import heterogeneity
    from bayes_pool.mediation_workflow import analyse_mediation
    from bayes_pool.studies.pooling_did.pipeline import (
        MEDIATORS, TABLE3_COLUMNS, _table5_benchmark, table3_design, table6_splits,
    )
    from bayes_pool.workflow import analyse_did

    parts = []
    for column in TABLE3_COLUMNS:
        say(f"population Table 3 {column}")
        parts.append(analyse_did(frame, table3_design(column), None, seed=0, study=STUDY_ID,
                                 table="3", column=column, bayesian=False).estimates)
    parts.append(_table5_benchmark(estimates.concat(*parts)))
    for column, (index, items) in MEDIATORS.items():
        say(f"population Tables 4-5 {column} ({index})")
        parts.append(analyse_mediation(
            frame, treatment=TREATMENT, mediator=index, outcome=OUTCOME,
            covariates=tuple(CONTROLS), unit=UNIT, time=TIME, items=list(items), seed=0,
            study=STUDY_ID, tables=("4", "5"), column=column, bootstrap=0, bayesian=False,
            measurement_model=False).estimates)
    say("population Table 6 (6 subgroup logits)")
    het = heterogeneity(frame, table3_design("(2)"), table6_splits(),
                        spec=load_heterogeneity_spec(), seed=0, separate=False, pooled=False)
    parts.append(het.tidy(study=STUDY_ID, table="6"))
    for column, controls in {"(1)": (), "(2)": tuple(CONTROLS_2012)}.items():
        say(f"population Table 7 {column}")
        parts.append(analyse_did(frame_2012, table3_design("(1)", controls), None, seed=0,
                                 study=STUDY_ID, table="7", column=column,
                                 bayesian=False).estimates)
    return estimates.concat(*parts)


def _fingerprint() -> str:
    """Short hash of the package's Python source and published tables (cache key)."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for file in sorted([*root.rglob("*.py"), *root.rglob("published.csv")]):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


__all__ = ["POPULATION_N", "POPULATION_SEED", "population_frames", "population_values"]
