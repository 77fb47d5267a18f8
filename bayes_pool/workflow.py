"""One DiD analysis three ways, and writing a run to disk.

:func:`analyse_did` fits the frequentist TWFE replication and the Bayesian hierarchical model
on the same prepared design and returns their estimates rows plus the posterior.
:func:`write_run` writes what DESIGN.md promises into a run folder. Both are generic: the
studies and the generic ``bayes-pool did`` command call them with their own designs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_pool import compare, estimates, report, runs
from bayes_pool.bayes import did as bayes_did
from bayes_pool.design import DiDDesign
from bayes_pool.freq import did as freq_did
from bayes_pool.mundlak import check_pooling
from bayes_pool.specs import ModelSpec, check_approx

log = logging.getLogger(__name__)


FigureMaker = Callable[[Path, bool, pd.DataFrame], dict[str, Path]]
"""Draws an analysis's figures into a run folder: ``(folder, synthetic, estimates) -> paths``;
``estimates`` is the run's whole table, published rows included."""


@dataclass
class Analysis:
    """Rows of the estimates table, posteriors by name, facts for the manifest, and the
    functions that draw its figures when the run is written."""

    estimates: pd.DataFrame
    posteriors: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)
    figures: list[FigureMaker] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    """Fitted result objects by name, for callers that want more than the table (not written)."""
    robustness: list = field(default_factory=list)
    """Breakdown analyses of the key estimates (:class:`bayes_pool.robustness_workflow.Piece`),
    written to ``robustness/`` by :func:`write_run` (:mod:`bayes_pool.robustness_run`)."""

    def extend(self, other: Analysis) -> None:
        self.estimates = estimates.concat(self.estimates, other.estimates)
        self.posteriors.update(other.posteriors)
        self.facts.update(other.facts)
        self.figures.extend(other.figures)
        self.results.update(other.results)
        self.robustness.extend(other.robustness)


def analyse_did(data: pd.DataFrame, design: DiDDesign, spec: ModelSpec, *, seed: int,
                study: str, table: str, column: str, bayesian: bool = True,
                approx: str | None = None, progressbar: bool = False,
                vcov: str = "cluster") -> Analysis:
    """Frequentist and Bayesian DiD on the same complete-case sample.

    ``vcov``: the frequentist SEs (:data:`bayes_pool.freq.ols.VCOVS`; clustered by
    ``design.cluster``, default the unit).

    ``approx="laplace"`` replaces NUTS by the Laplace approximation of
    :mod:`bayes_pool.bayes.fast` (logit only; treatment rows only), for data too large for
    NUTS on the machine.
    """
    check_approx(approx, design.family)
    prepared = design.prepare(data)
    if bayesian:  # refits of subsamples (placebo, subgroups) call the model directly
        check_pooling(spec.unit_effects, prepared.frame[design.unit].nunique(), design.unit)
    freq = freq_did.fit_did(prepared, cov_type=vcov)
    rows = [freq.tidy(study=study, table=table, column=column)]
    if spec is not None and spec.family == "t":
        rows[0]["note"] += ("; OLS (least squares): the Student-t likelihood is the Bayesian "
                            "model's only")
    facts = {"n_input": prepared.n_input, "n_complete": prepared.n_obs,
             "n_incomplete_dropped": prepared.n_incomplete,
             "identifying_units": list(prepared.switchers),
             "frequentist_dropped_units": list(freq.dropped_units),
             "vcov": {"type": freq.cov_type, "cluster": design.cluster or design.unit,
                      "note": freq.se_note}}
    if prepared.categorical:
        facts["categorical"] = prepared.categorical
    posteriors = {}
    if bayesian and approx == "laplace":
        from bayes_pool.bayes.fast import laplace_model, laplace_rows
        fast = laplace_model(prepared, spec, seed=seed)
        rows.append(laplace_rows(fast, fast.fit(), study=study, table=table, column=column))
        facts["approximation"] = f"laplace, unit SD {fast.unit_sd:.4g}"
        facts["unit_structure"] = fast.structure.to_dict()
    elif bayesian:
        bay = bayes_did.fit_did(prepared, spec, seed=seed, progressbar=progressbar)
        rows.append(bay.tidy(study=study, table=table, column=column))
        posteriors[f"table{table}_{column}"] = bay.idata
        facts["divergences"] = bay.divergences
        facts["formula"] = bayes_did.formula(prepared, bay.structure)
        facts["unit_structure"] = bay.structure.to_dict()
    from bayes_pool.robustness_workflow import did_pieces
    return Analysis(estimates=estimates.concat(*rows), posteriors=posteriors,
                    facts={f"table{table}_{column}": facts},
                    robustness=did_pieces(rows[0], family=design.family,
                                          treatment=design.treatment))


