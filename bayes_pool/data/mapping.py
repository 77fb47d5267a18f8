"""Column mapping: turn a user's raw survey columns into the canonical ones, declared in TOML.

Real survey files (CLDS, CMDS ...) name and code their variables in their own way. A mapping
file says which raw column is which canonical column and how it is recoded, so nothing about
a particular file is hidden in code and a reviewer can read every recode.

Format
------
All sections are optional; an empty file maps nothing and keeps every column as it is::

    description = "CLDS 2016 person file -> the study's contract"   # free text

    [columns]                  # canonical_name = "RAW_NAME"; renamed first
    self_rated_health = "qa301"
    province = "prov_hukou"
    annual_income = "I3a_1"

    [missing]                  # codes set to NaN before any recode
    codes = [-9, -8, -3, -2, -1]
    columns = ["self_rated_health", "annual_income"]   # optional; default: all of [columns]
                                                        # (every column if there is none)

    [[recode]]                 # applied in order, after renaming and [missing]
    target = "healthy"         # new or overwritten canonical column
    source = "self_rated_health"
    kind = "map"               # by code; TOML keys are text, "1" matches the number 1
    map = { 1 = 1, 2 = 1, 3 = 0, 4 = 0, 5 = 0 }
    missing = [98, 99]         # optional: more codes set to NaN for this recode only
    default = nan              # optional: value for codes not in `map` (else an error)

    [[recode]]
    target = "healthy"
    source = "self_rated_health"
    kind = "label_map"         # by value label (.dta/.sav), case- and space-insensitive;
    map = { "very healthy" = 1, "healthy" = 1, "average" = 0 }   # text columns match by value

    [[recode]]
    target = "log_income"
    source = "annual_income"
    kind = "log"               # natural log of (value + offset); offset defaults to 0
    offset = 1                 # value + offset <= 0 is an error naming the rows

    [[recode]]
    target = "born_1980_or_later"
    source = "birth_year"
    kind = "threshold"         # 1 if value >= at (value > at when strict = true), else 0
    at = 1980
    strict = false

Every recode may carry ``note = "..."`` for the reader. Missing values (NaN) in the source stay
missing in the target. Unknown keys, unknown kinds, codes missing from a ``map`` (without
``default``) and raw columns that are not in the data raise
:class:`~bayes_pool.errors.MappingError` naming the column, the values and the rows.

Over 400 lines on purpose: the mapping file's parser and its application share the
``Recode`` record and the messages that name columns, values and rows.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from bayes_pool.data.io import RawData
from bayes_pool.data.validate import MAX_VALUES, _plural, format_values
from bayes_pool.errors import MappingError

RecodeKind = Literal["map", "label_map", "log", "threshold"]
RECODE_KINDS: tuple[str, ...] = get_args(RecodeKind)

_COMMON_KEYS = {"target", "source", "kind", "missing", "note"}
_KIND_KEYS: dict[str, set[str]] = {
    "map": {"map", "default"},
    "label_map": {"map", "default"},
    "log": {"offset"},
    "threshold": {"at", "strict"},
}
_REQUIRED_KIND_KEYS: dict[str, set[str]] = {
    "map": {"map"},
    "label_map": {"map"},
    "log": set(),
    "threshold": {"at"},
}
_TOP_LEVEL_KEYS = {"description", "columns", "missing", "recode"}


class _Unset:
    """Marker for "no default given" (TOML has no null, and ``nan`` is a valid default)."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Recode:
    """One ``[[recode]]`` entry: derive ``target`` from ``source``.

    ``map`` holds ``(key, value)`` pairs as written in the file (keys are text in TOML).
    """

    target: str
    source: str
    kind: RecodeKind
    # map / label_map
    map: tuple[tuple[Any, Any], ...] = ()
    default: Any = UNSET
    # log
    offset: float = 0.0
    # threshold
    at: float | None = None
    strict: bool = False
    # all kinds
    missing: tuple[Any, ...] = ()
    note: str = ""

    @property
    def has_default(self) -> bool:
        """Whether unmapped codes get ``default`` instead of raising."""
        return self.default is not UNSET


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file: renames, global missing codes, and ordered recodes.

    Build it with :meth:`from_toml` or :meth:`from_dict`; apply it with :func:`apply_mapping`.
    """

    columns: tuple[tuple[str, str], ...] = ()  # (canonical, raw) in file order
    recodes: tuple[Recode, ...] = ()
    missing_codes: tuple[Any, ...] = ()
    missing_columns: tuple[str, ...] | None = None  # None: every canonical column in `columns`
    description: str = ""
    source: str = "<dict>"  # where the mapping came from, for messages

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | Path) -> Mapping:
        """Read and check a mapping file (format in the module docstring)."""
        path = Path(path)
        if not path.is_file():
            raise MappingError(f"Mapping file '{path}' does not exist or is not a file.")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"Mapping file '{path}' is not valid TOML: {exc}.") from exc
        except UnicodeDecodeError as exc:
            raise MappingError(f"Mapping file '{path}' is not UTF-8 text: {exc}.") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "<dict>") -> Mapping:
        """Build a mapping from the dict a TOML file parses to, checking every key."""
        where = f"mapping '{source}'"
        if not isinstance(data, dict):
            raise MappingError(f"{where}: expected a table (dict), got {type(data).__name__}.")
        unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
        if unknown:
            raise MappingError(
                f"{where}: unknown top-level keys {unknown}; valid keys: "
                f"{sorted(_TOP_LEVEL_KEYS)} ([columns], [missing], [[recode]])."
            )
        description = data.get("description", "")
        if not isinstance(description, str):
            raise MappingError(f"{where}: `description` must be text.")

        raw_columns = data.get("columns", {})
        if not isinstance(raw_columns, dict):
            raise MappingError(f"{where}: [columns] must be a table of canonical = \"RAW\".")
        columns = []
        for canonical, raw in raw_columns.items():
            if not isinstance(raw, str) or not raw:
                raise MappingError(
                    f"{where}: [columns] {canonical} = {raw!r} must name a raw column as text, "
                    f'e.g. {canonical} = "qa301".'
                )
            columns.append((str(canonical), raw))

        missing = data.get("missing", {})
        if not isinstance(missing, dict):
            raise MappingError(f"{where}: [missing] must be a table with `codes = [...]`.")
        unknown = sorted(set(missing) - {"codes", "columns"})
        if unknown:
            raise MappingError(
                f"{where}: unknown keys {unknown} in [missing]; valid: ['codes', 'columns']."
            )
        missing_codes = _scalar_list(missing.get("codes", []), f"{where} [missing] codes")
        missing_columns = missing.get("columns")
        if missing_columns is not None:
            if not isinstance(missing_columns, list) or not all(
                isinstance(c, str) for c in missing_columns
            ):
                raise MappingError(f"{where}: [missing] columns must be a list of column names.")
            missing_columns = tuple(missing_columns)

        recodes_raw = data.get("recode", [])
        if not isinstance(recodes_raw, list):
            raise MappingError(f"{where}: recodes must be written as [[recode]] tables.")
        recodes = tuple(
            _parse_recode(entry, i, where) for i, entry in enumerate(recodes_raw, start=1)
        )
        return cls(
            columns=tuple(columns),
            recodes=recodes,
            missing_codes=tuple(missing_codes),
            missing_columns=missing_columns,
            description=description,
            source=source,
        )

    # ---- views ---------------------------------------------------------------------
    @property
    def column_map(self) -> dict[str, str]:
        """``{canonical: raw}`` as in ``[columns]``."""
        return dict(self.columns)

    def rename_labels(self, value_labels: dict[str, dict]) -> dict[str, dict]:
        """Key value labels by canonical names (raw columns that are not renamed keep theirs).

        Labels of a column that a recode overwrites are dropped, since its codes changed.
        """
        out = {c: dict(v) for c, v in _renamed_labels(value_labels, self).items()}
        for recode in self.recodes:
            out.pop(recode.target, None)
        return out


def _scalar_list(value: Any, where: str) -> list:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float | str) for v in value
    ):
        raise MappingError(f"{where}: expected a list of codes, e.g. [-9, -8], got {value!r}.")
    return value


def _parse_recode(entry: Any, number: int, where: str) -> Recode:
    """Check one [[recode]] table and turn it into a :class:`Recode`."""
    label = f"{where}, [[recode]] #{number}"
    if not isinstance(entry, dict):
        raise MappingError(f"{label}: expected a table, got {entry!r}.")
    if "target" in entry:
        label += f" (target '{entry['target']}')"
    kind = entry.get("kind")
    if kind not in RECODE_KINDS:
        raise MappingError(
            f"{label}: kind = {kind!r} is not a recode kind; valid kinds: "
            f"{sorted(RECODE_KINDS)}."
        )
    allowed = _COMMON_KEYS | _KIND_KEYS[kind]
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise MappingError(
            f"{label}: unknown keys {unknown} for kind '{kind}'; valid keys: {sorted(allowed)}."
        )
    needed = {"target", "source"} | _REQUIRED_KIND_KEYS[kind]
    absent = sorted(needed - set(entry))
    if absent:
        raise MappingError(f"{label}: kind '{kind}' needs {absent}.")
    for key in ("target", "source"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise MappingError(f"{label}: `{key}` must be a column name (text).")

    fields: dict[str, Any] = {
        "target": entry["target"],
        "source": entry["source"],
        "kind": kind,
        "missing": tuple(_scalar_list(entry.get("missing", []), f"{label} missing")),
        "note": str(entry.get("note", "")),
    }
    if kind in ("map", "label_map"):
        table = entry["map"]
        if not isinstance(table, dict) or not table:
            raise MappingError(f"{label}: `map` must be a non-empty table like {{ 1 = 1, 2 = 0 }}.")
        fields["map"] = tuple(table.items())
        if "default" in entry:
            fields["default"] = entry["default"]
    elif kind == "log":
        offset = entry.get("offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise MappingError(f"{label}: `offset` must be a number, got {offset!r}.")
        fields["offset"] = float(offset)
    elif kind == "threshold":
        at, strict = entry["at"], entry.get("strict", False)
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise MappingError(f"{label}: `at` must be a number, got {at!r}.")
        if not isinstance(strict, bool):
            raise MappingError(f"{label}: `strict` must be true or false, got {strict!r}.")
        fields["at"], fields["strict"] = at, strict
    return Recode(**fields)


# ---- applying a mapping ----------------------------------------------------------------


def apply_mapping(raw: RawData | pd.DataFrame, mapping: Mapping) -> pd.DataFrame:
    """Rename raw columns to canonical ones, set missing codes to NaN, then run the recodes.

    Columns the mapping does not mention are kept unchanged. The input is not modified.

    Parameters
    ----------
    raw : RawData or pandas.DataFrame
        The data as read; value labels (needed by ``label_map``) come from a :class:`RawData`.
    mapping : Mapping

    Returns
    -------
    pandas.DataFrame
        Renamed columns first (in ``[columns]`` order), then the untouched columns, then new
        recode targets.

    Raises
    ------
    bayes_pool.errors.MappingError
        A raw column is not in the data (close matches are listed), a canonical name clashes
        with an unmapped raw column, a recode's source is absent, a ``map`` misses codes that
        occur in the data, or a ``log`` meets values <= -offset.
    """
    if isinstance(raw, RawData):
        frame, labels, data_name = raw.frame, raw.value_labels, f"'{raw.path}'"
    else:
        frame, labels, data_name = raw, {}, "the data"
    where = f"mapping '{mapping.source}'"

    _check_raw_columns(frame, mapping, where, data_name)
    renamed = {raw_name for _, raw_name in mapping.columns}
    clashes = [
        c for c, r in mapping.columns if c != r and c in frame.columns and c not in renamed
    ]
    if clashes:
        raise MappingError(
            f"{where}: canonical names {clashes} are also raw columns in {data_name} that are "
            "not renamed, so the result would hold two columns of that name. Map the raw column "
            "to another name in [columns] or choose another canonical name."
        )

    mapped = {canonical: frame[raw_name] for canonical, raw_name in mapping.columns}
    rest = frame.drop(columns=[c for c in frame.columns if c in renamed and c not in mapped])
    rest = rest.drop(columns=[c for c in rest.columns if c in mapped])
    out = pd.concat([pd.DataFrame(mapped, index=frame.index), rest], axis=1).copy()
    labels = _renamed_labels(labels, mapping)

    if mapping.missing_codes:
        targets = (
            list(mapping.missing_columns)
            if mapping.missing_columns is not None
            else [c for c, _ in mapping.columns] or list(out.columns)
        )
        absent = [c for c in targets if c not in out.columns]
        if absent:
            raise MappingError(
                f"{where}: [missing] columns {absent} are not columns after renaming; "
                f"{_suggest(absent[0], out.columns)}"
            )
        for col in targets:
            out[col] = _set_missing(out[col], mapping.missing_codes)

    for number, recode in enumerate(mapping.recodes, start=1):
        label = f"{where}, [[recode]] #{number} (target '{recode.target}', kind '{recode.kind}')"
        if recode.source not in out.columns:
            raise MappingError(
                f"{label}: source column '{recode.source}' does not exist at this point "
                f"(after renaming and earlier recodes). {_suggest(recode.source, out.columns)} "
                "Name it in [columns] or fix `source`."
            )
        series = out[recode.source]
        if recode.missing:
            series = _set_missing(series, recode.missing)
        out[recode.target] = _RECODERS[recode.kind](series, recode, labels, label)
        labels.pop(recode.target, None)
    return out


def _renamed_labels(labels: dict[str, dict], mapping: Mapping) -> dict[str, dict]:
    """Value labels keyed by canonical name, before any recode has run."""
    renamed = {raw for _, raw in mapping.columns}
    out = {c: v for c, v in labels.items() if c not in renamed}
    for canonical, raw_name in mapping.columns:
        if raw_name in labels:
            out[canonical] = labels[raw_name]
    return out


def _check_raw_columns(frame: pd.DataFrame, mapping: Mapping, where: str, data_name: str) -> None:
    """Raise one MappingError naming every raw column the mapping wants but the data lacks."""
    absent = [(c, r) for c, r in mapping.columns if r not in frame.columns]
    if not absent:
        return
    lines = [
        f"  - '{raw_name}' (for {canonical}): {_suggest(raw_name, frame.columns)}"
        for canonical, raw_name in absent
    ]
    present = ", ".join(repr(str(c)) for c in list(frame.columns)[:30])
    more = f", ... ({frame.shape[1] - 30} more)" if frame.shape[1] > 30 else ""
    raise MappingError(
        f"{where} names {len(absent)} raw column(s) that are not in {data_name}:\n"
        + "\n".join(lines)
        + f"\nColumns in the data: {present}{more}.\n"
        "Fix the names on the right-hand side of [columns] (raw names are case-sensitive)."
    )


def _suggest(name: str, candidates: Any) -> str:
    """'did you mean ...' from difflib, trying a case-insensitive exact match first."""
    names = [str(c) for c in candidates]
    exact = [c for c in names if c.lower() == name.lower()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    lowered = {c.lower(): c for c in names}
    close += [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3)]
    matches = list(dict.fromkeys(exact + close))[:3]
    if matches:
        return "did you mean " + " or ".join(repr(m) for m in matches) + "?"
    return "no close match in the data."


def _set_missing(series: pd.Series, codes: tuple | list) -> pd.Series:
    """Set listed codes to NaN (numeric codes match numerically, text codes as text)."""
    numeric = [c for c in codes if isinstance(c, int | float) and not isinstance(c, bool)]
    text = [c for c in codes if isinstance(c, str)]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        hit = series.isin(numeric)
    else:
        hit = series.isin(text + numeric)
    return series.mask(hit) if hit.any() else series


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _unmapped_error(
    label: str, series: pd.Series, bad: pd.Series, what: str, by_code: dict | None = None
) -> MappingError:
    """Name the column, the unmapped values (with their labels, if any) and the row count."""
    n_rows = int(bad.sum())
    values = format_values(series[bad])
    if by_code is not None:  # show each code with its label: 6 ('Refused')
        codes = sorted({float(v) for v in series[bad]})
        shown = [f"{_code(c)} ({by_code.get(c, 'no label')!r})" for c in codes[:MAX_VALUES]]
        more = [f"... ({len(codes) - MAX_VALUES} more distinct)"] if len(codes) > MAX_VALUES else []
        values = ", ".join(shown + more)
    return MappingError(
        f"{label}: column '{series.name}' has {what} not in `map`: {values} "
        f"({_plural(n_rows)}). Add them to `map`, declare them missing "
        "(`missing = [...]` in this recode or [missing] codes), or give a `default`."
    )


def _finish(result: pd.Series) -> pd.Series:
    """Give a recoded column a plain dtype: int when whole and complete, else float/object."""
    result = result.infer_objects()
    if _is_numeric(result) and result.notna().all():
        as_float = result.astype(float)
        if np.all(np.mod(as_float, 1) == 0):
            return as_float.astype("int64")
    return result


def _recode_map(series: pd.Series, recode: Recode, labels: dict, label: str) -> pd.Series:
    if _is_numeric(series) or pd.api.types.is_bool_dtype(series):
        lookup = {}
        for key, value in recode.map:
            try:
                lookup[float(key)] = value
            except (TypeError, ValueError):
                raise MappingError(
                    f"{label}: key {key!r} in `map` is not a number, but column "
                    f"'{series.name}' holds numeric codes. Use kind = \"label_map\" to recode "
                    "by value label."
                ) from None
        keyed = series.astype(float)
    else:
        lookup = {str(key): value for key, value in recode.map}
        keyed = series.map(lambda v: v if pd.isna(v) else str(v))
    known = keyed.isin(list(lookup))
    bad = series.notna() & ~known
    if bad.any() and not recode.has_default:
        raise _unmapped_error(label, series, bad, "codes")
    result = keyed.map(lookup)
    if bad.any():
        result = result.astype(object).mask(bad, recode.default)
    return _finish(result.rename(recode.target))


def _norm_label(text: Any) -> str:
    return " ".join(str(text).split()).casefold()


def _recode_label_map(series: pd.Series, recode: Recode, labels: dict, label: str) -> pd.Series:
    lookup: dict[str, Any] = {}
    for key, value in recode.map:
        norm = _norm_label(key)
        if norm in lookup:
            raise MappingError(
                f"{label}: labels in `map` repeat after ignoring case and spaces: {key!r}."
            )
        lookup[norm] = value
    if _is_numeric(series):
        column_labels = labels.get(str(series.name))
        if not column_labels:
            raise MappingError(
                f"{label}: column '{series.name}' has no value labels (csv and parquet files "
                "carry none; only .dta/.sav do). Write this recode with kind = \"map\" by code."
            )
        by_code = {float(code): text for code, text in column_labels.items()}
        text = series.astype(float).map(by_code)
    else:
        text, by_code = series, None
    norm = text.map(lambda v: v if pd.isna(v) else _norm_label(v))
    bad = series.notna() & ~norm.isin(list(lookup))
    if bad.any() and not recode.has_default:
        raise _unmapped_error(label, series, bad, "labels", by_code)
    result = norm.map(lookup)
    if bad.any():
        result = result.astype(object).mask(bad, recode.default)
    return _finish(result.rename(recode.target))


def _code(value: Any) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _require_numeric(series: pd.Series, label: str) -> pd.Series:
    if _is_numeric(series):
        return series.astype(float)
    as_number = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & as_number.isna()
    if bad.any():
        raise MappingError(
            f"{label}: column '{series.name}' must be numeric but holds text "
            f"{format_values(series[bad])} ({_plural(int(bad.sum()))}). Recode the text first "
            "(kind = \"map\"/\"label_map\") or declare it missing."
        )
    return as_number.astype(float)


def _recode_log(series: pd.Series, recode: Recode, labels: dict, label: str) -> pd.Series:
    values = _require_numeric(series, label)
    shifted = values + recode.offset
    bad = values.notna() & (shifted <= 0)
    if bad.any():
        rows = ", ".join(str(r) for r in list(series.index[bad])[:10])
        more = " ..." if bad.sum() > 10 else ""
        raise MappingError(
            f"{label}: log needs '{series.name}' + offset ({recode.offset:g}) > 0; values "
            f"{format_values(series[bad])} break this in {_plural(int(bad.sum()))} "
            f"(index {rows}{more}). "
            "Raise `offset` (e.g. offset = 1 for zero incomes) or declare these codes missing."
        )
    return np.log(shifted).rename(recode.target)


def _recode_threshold(series: pd.Series, recode: Recode, labels: dict, label: str) -> pd.Series:
    values = _require_numeric(series, label)
    above = values > recode.at if recode.strict else values >= recode.at
    result = above.astype(float).mask(values.isna())
    return _finish(result.rename(recode.target))


_RECODERS = {
    "map": _recode_map,
    "label_map": _recode_label_map,
    "log": _recode_log,
    "threshold": _recode_threshold,
}


__all__ = ["RECODE_KINDS", "Mapping", "Recode", "RecodeKind", "apply_mapping"]
