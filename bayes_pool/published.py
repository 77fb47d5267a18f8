"""The published numbers of each study, read from package data with table/column/row provenance.

Each study folder holds a ``published.csv`` ledger typed in from the paper's text: one row per
printed number, with the table, the column label, the row label exactly as printed, the canonical
variable name (``term``), what the number is (``quantity``), the significance stars as printed and a
``flag`` (``contradiction``) where the paper contradicts itself. When it does, both printed values
are kept as separate flagged rows and ``note`` says which cell each one contradicts.

Numbers are stored as printed (``0.090``, not ``0.09``) so the ledger can be checked against the
paper text; :func:`load_ledger` with ``as_printed=True`` returns them as those strings.

Two views:

* :func:`load_published` -- rows of the one estimates table (:mod:`bayes_pool.estimates`,
  ``source="published"``), ready to join with frequentist and Bayesian rows. The printed row label,
  stars and flag are folded into ``note``.
* :func:`load_ledger` -- the raw ledger with its provenance columns, for reports and for listing
  the contradictions (:func:`contradictions`).

A user's own ledger (any paper, ``bayes-pool did/psm/mediate --published FILE``) has the same
columns and one study id: :func:`read_ledger` checks it (errors name the column) and
:func:`read_published` gives its rows labelled with the analysis's study label.

Code that needs a published number (a synthetic generator's calibration target, a test's
expected value) reads it from the ledger rather than typing it in again:
:func:`published_value` returns one cell, :func:`published_table` one quantity of a table as a
term x column frame. Both read a cached copy of the ledger, so repeated look-ups are cheap.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import pandas as pd

from bayes_pool.errors import InputError
from bayes_pool.estimates import frame

LEDGER_COLUMNS: list[str] = [
    "study", "table", "column", "row", "term", "quantity", "estimate", "se", "ci_low",
    "ci_high", "p_value", "n_obs", "stars", "flag", "note",
]
"""Column order of a ``published.csv`` ledger."""

LEDGER_NUMERIC: list[str] = ["estimate", "se", "ci_low", "ci_high", "p_value", "n_obs"]
"""Ledger columns holding numbers (stored as printed; empty when the paper prints none)."""

FLAGS: tuple[str, ...] = ("", "contradiction")
"""Allowed values of the ``flag`` column."""

LEDGER_FILE = "published.csv"


STUDIES_FOLDER = "studies"
"""The package folder whose subfolders hold the studies, one per study id."""


def _study_folders():
    """The study folders of the package that hold a ledger."""
    root = resources.files("bayes_pool").joinpath(STUDIES_FOLDER)
    return sorted((f for f in root.iterdir() if f.joinpath(LEDGER_FILE).is_file()),
                  key=lambda f: f.name)


def study_ids() -> list[str]:
    """The ids of the studies that ship a ledger (folder ``a_b`` is id ``a-b``)."""
    return [f.name.replace("_", "-") for f in _study_folders()]


def ledger_path(study: str):
    """Location of a study's ledger inside the installed package.

    The ledger of study ``a-b`` is ``bayes_pool/studies/a_b/published.csv`` (package data, so
    it works from a wheel too); the study's record (:class:`bayes_pool.study_record.Study`)
    holds the same path as ``published``.

    Raises
    ------
    ValueError
        For an id with no ledger, listing the ids that have one.
    """
    if not isinstance(study, str) or study not in study_ids():
        raise ValueError(f"unknown study {study!r}; valid study ids: {study_ids()}")
    return resources.files("bayes_pool").joinpath(STUDIES_FOLDER, study.replace("-", "_"),
                                                  LEDGER_FILE)


def load_ledger(study: str, *, as_printed: bool = False) -> pd.DataFrame:
    """Read a study's ledger of published numbers with its provenance columns.

    Parameters
    ----------
    study
        Study id, one of :func:`study_ids`.
    as_printed
        If True, keep every cell as the string typed in from the paper (``"0.090"``), which is what
        a check against the paper text needs. If False (default), the numeric columns
        (:data:`LEDGER_NUMERIC`) are floats, with NaN where the paper prints nothing.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LEDGER_COLUMNS`, one row per printed number, in ledger order.

    Raises
    ------
    ValueError
        For an unknown study id, or a ledger whose header, study column or flags are malformed
        (the message names the offending column and rows).
    """
    path = ledger_path(study)
    with path.open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    try:
        return _checked(df, as_printed=as_printed, study=study)
    except InputError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _checked(df: pd.DataFrame, *, as_printed: bool, study: str | None = None) -> pd.DataFrame:
    """A ledger read as strings, checked (header, one study id, flags, numbers) and, unless
    ``as_printed``, with its numeric columns as floats; :class:`InputError` names the column."""
    if list(df.columns) != LEDGER_COLUMNS:
        missing = [c for c in LEDGER_COLUMNS if c not in df.columns]
        extra = [c for c in df.columns if c not in LEDGER_COLUMNS]
        raise InputError(f"columns {list(df.columns)}; expected {LEDGER_COLUMNS} in that order"
                         + (f" (missing {missing})" if missing else "")
                         + (f" (unknown {extra})" if extra else ""))
    if study is not None:
        wrong = df.index[df["study"] != study].tolist()
        if wrong:
            raise InputError(f"column 'study' is not {study!r} in rows {wrong[:10]}")
    elif df["study"].nunique() > 1 or (df["study"] == "").any():
        raise InputError(f"column 'study' must hold one study id in every row, got "
                         f"{sorted(set(df['study']))}")
    for col in ["table", "column", "term", "quantity"]:
        empty = df.index[df[col].str.strip() == ""].tolist()
        if empty:
            raise InputError(f"column {col!r} is empty in rows {empty[:10]}: every ledger row "
                             "needs its table, column, term and quantity (the comparison's keys)")
    dup = df.index[df.duplicated(["table", "column", "term", "quantity", "flag"],
                                 keep=False) & (df["flag"] == "")].tolist()
    if study is None and dup:
        raise InputError(f"rows {dup[:10]} repeat the same (table, column, term, quantity); "
                         "keep one, or flag both 'contradiction' if the paper prints two values")
    bad_flag = df.index[~df["flag"].isin(FLAGS)].tolist()
    if bad_flag:
        raise InputError(
            f"column 'flag' has values {sorted(set(df.loc[bad_flag, 'flag']))} "
            f"in {len(bad_flag)} rows; allowed: {list(FLAGS)}"
        )
    if as_printed:
        return df
    for col in LEDGER_NUMERIC:
        num = pd.to_numeric(df[col].replace("", None), errors="coerce")
        bad = df.index[num.isna() & (df[col] != "")].tolist()
        if bad:
            raise InputError(
                f"column {col!r} is not numeric in {len(bad)} rows "
                f"(values {df.loc[bad[:5], col].tolist()}, rows {bad[:5]})"
            )
        df[col] = num.astype(float)
    return df


def read_ledger(path: str | Path, *, as_printed: bool = False) -> pd.DataFrame:
    """A user's ledger file (the columns of ``studies/*/published.csv``, one study id in
    column ``study``), checked as :func:`load_ledger` checks the shipped ones.

    Raises :class:`InputError` naming the file and the offending column.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"published ledger {path}: cannot be read as CSV ({exc})") from None
    try:
        return _checked(df, as_printed=as_printed)
    except InputError as exc:
        raise InputError(f"published ledger {path}: {exc}") from None


def _note(rec: pd.Series) -> str:
    """Fold the ledger's provenance (row label, stars, flag) and its note into one note string."""
    parts = [f"row: {rec['row']}"]
    if rec["stars"]:
        parts.append(f"stars: {rec['stars']}")
    if rec["flag"]:
        parts.append(f"flag: {rec['flag']}")
    if rec["note"]:
        parts.append(rec["note"])
    return "; ".join(parts)


def load_published(study: str) -> pd.DataFrame:
    """The published numbers of ``study`` (one of :func:`study_ids`) as rows of the
    estimates table (columns ``estimates.COLUMNS + estimates.DIAGNOSTIC_COLUMNS``, the
    diagnostics empty).

    Every ledger row is kept (flagged contradictions included, so both printed values sit beside
    the replications); ``source`` is ``"published"`` and the printed row label, stars and flag go
    into ``note`` as ``"row: ...; stars: **; flag: contradiction; <note>"``.
    """
    return _rows(load_ledger(study))


def read_published(path: str | Path, *, study: str) -> pd.DataFrame:
    """A user's ledger file (:func:`read_ledger`) as published rows of the estimates table,
    labelled ``study`` (the analysis's own label, e.g. ``did``) so that they join its rows
    in :func:`bayes_pool.compare.comparison`; the ledger's own study id goes into ``note``."""
    ledger = read_ledger(path)
    rows = _rows(ledger)
    rows["note"] = [f"ledger {ledger_id} ({Path(path).name}); {note}"
                    for ledger_id, note in zip(ledger["study"], rows["note"])]
    rows["study"] = study
    return rows


def with_ledger(table: pd.DataFrame, rows: pd.DataFrame, path: str | Path
                ) -> tuple[pd.DataFrame, dict]:
    """``table`` with the ledger ``rows`` (:func:`read_published`) first, and the facts for
    the manifest: the ledger, its row count and the rows no fitted row answers (no
    frequentist or Bayesian row with the same keys), listed as ``table / column / term /
    quantity``: what the run's ``--table``/``--column`` labels or terms do not match."""
    from bayes_pool.estimates import concat
    keys = ["study", "table", "column", "term", "quantity"]
    out = concat(rows, table)
    fitted = out[out["source"] != "published"][keys].drop_duplicates()
    left = rows[keys].drop_duplicates().merge(fitted, on=keys, how="left", indicator=True)
    missing = left[left["_merge"] == "left_only"][keys[1:]]
    return out, {"ledger": str(Path(path).resolve()), "rows": len(rows),
                 "answered": len(rows) - len(missing),
                 "unanswered": [" / ".join(r) for r in missing.itertuples(index=False)]}


def _rows(ledger: pd.DataFrame) -> pd.DataFrame:
    rows = ledger[["study", "table", "column", "term", "quantity", "estimate", "se", "ci_low",
                   "ci_high", "p_value", "n_obs"]].copy()
    rows["source"] = "published"
    rows["note"] = ledger.apply(_note, axis=1) if len(ledger) else pd.Series(dtype=str)
    return frame(rows)


def contradictions(study: str) -> pd.DataFrame:
    """The ledger rows of ``study`` (one of :func:`study_ids`) flagged ``contradiction``:
    numbers on which the paper contradicts itself (columns :data:`LEDGER_COLUMNS`; each
    ``note`` names the cell that the row contradicts)."""
    ledger = load_ledger(study)
    return ledger[ledger["flag"] == "contradiction"].reset_index(drop=True)


@functools.cache
def _cached_ledger(study: str) -> pd.DataFrame:
    """The numeric ledger of ``study``, read once per process (callers must not mutate it)."""
    return load_ledger(study)


def published_value(study: str, table: str, column: str, term: str, quantity: str, *,
                    field: str = "estimate") -> float:
    """One published number, located by its ledger key.

    Parameters
    ----------
    study
        Study id, one of :func:`study_ids`.
    table, column, term, quantity
        The ledger key: table as printed (``"3"``, ``"text"``, ``"abstract"``), column label,
        canonical variable name and what the number is (``"beta"``, ``"mean"``, ``"sd"`` ...).
    field
        Which numeric ledger column to return (:data:`LEDGER_NUMERIC`); default ``"estimate"``.

    Returns
    -------
    float
        The number (NaN if the paper prints none in that field). A row flagged
        ``contradiction`` is returned like any other: the caller picks the cell it means.

    Raises
    ------
    ValueError
        If ``field`` is not numeric, or the key matches no row or more than one row.
    """
    if field not in LEDGER_NUMERIC:
        raise ValueError(f"field {field!r} is not a numeric ledger column; use one of "
                         f"{LEDGER_NUMERIC}")
    return ledger_value(_cached_ledger(study), table, column, term, quantity, field=field,
                        where=f"{study} ledger")


def ledger_value(ledger: pd.DataFrame, table: str, column: str, term: str, quantity: str, *,
                 field: str = "estimate", where: str = "ledger") -> float:
    """One number of a numeric ledger frame by its key (see :func:`published_value`)."""
    rows = ledger[(ledger["table"] == table) & (ledger["column"] == column)
                  & (ledger["term"] == term) & (ledger["quantity"] == quantity)]
    if len(rows) != 1:
        raise ValueError(
            f"{where} has {len(rows)} rows for table {table!r}, column {column!r}, "
            f"term {term!r}, quantity {quantity!r}; expected exactly 1"
        )
    return float(rows[field].iloc[0])


def published_table(study: str, table: str, quantity: str, *,
                    field: str = "estimate") -> pd.DataFrame:
    """One quantity of one published table as a frame: a row per term, a column per column label.

    Parameters
    ----------
    study
        Study id, one of :func:`study_ids`.
    table
        Table as printed in the ledger (``"1"``, ``"2"`` ...).
    quantity
        What the numbers are (``"mean"``, ``"sd"``, ``"beta"``, ``"pct"`` ...).
    field
        Which numeric ledger column to tabulate; default ``"estimate"``.

    Returns
    -------
    pandas.DataFrame
        Index ``term`` and columns ``column`` (each in ledger order of first appearance, which is
        the paper's printed order), floats with NaN where the paper prints no such cell.

    Raises
    ------
    ValueError
        If ``field`` is not numeric, nothing matches, or a (term, column) cell has more than one
        ledger row.
    """
    if field not in LEDGER_NUMERIC:
        raise ValueError(f"field {field!r} is not a numeric ledger column; use one of "
                         f"{LEDGER_NUMERIC}")
    ledger = _cached_ledger(study)
    rows = ledger[(ledger["table"] == table) & (ledger["quantity"] == quantity)]
    if rows.empty:
        raise ValueError(f"{study} ledger has no rows for table {table!r}, quantity {quantity!r}")
    dup = rows[rows.duplicated(["term", "column"], keep=False)]
    if len(dup):
        raise ValueError(
            f"{study} ledger, table {table!r}, quantity {quantity!r}: more than one row for "
            f"(term, column) {sorted(set(zip(dup['term'], dup['column'])))}"
        )
    wide = rows.pivot(index="term", columns="column", values=field)
    out = wide.reindex(index=rows["term"].unique(), columns=rows["column"].unique())
    out.index.name, out.columns.name = "term", "column"
    return out.astype(float)
