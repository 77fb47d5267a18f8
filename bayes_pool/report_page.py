"""The reanalysis report of a run folder: one self-contained HTML page and its Markdown twin.

:func:`collect` reads a run's aggregate outputs into plain data (:class:`Report`; its tables
are built by :mod:`bayes_pool.report_tables`); :func:`write_report` renders ``report.html``
(:mod:`bayes_pool.report_render`, template ``templates/report.html.j2``: CSS inline, figures
as base64 data URIs, no script, no network) and ``report.md`` (figures linked by relative
path) into the folder. It works for every run kind (``run STUDY``, ``did``,
``psm``, ``mediate``) because it reads only what :func:`write_run
<bayes_pool.workflow.write_run>` writes, and picks up new tables and figures without changes.

What it reads, and nothing else (reports hold aggregates only; a data file left in the folder
is never opened): ``estimates.csv`` (or ``comparison.csv``), ``manifest.json``, the figures
(``*.png`` ...), the sensitivity results below, and ``robustness/`` (its ``robustness.csv``
and figures: the headline and "How robust is it?", :mod:`bayes_pool.report_robustness`).

Sensitivity results (one rule): a folder is a *sensitivity folder* when it holds any of
:data:`SENSITIVITY_TABLES` or :data:`SENSITIVITY_FIGURES`. The report takes, in this order
and without duplicates, (1) the run folder itself, (2) its ``sensitivity/`` subfolder, or each
sensitivity folder directly inside it, and (3) every folder named by the manifest key
``"sensitivity"`` (a path, a list of paths, or ``{"folder": path}``; relative paths are taken
from the run folder). Their tables and figures go in the report's sensitivity section; the
convergence of refits in a separate sensitivity folder is listed there too.

"Synthetic data": the notice heads the report whenever ``manifest.json`` says
``data.kind == "synthetic"`` (or ``"synthetic": true``), for the run or for an included
sensitivity folder.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_pool import compare, estimates
from bayes_pool.errors import BayesPoolError
from bayes_pool.report_render import render_html, render_markdown
from bayes_pool.report_robustness import (ROBUSTNESS_FOLDER, headline, missing_note,
                                          robustness_figures, robustness_table)
from bayes_pool.report_tables import (TABLE_NAMES, Table, comparison_tables, convergence_table,
                                      csv_table, not_reestimated)

SENSITIVITY_TABLES: tuple[str, ...] = ("sensitivity.csv", "psense.csv")
SENSITIVITY_FIGURES: tuple[str, ...] = ("sensitivity.png", "psense.png",
                                        "prior_predictive.png", "posterior_predictive.png")
FIGURE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".svg": "image/svg+xml"}

CAPTIONS = {
    "forest": "Key effect: published (black), frequentist (blue) and Bayesian (red; hollow "
              "when not converged) estimates with 95% intervals.",
    "event_study": "Event study: leads and lags of adoption, frequentist and Bayesian.",
    "mediation": "Mediation: indirect, direct and total effects.",
    "heterogeneity": "Heterogeneous effects by subgroup, with partial pooling.",
    "placebo": "Placebo distribution of the effect under randomly reassigned treatment.",
    "loadings_heatmap": "Factor loadings of the integration indicators.",
    "psm_att_forest": "ATT by matching method and Bayesian model.",
    "psm_love_plot": "Covariate balance before and after matching (standardized differences).",
    "psm_overlap": "Propensity-score overlap of treated and control units.",
    "sensitivity": "Key quantities under each prior set, published estimate marked.",
    "psense": "Power-scaling sensitivity: prior and likelihood sensitivity per parameter.",
    "prior_predictive": "Prior predictive check of the default priors.",
    "posterior_predictive": "Posterior predictive check.",
}



@dataclass
class Figure:
    name: str
    caption: str
    path: Path
    mime: str

    def data_uri(self) -> str:
        return f"data:{self.mime};base64," + base64.b64encode(self.path.read_bytes()).decode()




@dataclass
class Sensitivity:
    folder: Path
    label: str
    tables: list[Table]
    figures: list[Figure]
    convergence: Table | None
    manifest: dict | None


@dataclass
class Report:
    """Everything the report shows, as plain data (the renderers only lay it out)."""

    folder: Path
    title: str
    synthetic: bool
    synthetic_note: str
    source: list[tuple[str, str]]
    tables: list[Table]
    not_reestimated: list[str]
    figures: list[Figure]
    convergence: Table | None
    thresholds: dict
    n_bayes: int
    n_not_converged: int
    sensitivity: list[Sensitivity]
    manifest: dict | None
    manifest_summary: list[tuple[str, str]]
    versions: list[tuple[str, str]]
    headline: Table | None = None
    """The key estimate three ways with P(effect > 0) and the prior-set range."""
    robustness: Table | None = None
    """"How robust is it?": one line per key estimate and breakdown analysis."""
    robustness_figures: list[Figure] = field(default_factory=list)
    robustness_missing: str = ""
    """Why the robustness folder is absent and how to make it ("" when present)."""


def write_report(folder: str | Path) -> dict[str, Path]:
    """Write ``report.html`` and ``report.md`` into the run folder and return their paths."""
    return write(collect(folder))


def write(rep: Report) -> dict[str, Path]:
    """Render a collected report into its run folder."""
    html_path, md_path = rep.folder / "report.html", rep.folder / "report.md"
    html_path.write_text(render_html(rep), encoding="utf-8")
    md_path.write_text(render_markdown(rep), encoding="utf-8")
    return {"report_html": html_path, "report_md": md_path}


# --------------------------------------------------------------------------- collecting


def collect(folder: str | Path) -> Report:
    """Read a run folder's aggregate outputs into a :class:`Report`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BayesPoolError(f"{folder} is not a folder; give a run folder "
                             "(outputs/<study>/<run-id>)")
    manifest = _read_manifest(folder)
    est = _read_estimates(folder)
    sens_folders = sensitivity_folders(folder, manifest)
    if manifest is None and est is None and not sens_folders:
        raise BayesPoolError(f"{folder} holds no manifest.json, estimates.csv or sensitivity "
                             "results: is it a finished run folder?")
    thresholds = _thresholds(manifest)
    names = TABLE_NAMES | dict((manifest or {}).get("table_names") or {})
    comp = _comparison(folder, est)
    sensitivity = [_sensitivity(f, folder, thresholds) for f in sens_folders]
    synthetic_run = _is_synthetic(manifest)
    synthetic_sens = [s for s in sensitivity if s.folder != folder and _is_synthetic(s.manifest)]
    note = ""
    if synthetic_run:
        note = ("These results come from data generated by bayes_pool to mimic the published "
                "design. Agreement with the paper is by construction and shows only that the "
                "pipeline works; it is not a replication of the survey.")
    elif synthetic_sens:
        note = "The sensitivity results below were computed on synthetic (generated) data."
    bayes = est[est["source"] == "bayesian"] if est is not None else None
    n_bad = int((~bayes["converged"].fillna(False).astype(bool)).sum()) if bayes is not None else 0
    in_sens = {f.name for f in _figures(folder) if f.name in _stems(SENSITIVITY_FIGURES)} \
        if folder in sens_folders else set()
    sens_tables = [pd.read_csv(f / "sensitivity.csv") for f in sens_folders
                   if (f / "sensitivity.csv").is_file()]
    robust = folder / ROBUSTNESS_FOLDER
    return Report(
        folder=folder, title=_title(folder, manifest),
        synthetic=synthetic_run or bool(synthetic_sens), synthetic_note=note,
        source=_source(manifest), tables=comparison_tables(comp, names),
        not_reestimated=not_reestimated(est, comp, names),
        figures=[f for f in _figures(folder) if f.name not in in_sens],
        convergence=(convergence_table(bayes, thresholds, names)
                     if bayes is not None and len(bayes) else None),
        thresholds=thresholds, n_bayes=0 if bayes is None else len(bayes), n_not_converged=n_bad,
        sensitivity=sensitivity, manifest=manifest,
        manifest_summary=_manifest_summary(manifest),
        versions=sorted((manifest or {}).get("versions", {}).items()),
        headline=headline(est, manifest, sens_tables),
        robustness=robustness_table(robust if robust.is_dir() else None, est, manifest,
                                    sens_tables),
        robustness_figures=[Figure(name=p.stem, caption=caption, path=p,
                                   mime=FIGURE_TYPES[p.suffix.lower()])
                            for p, caption in robustness_figures(robust, FIGURE_TYPES)],
        robustness_missing=missing_note(robust))


