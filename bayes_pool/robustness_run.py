"""A run's ``robustness/`` folder: writing the breakdown pieces of
:mod:`bayes_pool.robustness_workflow`, and rebuilding them for a finished run.

:func:`write_robustness` writes ``robustness.csv`` (one line per piece, :data:`COLUMNS`), each
piece's curve (``<name>.csv``) and figure (``<name>.png``: the estimate against the sensitivity
parameter, published estimate marked). :class:`FinishedRun` reads a run folder back -- its
manifest, its data (a generic run's file, from the ``invocation`` the manifest records), its
stored posteriors -- for ``bayes-pool robustness RUN_DIR`` (:func:`bayes_pool.api_studies.how_robust`),
which refits the run's frequentist parts (no MCMC) and calls :func:`finish`.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bayes_pool import estimates
from bayes_pool.errors import BayesPoolError
from bayes_pool.robustness_workflow import Piece, event_study_pieces, resolved

log = logging.getLogger(__name__)

FOLDER = "robustness"
"""The subfolder of a run folder that holds the robustness results."""
TABLE = "robustness.csv"
COLUMNS = ["analysis", "table", "column", "term", "quantity", "estimate", "published",
           "method", "parameter", "breakdown", "meaning", "status", "curve", "figure"]
"""Columns of ``robustness.csv``: which estimate, its value (and the published one), the
method, the sensitivity parameter, its breakdown value, what that means, and the files."""
GENERIC = ("did", "psm", "mediate")
"""Generic commands whose runs :class:`FinishedRun` re-reads from their invocation."""


def table(pieces: list[Piece], published: pd.DataFrame | None = None) -> pd.DataFrame:
    """``robustness.csv``: one line per piece, with the published value of its cell."""
    rows = []
    for p in pieces:
        rows.append({"analysis": p.analysis, **p.cell, "estimate": p.estimate,
                     "published": _published(published, p.cell), "method": p.method,
                     "parameter": p.parameter, "breakdown": p.breakdown, "meaning": p.meaning,
                     "status": p.status,
                     "curve": f"{p.name}.csv" if p.has_curve else "",
                     "figure": f"{p.name}.png" if p.computed and p.has_curve else ""})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_robustness(folder: str | Path, pieces: list[Piece], *, synthetic: bool,
                     published: pd.DataFrame | None = None, title: str = "") -> dict[str, Path]:
    """Write ``robustness/`` into a run folder: ``robustness.csv``, a curve and a figure per
    computed piece. ``published``: the run's estimates (its published rows are marked)."""
    from bayes_pool.figures.robustness import plot_piece
    out = Path(folder) / FOLDER
    out.mkdir(exist_ok=True)
    pieces = _unique_names(resolved(pieces))
    summary = table(pieces, published)
    paths = {"robustness": out / TABLE}
    summary.to_csv(paths["robustness"], index=False, float_format="%.6g", lineterminator="\n")
    for p, line in zip(pieces, summary.itertuples()):
        if p.the_curve() is None:
            continue
        p.curve.to_csv(out / f"{p.name}.csv", index=False, float_format="%.6g",
                       lineterminator="\n")
        if p.computed:
            try:
                paths[p.name] = plot_piece(p, out / f"{p.name}.png", synthetic=synthetic,
                                           published=line.published, title=title)
            except Exception as exc:  # a figure bug must not throw away the numbers
                log.warning("robustness figure %s not drawn (%s: %s)", p.name,
                            type(exc).__name__, exc)
    return paths


def _unique_names(pieces: list[Piece]) -> list[Piece]:
    """The pieces with a numbered suffix on a repeated file name (two fits of one cell)."""
    from dataclasses import replace
    seen: dict[str, int] = {}
    out = []
    for p in pieces:
        seen[p.name] = seen.get(p.name, 0) + 1
        out.append(p if seen[p.name] == 1 else replace(p, name=f"{p.name}_{seen[p.name]}"))
    return out


def _published(published: pd.DataFrame | None, cell: dict) -> float | None:
    if published is None or not len(published):
        return None
    p = published[published["source"] == "published"]
    hit = p[(p["table"].astype(str) == cell["table"]) & (p["column"].astype(str) == cell["column"])
            & (p["term"].astype(str) == cell["term"])
            & (p["quantity"].astype(str) == cell["quantity"])]
    return float(hit["estimate"].iloc[0]) if len(hit) else None


