"""The one long estimates table that every analysis returns.

A published table read from file, a frequentist fit and a posterior all yield rows with the
same columns, so comparing with the paper is a join and a report is a pivot. This module is
plain data: it imports no model.

For a posterior, ``se`` is the posterior SD and ``ci_low``/``ci_high`` the 95% equal-tailed
interval (:data:`CI_PROB`), to sit beside the published 95% CIs.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

CI_PROB: float = 0.95
"""Interval probability used everywhere (ArviZ 1.x defaults to 0.89, so it is always passed)."""

COLUMNS: list[str] = [
    "study", "table", "column", "term", "quantity", "source",
    "estimate", "se", "ci_low", "ci_high", "p_value", "n_obs", "note",
]
"""Column order of the estimates table (DESIGN.md)."""

DIAGNOSTIC_COLUMNS: list[str] = ["r_hat", "ess_bulk", "ess_tail", "divergences", "converged"]
"""Extra columns a posterior row carries; empty for published and frequentist rows."""

Source = Literal["published", "frequentist", "bayesian"]
SOURCES: tuple[str, ...] = ("published", "frequentist", "bayesian")

_NUMERIC = ["estimate", "se", "ci_low", "ci_high", "p_value", "n_obs",
            "r_hat", "ess_bulk", "ess_tail", "divergences"]


def row(
    *, study: str, table: str, column: str, term: str, quantity: str, source: Source,
    estimate: float, se: float = np.nan, ci_low: float = np.nan, ci_high: float = np.nan,
    p_value: float = np.nan, n_obs: float = np.nan, note: str = "", **diagnostics,
) -> dict:
    """One row of the estimates table as a dict (diagnostics only for posterior rows)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
    out = dict(study=study, table=table, column=column, term=term, quantity=quantity,
               source=source, estimate=estimate, se=se, ci_low=ci_low, ci_high=ci_high,
               p_value=p_value, n_obs=n_obs, note=note)
    unknown = set(diagnostics) - set(DIAGNOSTIC_COLUMNS)
    if unknown:
        raise ValueError(f"unknown diagnostic columns {sorted(unknown)}; valid: {DIAGNOSTIC_COLUMNS}")
    out.update(diagnostics)
    return out