def sensitivity_folders(folder: Path, manifest: dict | None) -> list[Path]:
    """The sensitivity folders of a run, by the rule in the module docstring."""
    found: dict[Path, Path] = {}  # resolved -> as reached (a symlink keeps its own name)

    def add(p: Path) -> None:
        if p.is_dir() and _holds_sensitivity(p) and p.resolve() not in found:
            found[p.resolve()] = p

    add(folder)
    sub = folder / "sensitivity"
    if sub.is_dir():
        add(sub)
        for child in sorted(sub.iterdir()):
            add(child)
    pointed = (manifest or {}).get("sensitivity")
    if isinstance(pointed, dict):
        pointed = pointed.get("folder")
    if isinstance(pointed, str):
        pointed = [pointed]
    for p in pointed or []:
        if isinstance(p, str):
            add(folder / p)  # an absolute p stays as it is
    return list(found.values())


def _holds_sensitivity(p: Path) -> bool:
    return any((p / name).is_file() for name in SENSITIVITY_TABLES + SENSITIVITY_FIGURES)


def _read_manifest(folder: Path) -> dict | None:
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise BayesPoolError(f"{path} is not valid JSON ({exc})") from None


def _read_estimates(folder: Path) -> pd.DataFrame | None:
    path = folder / "estimates.csv"
    if not path.exists():
        return None
    try:
        return estimates.read_csv(path)
    except ValueError as exc:
        raise BayesPoolError(f"{path} is not a bayes_pool estimates table ({exc})") from None