# --------------------------------------------------------------------------- finished runs


@dataclass
class FinishedRun:
    """A finished run folder read back: its manifest, data and stored posteriors."""

    folder: Path
    manifest: dict

    @classmethod
    def read(cls, folder: str | Path) -> FinishedRun:
        """Read ``folder``'s manifest; an error names what is missing and what to give."""
        folder = Path(folder)
        path = folder / "manifest.json"
        if not path.is_file():
            raise BayesPoolError(f"{folder}: no manifest.json; give a finished run folder "
                                 "(outputs/<study>/<run-id>)")
        try:
            manifest = json.loads(path.read_text())
        except ValueError as exc:
            raise BayesPoolError(f"{path} is not valid JSON ({exc})") from None
        run = cls(folder=folder, manifest=manifest)
        if run.command not in ("run", *GENERIC):
            raise BayesPoolError(f"{path}: command {run.command!r} has no robustness analyses; "
                                 f"give the folder of a run, {', '.join(GENERIC)} run")
        return run

    @property
    def command(self) -> str | None:
        return (self.manifest.get("invocation") or {}).get("command") or \
            self.manifest.get("command")

    @property
    def args(self) -> dict:
        """The recorded arguments of the command (``invocation.args``)."""
        return dict((self.manifest.get("invocation") or {}).get("args") or {})

    @property
    def seed(self) -> int:
        return int(self.args.get("seed", self.manifest.get("seed", 0)))

    @property
    def synthetic(self) -> bool:
        data = self.manifest.get("data")
        return bool(self.manifest.get("synthetic") is True
                    or (isinstance(data, dict) and data.get("kind") == "synthetic"))

    def user_frame(self, covariates=()) -> pd.DataFrame:
        """A generic run's data file, mapped as the run mapped it, value-labelled
        ``covariates`` as categoricals of their labels (as the commands read it)."""
        from bayes_pool.data import load
        from bayes_pool.data.labels import apply_value_labels
        a = self.args
        if not a.get("data"):
            raise BayesPoolError(f"{self.folder}/manifest.json records no data file in its "
                                 "invocation; rerun the analysis with this version")
        if not Path(a["data"]).is_file():
            raise BayesPoolError(f"data file {a['data']} of this run is gone; the robustness "
                                 "analyses refit the run's frequentist models on it")
        loaded = load(a["data"], mapping=a.get("mapping"), unique=a.get("id_col"))
        return apply_value_labels(loaded.frame, loaded.value_labels, covariates)[0]

    def posteriors(self) -> dict:
        """The stored posteriors (``idata.nc``), by fit name; {} when the run kept none."""
        path = self.folder / "idata.nc"
        if not path.is_file():
            return {}
        import xarray as xr
        tree = xr.open_datatree(path)
        return {name: tree[name] for name in tree.children}

    def estimates(self) -> pd.DataFrame | None:
        path = self.folder / "estimates.csv"
        return estimates.read_csv(path) if path.is_file() else None


def with_posteriors(pieces: list[Piece], results: dict, posteriors: dict) -> list[Piece]:
    """``pieces`` with the parallel-trends ones redone on the run's stored posterior: a
    frequentist refit has none, the run's ``idata.nc`` does (event-study results are kept in
    ``results`` as ``<table>_frequentist``)."""
    out = list(pieces)
    for key, freq in results.items():
        table_ = key.removesuffix("_frequentist")
        if not key.endswith("_frequentist") or table_ not in posteriors:
            continue
        redo = event_study_pieces(freq, posteriors[table_], table=table_)
        out = [p for p in out if not (p.analysis == "parallel_trends"
                                      and p.cell["table"] == table_)] + redo
    return out


def finish(run: FinishedRun, pieces: list[Piece]) -> pd.DataFrame:
    """Replace the run's ``robustness/`` folder by ``pieces``, rewrite its report and return
    ``robustness.csv``."""
    shutil.rmtree(run.folder / FOLDER, ignore_errors=True)
    title = run.manifest.get("title") or f"{run.manifest.get('study', run.command)}"
    write_robustness(run.folder, pieces, synthetic=run.synthetic, published=run.estimates(),
                     title=title)
    from bayes_pool.report_page import write_report
    write_report(run.folder)
    return pd.read_csv(run.folder / FOLDER / TABLE)
