"""The two summaries at the top of a run's report: the headline (the key estimate published,
frequentist and Bayesian, with P(effect > 0) and the prior-set range) and the "How robust is
it?" table (one line per key estimate and breakdown analysis), as :class:`Table` objects.

What they read: the run's estimates table, ``manifest.json``, ``robustness/robustness.csv``
(written by :mod:`bayes_pool.robustness_workflow` in the run or by ``bayes-pool robustness``)
and the ``sensitivity.csv`` of the run's sensitivity folders. Which estimate is the headline:
the cells listed in the manifest's ``facts["headline"]`` (a study pipeline names its paper's
headline there), else the effect row of the run's key term (AME, ATT, indirect effect or
beta, in that order; k-NN first among ATTs; the first table of the run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bayes_pool import compare
from bayes_pool.report_tables import Table, _f

ROBUSTNESS_FOLDER = "robustness"
ROBUSTNESS_TABLE = "robustness.csv"
HOW_TO = "bayes-pool robustness RUN_DIR"
"""The command that writes (or rewrites) a run's robustness folder."""
EFFECT_QUANTITIES = ("ame", "att", "indirect", "beta")
"""The quantities a headline is chosen from, in order of preference."""
CELL = ("table", "column", "term", "quantity")


def headline_cells(est: pd.DataFrame | None, manifest: dict | None) -> list[dict]:
    """The key estimate's cells: the manifest's ``facts["headline"]``, else the effect row of
    its ``key_term`` (see the module docstring); [] when the run has neither."""
    m = manifest or {}
    named = (m.get("facts") or {}).get("headline") if isinstance(m.get("facts"), dict) else None
    if isinstance(named, dict):
        named = [named]
    if isinstance(named, list) and named:
        return [{k: str(c[k]) for k in CELL} for c in named if isinstance(c, dict)
                and all(k in c for k in CELL)]
    term = m.get("key_term")
    if est is None or not term:
        return []
    rows = est[(est["term"] == term) & est["quantity"].isin(EFFECT_QUANTITIES)
               & (est["source"] != "published")]
    if not len(rows):
        return []
    tables = list(dict.fromkeys(rows["table"]))
    rank = rows.assign(_q=rows["quantity"].map(EFFECT_QUANTITIES.index),
                       _k=rows["column"] != "knn", _t=rows["table"].map(tables.index))
    best = rank.sort_values(["_q", "_t", "_k"], kind="stable").iloc[0]
    return [{k: str(best[k]) for k in CELL}]


def headline(est: pd.DataFrame | None, manifest: dict | None,
             sensitivity: list[pd.DataFrame]) -> Table | None:
    """The headline table: per key cell, published / frequentist / Bayesian with intervals,
    P(effect > 0) and the prior-set range; None when the run has no key estimate."""
    cells = headline_cells(est, manifest)
    if est is None or not cells:
        return None
    rows, notes = [], []
    for c in cells:
        part = est[np.logical_and.reduce([est[k].astype(str) == c[k] for k in CELL])]
        by = {s: part[part["source"] == s].iloc[0] if (part["source"] == s).any() else None
              for s in ("published", "frequentist", "bayesian")}
        if by["frequentist"] is None and by["bayesian"] is None:
            continue
        prob, how = _p_positive(by["bayesian"], sensitivity, c)
        if how:
            notes.append(how)
        conv = None if by["bayesian"] is None else by["bayesian"]["converged"]
        bad = conv is not None and not pd.isna(conv) and not bool(conv)
        rows.append([f"{c['table']} {c['column']}", c["term"], c["quantity"],
                     _with_se(by["published"]), _with_ci(by["frequentist"]),
                     _with_ci(by["bayesian"]) + (" NOT CONVERGED" if bad else ""), prob,
                     prior_range(sensitivity, c)])
    if not rows:
        return None
    return Table(key="headline", title="Key estimate",
                 columns=["table / column", "term", "quantity", "published (SE)",
                          "frequentist (SE) [95% CI]", "Bayesian mean (SD) [95% CI]",
                          "P(effect > 0)", "prior-set range"],
                 rows=rows, flagged=[False] * len(rows), notes=list(dict.fromkeys(notes)),
                 text_columns=[True] * 3 + [False] * 5)


def prior_range(sensitivity: list[pd.DataFrame], cell: dict) -> str:
    """Posterior means (and 95% limits) of ``cell`` over the prior sets of the sensitivity
    tables that refit its term and quantity; "not run" (with the command) when none did."""
    rows = _sens_rows(sensitivity, cell)
    if rows is None:
        return "not run (bayes-pool sensitivity)"
    text = (f"{rows['mean'].min():.3f} to {rows['mean'].max():.3f} over {len(rows)} prior "
            f"set{'s' if len(rows) > 1 else ''}")
    if {"ci_low", "ci_high"} <= set(rows.columns) and rows["ci_low"].notna().any():
        text += f" (95% limits {rows['ci_low'].min():.3f} to {rows['ci_high'].max():.3f})"
    return text