def frame(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Build a tidy estimates table with the fixed column order and dtypes."""
    df = pd.DataFrame(rows)
    for col in COLUMNS + DIAGNOSTIC_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan if col in _NUMERIC else ("" if col != "converged" else pd.NA)
    extra = [c for c in df.columns if c not in COLUMNS + DIAGNOSTIC_COLUMNS]
    if extra:
        raise ValueError(f"estimates table got unknown columns {extra}; valid: {COLUMNS + DIAGNOSTIC_COLUMNS}")
    df = df[COLUMNS + DIAGNOSTIC_COLUMNS]
    for col in _NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in ["study", "table", "column", "term", "quantity", "source", "note"]:
        df[col] = df[col].fillna("").astype(str)
    df["converged"] = df["converged"].astype("boolean")
    return df.reset_index(drop=True)


def concat(*tables: pd.DataFrame) -> pd.DataFrame:
    """Stack estimates tables, keeping the fixed column order."""
    parts = [t for t in tables if t is not None and len(t)]
    return frame(pd.concat(parts, ignore_index=True)) if parts else frame([])


def write_csv(df: pd.DataFrame, path) -> None:
    """Write the table deterministically (fixed float format) so equal runs give equal bytes."""
    frame(df).to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


def read_csv(path) -> pd.DataFrame:
    """Read a table written by :func:`write_csv`, with its text columns as text (pandas would
    otherwise read the table "3" back as the integer 3, and ``table == "3"`` match nothing)."""
    text = {c: str for c in ("study", "table", "column", "term", "quantity", "source", "note")}
    return frame(pd.read_csv(path, dtype=text))


# ---- convergence, judged from the diagnostic columns ------------------------------------------

CRITERIA: dict[str, tuple[str, str]] = {
    "max_r_hat": ("r_hat", "le"),
    "min_ess_bulk": ("ess_bulk", "ge"),
    "min_ess_tail": ("ess_tail", "ge"),
    "max_divergences": ("divergences", "le"),
}
"""Convergence thresholds (the fields of :class:`bayes_pool.specs.Convergence`) and the
diagnostic column each one bounds: ``le`` an upper, ``ge`` a lower bound."""

NOT_CONVERGED = "NOT CONVERGED ("
"""How the flag a failing posterior row carries in its note begins (written for people; the
verdict itself is the ``converged`` column)."""


def _limits(thresholds) -> dict:
    """``thresholds`` (a mapping or a dataclass such as ``Convergence``) as a dict of the
    :data:`CRITERIA` it sets; unknown keys raise."""
    from dataclasses import asdict, is_dataclass
    limits = dict(asdict(thresholds) if is_dataclass(thresholds) else thresholds)
    unknown = sorted(set(limits) - set(CRITERIA))
    if unknown:
        raise ValueError(f"unknown convergence threshold(s) {unknown}; valid: {list(CRITERIA)}")
    return {k: v for k, v in limits.items() if v is not None}


def has_mcmc_diagnostics(table: pd.DataFrame) -> pd.Series:
    """True for posterior rows with a verdict and MCMC diagnostics to judge it by (R-hat or
    ESS); a Laplace approximation's rows have none and keep their own verdict."""
    mcmc = table[["r_hat", "ess_bulk", "ess_tail"]].notna().any(axis=1)
    return (table["source"] == "bayesian") & table["converged"].notna() & mcmc


def meets(table: pd.DataFrame, thresholds) -> pd.Series:
    """True for the rows whose diagnostic columns meet every threshold given (a missing value
    fails); with no thresholds every row meets them."""
    ok = pd.Series(True, index=table.index)
    for key, value in _limits(thresholds).items():
        col, side = CRITERIA[key]
        ok &= (table[col] <= value if side == "le" else table[col] >= value).fillna(False)
    return ok


def converged(table: pd.DataFrame, thresholds) -> pd.Series:
    """The convergence verdict of every row under ``thresholds``, from the columns ``r_hat``,
    ``ess_bulk``, ``ess_tail`` and ``divergences`` alone (never the note).

    Posterior rows with MCMC diagnostics pass when they meet every threshold given; posterior
    rows without them (Laplace) keep their recorded verdict; published and frequentist rows
    get ``<NA>``. Returns a nullable boolean Series aligned with ``table``.
    """
    verdict = table["converged"].astype("boolean").copy()
    verdict[table["source"] != "bayesian"] = pd.NA
    judged = has_mcmc_diagnostics(table)
    verdict[judged] = meets(table[judged], thresholds)
    return verdict


def rejudge(table: pd.DataFrame, overrides, base) -> pd.DataFrame:
    """The table with its posterior rows re-judged against thresholds set after the fit.

    Analyses judge their rows by their own spec's thresholds (some scale the ESS minima, e.g.
    thinned matching draws). A row that passed its own thresholds passes now if it meets the
    ``overrides``; a row that failed passes now only if it meets the ``overrides`` and ``base``
    (the run's spec thresholds) for the criteria not overridden. Rows without MCMC diagnostics
    keep their verdict. The ``NOT CONVERGED`` flag in the notes is rewritten to match.
    """
    overrides = _limits(overrides)
    if not overrides:
        return table
    limits = {**_limits(base), **overrides}
    rest = {k: v for k, v in limits.items() if k not in overrides}
    out = table.copy()
    rows = has_mcmc_diagnostics(out)
    d = out.loc[rows]
    new = converged(d, overrides) & (d["converged"].astype("boolean") | converged(d, rest))
    flag = (f"{NOT_CONVERGED}fails R-hat <= {limits['max_r_hat']:g}, ESS bulk >= "
            f"{limits['min_ess_bulk']:g}, ESS tail >= {limits['min_ess_tail']:g} or divergences "
            f"<= {limits['max_divergences']:g})")
    notes = []
    for note, ok in zip(d["note"], new, strict=True):
        kept = [p for p in (x.strip() for x in note.split(";"))
                if p and not p.startswith(NOT_CONVERGED)]
        notes.append("; ".join(kept + ([] if ok else [flag])))
    out.loc[rows, "converged"] = new.to_numpy()
    out.loc[rows, "note"] = notes
    out["converged"] = out["converged"].astype("boolean")
    return out
