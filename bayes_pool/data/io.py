"""Read survey tables from disk, keeping value labels, and fingerprint the data.

Survey microdata arrive as Stata (``.dta``) or SPSS (``.sav``) files whose codes carry value
labels ("1 = very healthy ..."); synthetic data and user exports arrive as ``.csv`` or
``.parquet``. :func:`read_table` reads all four into one :class:`RawData` record, so the
mapping layer can recode by label, and turns every read failure into an
:class:`~bayes_pool.errors.InputError` that names the file and what to do.
:func:`fingerprint` gives the sha256 of the data that a run manifest records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from bayes_pool.errors import InputError

FormatName = Literal["csv", "parquet", "dta", "sav"]
SUPPORTED_FORMATS: dict[str, FormatName] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".dta": "dta",
    ".sav": "sav",
}


@dataclass(frozen=True, eq=False)
class RawData:
    """A table as read from disk, before any mapping.

    Attributes
    ----------
    frame : pandas.DataFrame
        The data with the file's own (raw) column names and codes.
    value_labels : dict[str, dict]
        ``column -> {code: label}`` from Stata/SPSS value labels; empty for csv/parquet.
    path : pathlib.Path
        Where the data came from.
    format : str
        One of ``"csv"``, ``"parquet"``, ``"dta"``, ``"sav"``.
    """

    frame: pd.DataFrame
    value_labels: dict[str, dict] = field(default_factory=dict)
    path: Path = Path()
    format: str = "csv"


def read_table(path: str | Path, *, encoding: str | None = None) -> RawData:
    """Read a ``.csv``, ``.parquet``, ``.dta`` or ``.sav`` file into a :class:`RawData`.

    Stata and SPSS files are read with pyreadstat, keeping codes as numbers (labels are not
    applied) and ``meta.variable_value_labels`` in :attr:`RawData.value_labels`, so recodes can
    be written either by code or by label. SPSS user-defined missing values become NaN
    (pyreadstat's default).

    Parameters
    ----------
    path : str or pathlib.Path
        File to read; the format is chosen by the extension (case-insensitive).
    encoding : str, optional
        Text encoding for csv, dta and sav, e.g. ``"gbk"`` for older Chinese Stata files.
        By default pandas/pyreadstat detect it.

    Returns
    -------
    RawData

    Raises
    ------
    bayes_pool.errors.InputError
        Unknown extension, missing or empty file, a file with no rows, or a file that cannot
        be parsed (truncated, corrupt, wrong format or encoding).
    """
    path = Path(path)
    fmt = SUPPORTED_FORMATS.get(path.suffix.lower())
    if fmt is None:
        valid = ", ".join(sorted(SUPPORTED_FORMATS))
        raise InputError(
            f"Cannot read '{path}': unknown file type '{path.suffix or '(no extension)'}'. "
            f"Supported types: {valid}. Export the data to one of them (e.g. Stata .dta)."
        )
    if not path.exists():
        raise InputError(
            f"Data file '{path}' does not exist. Check the path (relative paths are taken "
            f"from the current directory '{Path.cwd()}')."
        )
    if not path.is_file():
        raise InputError(f"'{path}' is not a file. Point to the data file itself.")
    if path.stat().st_size == 0:
        raise InputError(f"Data file '{path}' is empty (0 bytes). Re-export or re-download it.")

    try:
        frame, labels = _READERS[fmt](path, encoding)
    except InputError:
        raise
    except Exception as exc:  # pyreadstat/pyarrow/pandas raise many unrelated classes
        hint = (
            "The file may be truncated or corrupt, or not really a "
            f"{fmt} file; re-export or re-download it."
        )
        if isinstance(exc, UnicodeDecodeError) or "encod" in str(exc).lower():
            hint += " If the text is not UTF-8, pass an encoding (e.g. encoding='gbk')."
        raise InputError(
            f"Cannot read '{path}' as {fmt}: {type(exc).__name__}: {exc}. {hint}"
        ) from exc

    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise InputError(
            f"Data file '{path}' has no data ({frame.shape[0]} rows, {frame.shape[1]} columns). "
            "Check that the export wrote the data, not only the header."
        )
    return RawData(frame=frame, value_labels=labels, path=path, format=fmt)


def _read_csv(path: Path, encoding: str | None) -> tuple[pd.DataFrame, dict]:
    try:
        return pd.read_csv(path, encoding=encoding), {}
    except pd.errors.EmptyDataError as exc:
        raise InputError(
            f"Data file '{path}' has no columns (empty csv). Re-export it with a header row."
        ) from exc


def _read_parquet(path: Path, encoding: str | None) -> tuple[pd.DataFrame, dict]:
    return pd.read_parquet(path), {}


def _read_dta(path: Path, encoding: str | None) -> tuple[pd.DataFrame, dict]:
    import pyreadstat

    frame, meta = pyreadstat.read_dta(str(path), encoding=encoding)
    return frame, dict(meta.variable_value_labels)


def _read_sav(path: Path, encoding: str | None) -> tuple[pd.DataFrame, dict]:
    import pyreadstat

    frame, meta = pyreadstat.read_sav(str(path), encoding=encoding)
    return frame, dict(meta.variable_value_labels)


_READERS = {"csv": _read_csv, "parquet": _read_parquet, "dta": _read_dta, "sav": _read_sav}


def fingerprint(frame: pd.DataFrame) -> str:
    """Return the sha256 (hex) of a frame's column names, dtypes and values.

    The same data give the same fingerprint in every run and on every machine (pandas'
    row hashes use a fixed key); changing one cell, a column name, a dtype or the row order
    changes it. The index is ignored. Run manifests record it so a result can be tied to the
    exact data it came from without storing the data.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    digest = hashlib.sha256()
    header = {
        "columns": [str(c) for c in frame.columns],
        "dtypes": [str(t) for t in frame.dtypes],
        "n_rows": int(frame.shape[0]),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    if frame.shape[0] and frame.shape[1]:
        rows = pd.util.hash_pandas_object(frame, index=False)
        digest.update(rows.to_numpy(dtype="uint64").tobytes())
    return digest.hexdigest()
