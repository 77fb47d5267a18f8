"""Generic data layer: read a survey file, map it to canonical columns, check the contract.

Nothing here knows a particular study or imports a model: a study passes in its pandera
contract (built with :func:`binary`, :func:`codes`, :func:`int_range`, :func:`number`,
:func:`contract`) and the user passes a mapping file (format in :mod:`bayes_pool.data.mapping`).
:func:`load` is the one call the CLI makes; it raises
:class:`~bayes_pool.errors.InputError` or :class:`~bayes_pool.errors.MappingError` before
anything is written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from bayes_pool.data.io import SUPPORTED_FORMATS, RawData, fingerprint, read_table
from bayes_pool.data.mapping import RECODE_KINDS, Mapping, Recode, apply_mapping
from bayes_pool.data.validate import (
    binary,
    check_unique,
    codes,
    contract,
    format_values,
    int_range,
    number,
    validate,
)


@dataclass(frozen=True, eq=False)
class LoadedData:
    """Canonical, validated data with its provenance.

    Attributes
    ----------
    frame : pandas.DataFrame
        Data after mapping and validation.
    value_labels : dict[str, dict]
        ``column -> {code: label}`` keyed by canonical names (recoded columns have none).
    path : pathlib.Path
        The file read.
    format : str
        ``"csv"``, ``"parquet"``, ``"dta"`` or ``"sav"``.
    fingerprint : str
        sha256 of ``frame`` (:func:`fingerprint`), for the run manifest.
    mapping_source : str or None
        The mapping file used, if any.
    """

    frame: pd.DataFrame
    value_labels: dict[str, dict] = field(default_factory=dict)
    path: Path = Path()
    format: str = "csv"
    fingerprint: str = ""
    mapping_source: str | None = None

    def manifest(self) -> dict:
        """Provenance for ``manifest.json``: where the data came from, its size and hash."""
        return {
            "path": str(self.path),
            "format": self.format,
            "fingerprint": self.fingerprint,
            "n_rows": int(self.frame.shape[0]),
            "n_columns": int(self.frame.shape[1]),
            "mapping": self.mapping_source,
        }


def load(
    path: str | Path,
    *,
    schema: pa.DataFrameSchema | None = None,
    mapping: Mapping | str | Path | dict | None = None,
    required: list[str] | None = None,
    unique: str | None = None,
    encoding: str | None = None,
) -> LoadedData:
    """Read ``path``, apply ``mapping``, validate against ``schema`` and fingerprint the result.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv``, ``.parquet``, ``.dta`` or ``.sav`` file.
    schema : pandera.pandas.DataFrameSchema, optional
        The study's contract; skipped when None.
    mapping : Mapping, path to a TOML file, or dict, optional
        Renames and recodes; without it the columns are taken as already canonical.
    required : list of str, optional
        Columns that must be present beyond those the schema requires.
    unique : str, optional
        A respondent id column that must be present, complete and free of duplicates.
    encoding : str, optional
        Text encoding passed to the reader (e.g. ``"gbk"``).

    Returns
    -------
    LoadedData

    Raises
    ------
    bayes_pool.errors.InputError
        The file cannot be read or the data fail the contract.
    bayes_pool.errors.MappingError
        The mapping is malformed or does not fit the file.
    """
    raw = read_table(path, encoding=encoding)
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = (
            Mapping.from_dict(mapping) if isinstance(mapping, dict) else Mapping.from_toml(mapping)
        )
    if mapping is None:
        frame, labels = raw.frame.copy(), {c: dict(v) for c, v in raw.value_labels.items()}
    else:
        frame, labels = apply_mapping(raw, mapping), mapping.rename_labels(raw.value_labels)
    if schema is not None or required:
        frame = validate(
            frame, schema if schema is not None else pa.DataFrameSchema({}),
            required=required, source=str(raw.path),
        )
    if unique is not None:
        check_unique(frame, unique, source=str(raw.path))
    return LoadedData(
        frame=frame,
        value_labels=labels,
        path=raw.path,
        format=raw.format,
        fingerprint=fingerprint(frame),
        mapping_source=None if mapping is None else mapping.source,
    )


__all__ = [
    "RECODE_KINDS",
    "SUPPORTED_FORMATS",
    "LoadedData",
    "Mapping",
    "RawData",
    "Recode",
    "apply_mapping",
    "binary",
    "check_unique",
    "codes",
    "contract",
    "fingerprint",
    "format_values",
    "int_range",
    "load",
    "number",
    "read_table",
    "validate",
]
