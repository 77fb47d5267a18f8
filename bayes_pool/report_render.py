"""The report of a run as a self-contained HTML page (Jinja2 template
``templates/report.html.j2``) and as Markdown, from a collected
:class:`~bayes_pool.report_page.Report`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bayes_pool.report_page import Figure, Report
    from bayes_pool.report_tables import Table


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
    if rep.headline:
        L += _md_table(rep.headline, level=2)
    L += ["## How robust is it?", ""]
    if rep.robustness:
        L += _md_table(rep.robustness, level=3)
    if rep.robustness_missing:
        L += [rep.robustness_missing, ""]
    L += [line for f in rep.robustness_figures for line in _md_figure(f, rep.folder)]
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