def _comparison(folder: Path, est: pd.DataFrame | None) -> pd.DataFrame | None:
    if est is not None:
        return compare.comparison(est)
    path = folder / "comparison.csv"
    return pd.read_csv(path) if path.exists() else None


def _is_synthetic(manifest: dict | None) -> bool:
    if not manifest:
        return False
    data = manifest.get("data")
    return bool(manifest.get("synthetic") is True
                or (isinstance(data, dict) and data.get("kind") == "synthetic"))


def _thresholds(manifest: dict | None) -> dict:
    """The convergence thresholds the run was judged by: the manifest's ``convergence`` record
    (command-line overrides included), else the spec's, else the defaults."""
    from bayes_pool.specs import Convergence
    m = manifest or {}
    record = m.get("convergence") if isinstance(m.get("convergence"), dict) else {}
    spec = _spec_of(m)
    given = record.get("thresholds") or spec.get("convergence") or {}
    default = Convergence()
    return {k: given.get(k, getattr(default, k))
            for k in ("max_r_hat", "min_ess_bulk", "min_ess_tail", "max_divergences")}


def _title(folder: Path, manifest: dict | None) -> str:
    m = manifest or {}
    study, command = m.get("study"), m.get("command")
    if command == "run" and study:
        what = f"Reanalysis of {study}"
    elif command:
        what = f"bayes-pool {command}"
    elif study:
        what = f"Reanalysis of {study}"
    else:
        what = "bayes_pool results"
    return f"{what} — run {run_name(folder)}"


def run_name(folder: Path) -> str:
    """The run id: the folder's name, also while :func:`bayes_pool.runs.run_folder` still
    writes it as ``.<run-id>.partial``."""
    name = folder.name
    if name.startswith(".") and name.endswith(".partial"):
        return name[1:-len(".partial")]
    return name


def _source(manifest: dict | None) -> list[tuple[str, str]]:
    if manifest is None:
        return [("data", "unknown: the folder holds no manifest.json")]
    data = manifest.get("data") or {}
    if _is_synthetic(manifest):
        out = [("data", f"SYNTHETIC: generated by the {manifest.get('study', '')} generator"),
               ("generator seed", str(data.get("seed", manifest.get("seed", "–"))))]
    else:
        out = [("data", "file"), ("path", str(data.get("path", "–"))),
               ("format", str(data.get("format", "–"))),
               ("mapping", str(data.get("mapping") or "none"))]
    out += [("rows", str(data.get("n_rows", "–")))]
    if "n_columns" in data:
        out.append(("columns", str(data["n_columns"])))
    out.append(("fingerprint", str(data.get("fingerprint", "–"))))
    return out


