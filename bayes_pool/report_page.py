"""The reanalysis report of a run folder: one self-contained HTML page and its Markdown twin.

:func:`collect` reads a run's aggregate outputs into plain data (:class:`Report`);
:func:`write_report` renders ``report.html`` (template ``templates/report.html.j2``: CSS inline,
figures as base64 data URIs, no script, no network) and ``report.md`` (figures linked by
relative path) into the folder. It works for every run kind (``run STUDY``, ``did``,
``psm``, ``mediate``) because it reads only what :func:`write_run
<bayes_pool.workflow.write_run>` writes, and picks up new tables and figures without changes.

What it reads, and nothing else (reports hold aggregates only; a data file left in the folder
is never opened): ``estimates.csv`` (or ``comparison.csv``), ``manifest.json``, the figures
(``*.png`` ...), and the sensitivity results below.

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
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_pool import compare, estimates
from bayes_pool.errors import BayesPoolError

SENSITIVITY_TABLES: tuple[str, ...] = ("sensitivity.csv", "psense.csv")
SENSITIVITY_FIGURES: tuple[str, ...] = ("sensitivity.png", "psense.png",
                                        "prior_predictive.png", "posterior_predictive.png")
FIGURE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".svg": "image/svg+xml"}
FLAG_WORDS: tuple[str, ...] = ("flag", "conflict", "diagnos", "warning")
"""A sensitivity CSV's row is flagged when a column whose name holds one of these words is set
(not empty, false, 0, "ok", "✓" or "-"), or when its ``converged`` column is false."""
MAX_TABLE_ROWS = 500
"""Longest sensitivity table shown in full; longer ones are cut (the CSV stays in the folder)."""

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
TABLE_NAMES = {"did": "DiD", "mediation": "Mediation", "event_study": "Event study",
               "placebo": "Placebo", "text": "Numbers in the text",
               "abstract": "Numbers in the abstract"}
"""Display names of the generic table labels; a study run's manifest adds its own
(``table_names``, from the study record's ``labels``). Numeric labels read "Table n"."""


@dataclass
class Figure:
    name: str
    caption: str
    path: Path
    mime: str

    def data_uri(self) -> str:
        return f"data:{self.mime};base64," + base64.b64encode(self.path.read_bytes()).decode()


@dataclass
class Table:
    """A rendered table: column headings, rows of strings, and which rows to flag."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    flagged: list[bool]
    notes: list[str] = field(default_factory=list)
    text_columns: int | list[bool] = 0
    """Columns laid out as text (left-aligned): the first n, or a flag per column."""

    def is_text(self, i: int) -> bool:
        t = self.text_columns
        return i < t if isinstance(t, int) else t[i]


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
    return Report(
        folder=folder, title=_title(folder, manifest),
        synthetic=synthetic_run or bool(synthetic_sens), synthetic_note=note,
        source=_source(manifest), tables=_comparison_tables(comp, names),
        not_reestimated=_not_reestimated(est, comp, names),
        figures=[f for f in _figures(folder) if f.name not in in_sens],
        convergence=(_convergence_table(bayes, thresholds, names)
                     if bayes is not None and len(bayes) else None),
        thresholds=thresholds, n_bayes=0 if bayes is None else len(bayes), n_not_converged=n_bad,
        sensitivity=sensitivity, manifest=manifest,
        manifest_summary=_manifest_summary(manifest),
        versions=sorted((manifest or {}).get("versions", {}).items()))


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


# --------------------------------------------------------------------------- tables


def _comparison_tables(comp: pd.DataFrame | None, names: dict[str, str]) -> list[Table]:
    """One table per (study, table) of the comparison: published, frequentist and Bayesian."""
    if comp is None or not len(comp):
        return []
    several = comp["study"].nunique() > 1
    out = []
    for (study, table), part in comp.groupby(["study", "table"], sort=False):
        rows, flagged, notes = [], [], []
        pe = compare.estimate_se
        for r in part.itertuples():
            conv = r.converged
            bad = not pd.isna(conv) and not bool(conv)
            pub = pe(r.published, r.published_se)
            note = r.published_note if isinstance(r.published_note, str) else ""
            if "contradiction" in note:
                notes.append(f"{r.column} {r.term} {r.quantity}: {note}")
                pub += f" [{len(notes)}]"
            rows.append([str(r.column), str(r.term), str(r.quantity), pub,
                         pe(r.frequentist, r.frequentist_se), pe(r.bayesian, r.bayesian_sd),
                         _ci(r.bayes_ci_low, r.bayes_ci_high), _f(r.freq_diff_se, 2),
                         _f(r.bayes_diff_se, 2), f"{_f(r.published_n, 0)} / {_f(r.n_obs, 0)}",
                         "–" if pd.isna(conv) else ("NOT CONVERGED" if bad else "yes")])
            flagged.append(bad)
        name = _table_name(str(table), names)
        out.append(Table(
            key=f"{study}-{table}", title=f"{name} ({study})" if several else name,
            columns=["column", "term", "quantity", "published (SE)", "frequentist (SE)",
                     "Bayesian mean (SD)", "Bayesian 95% CI", "Δfreq/SE", "Δbayes/SE",
                     "N published / used", "converged"],
            rows=rows, flagged=flagged, notes=notes,
            text_columns=[True] * 3 + [False] * 7 + [True]))
    return out


def _table_name(table: str, names: dict[str, str]) -> str:
    return f"Table {table}" if table.isdigit() else names.get(table, table)


def _not_reestimated(est: pd.DataFrame | None, comp: pd.DataFrame | None,
                     names: dict[str, str]) -> list[str]:
    """Published cells of the ledger that this run did not re-estimate, counted by table."""
    if est is None:
        return []
    pub = est[est["source"] == "published"]
    done = set() if comp is None else set(map(tuple, comp[compare.KEYS].astype(str).to_numpy()))
    keep = pd.Series([tuple(k) not in done for k in pub[compare.KEYS].astype(str).to_numpy()],
                     index=pub.index, dtype=bool)
    left = pub[keep]
    return [f"{_table_name(t, names)}: {n} cell{'s' if n > 1 else ''}"
            for t, n in left.groupby("table", sort=False).size().items()]


def _convergence_table(bayes: pd.DataFrame, thresholds: dict,
                       names: dict[str, str]) -> Table:
    """R-hat, bulk/tail ESS and divergences of every posterior estimate, failures flagged."""
    rows, flagged = [], []
    for r in bayes.itertuples():
        ok = not pd.isna(r.converged) and bool(r.converged)
        rows.append([_table_name(r.table, names), r.column, r.term, r.quantity, _f(r.estimate, 3),
                     _f(r.r_hat, 3), _f(r.ess_bulk, 0), _f(r.ess_tail, 0), _f(r.divergences, 0),
                     "yes" if ok else "NOT CONVERGED: " + _why(r, thresholds)])
        flagged.append(not ok)
    return Table(key="convergence", title="Convergence of every posterior estimate",
                 columns=["table", "column", "term", "quantity", "posterior mean", "R-hat",
                          "ESS bulk", "ESS tail", "divergences", "converged"],
                 rows=rows, flagged=flagged, text_columns=[True] * 4 + [False] * 5 + [True])


def _why(r, t: dict) -> str:
    reasons = []
    if pd.isna(r.r_hat) or r.r_hat > t["max_r_hat"]:
        reasons.append(f"R-hat {_f(r.r_hat, 3)} > {t['max_r_hat']}")
    if pd.isna(r.ess_bulk) or r.ess_bulk < t["min_ess_bulk"]:
        reasons.append(f"ESS bulk {_f(r.ess_bulk, 0)} < {t['min_ess_bulk']}")
    if pd.isna(r.ess_tail) or r.ess_tail < t["min_ess_tail"]:
        reasons.append(f"ESS tail {_f(r.ess_tail, 0)} < {t['min_ess_tail']}")
    if not pd.isna(r.divergences) and r.divergences > t["max_divergences"]:
        reasons.append(f"{_f(r.divergences, 0)} divergences")
    return "; ".join(reasons) or "flagged by the fit"


def _csv_table(path: Path, key: str) -> Table:
    """A sensitivity CSV as it is (aggregates), numbers to 4 significant digits; rows are
    flagged by :data:`FLAG_WORDS`."""
    df = pd.read_csv(path)
    flag_cols = [c for c in df.columns if any(w in str(c).lower() for w in FLAG_WORDS)]
    shown = df.head(MAX_TABLE_ROWS)
    flagged = [any(_truthy(v) for v in row) for row in shown[flag_cols].itertuples(index=False)] \
        if flag_cols else [False] * len(shown)
    if "converged" in shown.columns:
        flagged = [f or not _truthy(c) for f, c in zip(flagged, shown["converged"])]
    notes = [f"first {MAX_TABLE_ROWS} of {len(df)} rows; the whole table is {path.name}"] \
        if len(df) > MAX_TABLE_ROWS else []
    return Table(key=key, title=path.name, columns=[str(c) for c in df.columns],
                 rows=[[_cell(v) for v in row] for row in shown.itertuples(index=False)],
                 flagged=flagged, notes=notes,
                 text_columns=[not pd.api.types.is_numeric_dtype(df[c]) for c in df.columns])


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "false", "0", "no", "none", "ok", "✓", "-", "–",
                                         "nan")
    return not pd.isna(v) and bool(v)


def _sensitivity(sfolder: Path, run: Path, thresholds: dict) -> Sensitivity:
    own = sfolder == run
    rel = os.path.relpath(sfolder, run)
    label = "this run folder" if own else rel + "/"
    key = "sens-" + ("run" if own else re.sub(r"[^A-Za-z0-9]+", "-", rel).strip("-"))
    tables = [_csv_table(sfolder / n, f"{key}-{Path(n).stem}")
              for n in SENSITIVITY_TABLES if (sfolder / n).is_file()]
    order = [Path(n).stem for n in SENSITIVITY_FIGURES]
    figures = sorted((f for f in _figures(sfolder) if not own or f.name in order),
                     key=lambda f: (order.index(f.name) if f.name in order else len(order), f.name))
    convergence, manifest = None, None
    if not own:
        manifest = _read_manifest(sfolder)
        est = _read_estimates(sfolder)
        if est is not None and (est["source"] == "bayesian").any():
            convergence = _convergence_table(est[est["source"] == "bayesian"], thresholds,
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


# --------------------------------------------------------------------------- formatting


def _f(x, digits: int) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.{digits}f}"


def _ci(lo, hi) -> str:
    return "–" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]"


def _cell(v) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4g}"
    return "–" if v is None else str(v)


# --------------------------------------------------------------------------- rendering


def render_html(rep: Report) -> str:
    """The self-contained HTML page (Jinja2 template, autoescaped)."""
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader("bayes_pool", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    manifest_json = json.dumps(rep.manifest, indent=2, sort_keys=True, default=str) \
        if rep.manifest is not None else ""
    sens_json = {s.label: json.dumps(s.manifest, indent=2, sort_keys=True, default=str)
                 for s in rep.sensitivity if s.manifest is not None}
    return env.get_template("report.html.j2").render(r=rep, manifest_json=manifest_json,
                                                     sens_json=sens_json)


def render_markdown(rep: Report) -> str:
    """The Markdown version; figures are linked by path relative to the run folder."""
    L = []
    if rep.synthetic:
        L += [f"> **SYNTHETIC DATA.** {rep.synthetic_note}", ""]
    L += [f"# {rep.title}", ""]
    if rep.n_not_converged:
        L += [f"> **{rep.n_not_converged} of {rep.n_bayes} posterior estimates NOT CONVERGED** "
              "(see Convergence diagnostics); do not read them as results.", ""]
    L += ["## Data source", ""] + _md_pairs(rep.source)
    L += ["## Reproduced tables", "",
          "Published vs frequentist vs Bayesian. Frequentist: estimate (SE); Bayesian: posterior "
          "mean (SD) and 95% equal-tailed interval; differences in units of the published SE.", ""]
    if not rep.tables:
        L += ["No estimates in this run.", ""]
    for t in rep.tables:
        L += _md_table(t, level=3)
    if rep.not_reestimated:
        L += ["Published cells not re-estimated in this run: " + "; ".join(rep.not_reestimated)
              + ".", ""]
    L += ["## Figures", ""]
    L += [line for f in rep.figures for line in _md_figure(f, rep.folder)] or ["No figures.", ""]
    L += ["## Convergence diagnostics", "", _thresholds_text(rep.thresholds), ""]
    L += _md_table(rep.convergence, level=3) if rep.convergence else ["No posterior estimates.", ""]
    L += ["## Prior sensitivity", ""]
    if not rep.sensitivity:
        L += ["No sensitivity results found for this run (looked in the run folder, its "
              "`sensitivity/` subfolder and the manifest's `sensitivity` entry).", ""]
    for s in rep.sensitivity:
        L += [f"### Results in {s.label}", ""]
        for t in s.tables + ([s.convergence] if s.convergence else []):
            L += _md_table(t, level=4)
        L += [line for f in s.figures for line in _md_figure(f, rep.folder)]
    L += ["## Manifest", ""] + _md_pairs(rep.manifest_summary)
    if rep.versions:
        L += ["Package versions: " + ", ".join(f"{k} {v}" for k, v in rep.versions), ""]
    L += ["The whole manifest is `manifest.json` in the run folder.", ""]
    return "\n".join(L)


def _thresholds_text(t: dict) -> str:
    return (f"A posterior estimate is converged when R-hat ≤ {t['max_r_hat']}, bulk and tail "
            f"ESS ≥ {t['min_ess_bulk']} / {t['min_ess_tail']} and divergences ≤ "
            f"{t['max_divergences']}.")


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table, *, level: int) -> list[str]:
    out = [f"{'#' * level} {t.title}", "",
           "| " + " | ".join(_md_escape(c) for c in t.columns) + " |",
           "|" + "---|" * len(t.columns)]
    for row, bad in zip(t.rows, t.flagged):
        cells = [_md_escape(c) for c in row]
        if bad:
            cells[-1] = f"**{cells[-1]}**"
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out += [f"{i}. {_md_escape(n)}" for i, n in enumerate(t.notes, 1)]
    return out + ([""] if t.notes else [])


def _md_figure(f: Figure, base: Path) -> list[str]:
    return [f"![{f.name}]({os.path.relpath(f.path, base)})", "", f"*{f.caption}*", ""]


def _md_pairs(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"- **{k}**: {_md_escape(v)}" for k, v in pairs] + [""]