def _sens_rows(sensitivity: list[pd.DataFrame], cell: dict) -> pd.DataFrame | None:
    for t in sensitivity:
        if "mean" not in t.columns or not len(t):
            continue
        same = pd.Series(True, index=t.index)
        for k in ("term", "quantity"):
            if k in t.columns:
                same &= t[k].astype(str) == cell[k]
        if same.any():
            return t[same]
    return None


def _p_positive(bayes, sensitivity: list[pd.DataFrame], cell: dict) -> tuple[str, str]:
    """P(effect > 0): from the draws when a sensitivity table holds it for the default prior
    set, else the normal approximation from the posterior mean and SD (said in a note)."""
    rows = _sens_rows(sensitivity, cell)
    if rows is not None and "p_positive" in rows.columns:
        first = rows[rows.get("prior_set", pd.Series("", index=rows.index)) == "default"]
        first = first if len(first) else rows.iloc[:1]
        return _f(first["p_positive"].iloc[0], 3), ""
    if bayes is None or pd.isna(bayes["estimate"]) or not bayes["se"] > 0:
        return "–", ""
    p = float(stats.norm.cdf(bayes["estimate"] / bayes["se"]))
    return (f"≈ {p:.3f}", "≈: P(effect > 0) by the normal approximation from the posterior "
                          "mean and SD (the sensitivity run gives it from the draws)")


def _with_se(r) -> str:
    return "–" if r is None else compare.estimate_se(r["estimate"], r["se"])


def _with_ci(r) -> str:
    if r is None:
        return "–"
    text = compare.estimate_se(r["estimate"], r["se"])
    return text + ("" if pd.isna(r["ci_low"]) else f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")


# --------------------------------------------------------------------------- how robust is it?


def robustness_table(folder: Path | None, est: pd.DataFrame | None, manifest: dict | None,
                     sensitivity: list[pd.DataFrame]) -> Table | None:
    """One line per key estimate and analysis: the prior-set range of each headline cell
    (when a sensitivity run exists) and every line of ``robustness.csv``; None when there is
    neither."""
    rows = []
    for c in headline_cells(est, manifest):
        if _sens_rows(sensitivity, c) is not None:
            rows.append([_label(c), "–", "priors", "prior set", prior_range(sensitivity, c),
                         "the range of the posterior mean when the priors change"])
    path = folder / ROBUSTNESS_TABLE if folder is not None else None
    if path is not None and path.is_file():
        for r in pd.read_csv(path, keep_default_na=False, na_values=[""]).itertuples():
            computed = str(r.status) == "computed"
            rows.append([_label(r._asdict()), _f(r.estimate, 3), str(r.method),
                         str(r.parameter), _f(r.breakdown, 3) if computed else "–",
                         str(r.meaning) if computed else str(r.status)])
    if not rows:
        return None
    return Table(key="robustness", title="Breakdown values of the key estimates",
                 columns=["estimate", "value", "assumption / method", "sensitivity parameter",
                          "breakdown value", "what it means"],
                 rows=rows, flagged=[False] * len(rows), text_columns=[True, False, True, True, False, True])


def robustness_figures(robust: Path, types) -> list[tuple[Path, str]]:
    """The figure files of the robustness folder (suffixes in ``types``) in the order of
    ``robustness.csv``, each with a caption: its method and what the breakdown means."""
    table = robust / ROBUSTNESS_TABLE
    if not table.is_file():
        return []
    out = []
    for r in pd.read_csv(table, keep_default_na=False).itertuples():
        path = robust / str(r.figure)
        if r.figure and path.is_file() and path.suffix.lower() in types:
            out.append((path, f"{r.method}: {r.meaning}."))
    return out


def missing_note(robust: Path) -> str:
    """What the report says when the run has no robustness folder ("" when it has one)."""
    if (robust / ROBUSTNESS_TABLE).is_file():
        return ""
    return (f"This run has no {ROBUSTNESS_FOLDER}/ folder. Make it with `{HOW_TO}` (Rosenbaum "
            "bounds, E-values, robustness values, mediation rho and parallel-trends "
            "breakdowns, as they apply; no MCMC).")


def _label(c: dict) -> str:
    return f"{c['table']} {c['column']}: {c['quantity']} of {c['term']}"
