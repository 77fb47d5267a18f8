"""The tables of a run's report: the published vs frequentist vs Bayesian comparison, the
convergence of every posterior, and sensitivity CSVs, as rows of display strings
(:class:`Table`), with the number formatting they share. Rendering is
:mod:`bayes_pool.report_render`'s; reading the folder :mod:`bayes_pool.report_page`'s."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_pool import compare

FLAG_WORDS: tuple[str, ...] = ("flag", "conflict", "diagnos", "warning")
"""A sensitivity CSV's row is flagged when a column whose name holds one of these words is set
(not empty, false, 0, "ok", "✓" or "-"), or when its ``converged`` column is false."""
MAX_TABLE_ROWS = 500
"""Longest sensitivity table shown in full; longer ones are cut (the CSV stays in the folder)."""

TABLE_NAMES = {"did": "DiD", "mediation": "Mediation", "event_study": "Event study",
               "placebo": "Placebo", "text": "Numbers in the text",
               "abstract": "Numbers in the abstract"}
"""Display names of the generic table labels; a study run's manifest adds its own
(``table_names``, from the study record's ``labels``). Numeric labels read "Table n"."""


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


def comparison_tables(comp: pd.DataFrame | None, names: dict[str, str]) -> list[Table]:
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
        name = table_name(str(table), names)
        out.append(Table(
            key=f"{study}-{table}", title=f"{name} ({study})" if several else name,
            columns=["column", "term", "quantity", "published (SE)", "frequentist (SE)",
                     "Bayesian mean (SD)", "Bayesian 95% CI", "Δfreq/SE", "Δbayes/SE",
                     "N published / used", "converged"],
            rows=rows, flagged=flagged, notes=notes,
            text_columns=[True] * 3 + [False] * 7 + [True]))
    return out


def table_name(table: str, names: dict[str, str]) -> str:
    return f"Table {table}" if table.isdigit() else names.get(table, table)


def not_reestimated(est: pd.DataFrame | None, comp: pd.DataFrame | None,
                    names: dict[str, str]) -> list[str]:
    """Published cells of the ledger that this run did not re-estimate, counted by table."""
    if est is None:
        return []
    pub = est[est["source"] == "published"]
    done = set() if comp is None else set(map(tuple, comp[compare.KEYS].astype(str).to_numpy()))
    keep = pd.Series([tuple(k) not in done for k in pub[compare.KEYS].astype(str).to_numpy()],
                     index=pub.index, dtype=bool)
    left = pub[keep]
    return [f"{table_name(t, names)}: {n} cell{'s' if n > 1 else ''}"
            for t, n in left.groupby("table", sort=False).size().items()]


def convergence_table(bayes: pd.DataFrame, thresholds: dict,
                      names: dict[str, str]) -> Table:
    """R-hat, bulk/tail ESS and divergences of every posterior estimate, failures flagged."""
    rows, flagged = [], []
    for r in bayes.itertuples():
        ok = not pd.isna(r.converged) and bool(r.converged)
        rows.append([table_name(r.table, names), r.column, r.term, r.quantity, _f(r.estimate, 3),
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


def csv_table(path: Path, key: str) -> Table:
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


# --------------------------------------------------------------------------- formatting


def _f(x, digits: int) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.{digits}f}"


def _ci(lo, hi) -> str:
    return "–" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]"


def _cell(v) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4g}"
    return "–" if v is None else str(v)