# --------------------------------------------------------------------------- sensitivity


def _sensitivity(sfolder: Path, run: Path, thresholds: dict) -> Sensitivity:
    own = sfolder == run
    rel = os.path.relpath(sfolder, run)
    label = "this run folder" if own else rel + "/"
    key = "sens-" + ("run" if own else re.sub(r"[^A-Za-z0-9]+", "-", rel).strip("-"))
    tables = [csv_table(sfolder / n, f"{key}-{Path(n).stem}")
              for n in SENSITIVITY_TABLES if (sfolder / n).is_file()]
    order = [Path(n).stem for n in SENSITIVITY_FIGURES]
    figures = sorted((f for f in _figures(sfolder) if not own or f.name in order),
                     key=lambda f: (order.index(f.name) if f.name in order else len(order), f.name))
    convergence, manifest = None, None
    if not own:
        manifest = _read_manifest(sfolder)
        est = _read_estimates(sfolder)
        if est is not None and (est["source"] == "bayesian").any():
            convergence = convergence_table(est[est["source"] == "bayesian"], thresholds,
                                            TABLE_NAMES)
            convergence.key, convergence.title = f"{key}-convergence", "Convergence of the refits"
    return Sensitivity(folder=sfolder, label=label, tables=tables, figures=figures,
                       convergence=convergence, manifest=manifest)


# --------------------------------------------------------------------------- figures, manifest


def _figures(folder: Path) -> list[Figure]:
    """Every figure file in the folder (not its subfolders), forest plot first."""
    files = sorted((p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in FIGURE_TYPES),
                   key=lambda p: (p.stem != "forest", p.name))
    return [Figure(name=p.stem, caption=CAPTIONS.get(p.stem, p.stem.replace("_", " ")), path=p,
                   mime=FIGURE_TYPES[p.suffix.lower()]) for p in files]


def _stems(names) -> set[str]:
    return {Path(n).stem for n in names}


def _manifest_summary(manifest: dict | None) -> list[tuple[str, str]]:
    if manifest is None:
        return []
    m = manifest
    spec = _spec_of(m)
    inv = m.get("invocation") or {}
    out = [("command", _invocation_text(inv) or str(m.get("command", "–"))),
           ("study", str(m.get("study", "–"))), ("seed", str(m.get("seed", "–"))),
           ("synthetic", "yes" if _is_synthetic(m) else "no")]
    if spec:
        out += [("model spec", f"{spec.get('name', '–')} ({spec.get('family', '–')}): "
                               f"{spec.get('description', '')}"),
                ("priors", json.dumps(spec.get("priors", {}), sort_keys=True)),
                ("sampler", json.dumps(spec.get("sampler", {}), sort_keys=True))]
    data = m.get("data") or {}
    out.append(("data fingerprint", str(data.get("fingerprint", "–"))))
    if "elapsed_seconds" in m:
        out.append(("elapsed", f"{m['elapsed_seconds']} s"))
    if m.get("machine"):
        out.append(("machine", json.dumps(m["machine"], sort_keys=True)))
    return out


def _spec_of(m: dict) -> dict:
    """The model spec recorded in a manifest: ``spec`` (runs) or ``model.spec`` (sensitivity)."""
    for spec in (m.get("spec"), (m.get("model") or {}).get("spec")
                 if isinstance(m.get("model"), dict) else None):
        if isinstance(spec, dict):
            return spec
    return {}


def _invocation_text(inv: dict) -> str:
    if not inv.get("command"):
        return ""
    parts = ["bayes-pool", inv["command"]]
    for k, v in (inv.get("args") or {}).items():
        if v is None or v is False or v == "" or v == []:
            continue
        if k == "study":
            parts.insert(2, str(v))
            continue
        flag = "--" + ("time" if k == "time_col" else k.replace("_", "-"))
        parts += [flag] if v is True else [flag, ",".join(v) if isinstance(v, list) else str(v)]
    return " ".join(parts)
