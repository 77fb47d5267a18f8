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