def write_run(folder: Path, analysis: Analysis, *, study: str, title: str, synthetic: bool,
              key_term: str, manifest: dict, with_report: bool = True) -> dict[str, Path]:
    """Write estimates.csv, comparison.{md,csv}, idata.nc, forest.png, manifest.json and, unless
    ``with_report=False``, the reanalysis report (report.html, report.md;
    :mod:`bayes_pool.report_page`).

    The forest plot shows the effect quantities (AME, ATT, indirect) of ``key_term``.
    """
    folder = Path(folder)
    paths = {}
    est = analysis.estimates
    estimates.write_csv(est, folder / "estimates.csv")
    paths["estimates"] = folder / "estimates.csv"
    comp = compare.comparison(est)
    comp.to_csv(folder / "comparison.csv", index=False, float_format="%.10g", lineterminator="\n")
    (folder / "comparison.md").write_text(compare.to_markdown(comp, title=title, synthetic=synthetic))
    paths["comparison"] = folder / "comparison.md"
    key = comp[comp["quantity"].isin(["ame", "att", "indirect"]) & (comp["term"] == key_term)]
    if len(key):
        paths["forest"] = report.forest(key, folder / "forest.png", title=title, synthetic=synthetic)
    for make in analysis.figures:
        paths.update(make(folder, synthetic, est))
    if analysis.robustness:
        from bayes_pool.robustness_run import write_robustness
        paths.update(write_robustness(folder, analysis.robustness, synthetic=synthetic,
                                      published=est, title=title))
    if analysis.posteriors:
        paths["idata"] = _write_idata(analysis.posteriors, folder / "idata.nc",
                                      study=study, synthetic=synthetic, seed=manifest.get("seed"))
    bayes = est[est["source"] == "bayesian"]
    diagnostics = {
        "all_converged": bool(bayes["converged"].fillna(False).all()) if len(bayes) else None,
        "max_r_hat": float(bayes["r_hat"].max()) if len(bayes) else None,
        "min_ess_bulk": float(bayes["ess_bulk"].min()) if len(bayes) else None,
        "min_ess_tail": float(bayes["ess_tail"].min()) if len(bayes) else None,
        "divergences": {k: v.get("divergences") for k, v in analysis.facts.items()
                        if isinstance(v, dict) and "divergences" in v},
    }
    runs.write_manifest(folder, {**manifest, "study": study, "synthetic": synthetic,
                                 "key_term": key_term,
                                 "diagnostics": diagnostics, "facts": analysis.facts,
                                 "files": sorted(p.name for p in folder.iterdir()) + ["manifest.json"]
                                 + (["report.html", "report.md"] if with_report else [])})
    if with_report:
        from bayes_pool.report_page import write_report
        try:
            paths.update(write_report(folder))
        except Exception as exc:  # a report bug must not throw away the run's results
            log.warning("report.html/report.md not written (%s: %s); write them later with "
                        "`bayes-pool report <run folder>`", type(exc).__name__, exc)
    return paths


KEPT_GROUPS = ("posterior", "sample_stats", "prior")
"""Groups written to ``idata.nc``. ``observed_data``, ``constant_data``, ``posterior_predictive``
and ``log_likelihood`` hold one value per respondent, and restricted microdata never reaches
outputs/, so they are dropped, as is any kept variable with a per-observation dimension."""


def _aggregate_only(idata):
    """A copy of an InferenceData tree without row-level groups or variables."""
    import xarray as xr

    groups = {}
    for name in KEPT_GROUPS:
        if name not in idata.children:
            continue
        ds = idata[name].to_dataset()
        drop = [v for v in ds.data_vars
                if ds[v].dtype == object or any("obs" in str(dim) for dim in ds[v].dims)]
        groups[name] = xr.DataTree(ds.drop_vars(drop))
    return xr.DataTree(children=groups)


def _write_idata(posteriors: dict, path: Path, *, study: str, synthetic: bool, seed) -> Path:
    """All posteriors of a run in one NetCDF file, one group per fit (``/<fit>/posterior``...),
    aggregates only (see :data:`KEPT_GROUPS`)."""
    import xarray as xr

    children = {}
    for name, idata in posteriors.items():
        tree = _aggregate_only(idata)
        tree.attrs.update(study=study, synthetic=int(synthetic), seed=str(seed), fit=name)
        children[name] = tree
    root = xr.DataTree(children=children)
    root.attrs.update(study=study, synthetic=int(synthetic), seed=str(seed))
    root.to_netcdf(path)
    return path
