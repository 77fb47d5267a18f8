"""Check a frame against a study's data contract and explain every failure in one error.

A study declares its contract as a pandera schema; the helpers here (:func:`binary`,
:func:`codes`, :func:`int_range`, :func:`number`, :func:`contract`) build the usual column
kinds the same way everywhere, so a contract reads as configuration::

    CONTRACT = contract(
        binary("healthy"),
        codes("hukou_type", [1, 2]),
        int_range("self_rated_health", 1, 5),
        number("log_income", nullable=True),
        number("age", 16, 110),
    )

:func:`validate` runs the schema lazily (all failures at once) and raises one
:class:`~bayes_pool.errors.InputError` that lists, per failing column, what was expected, up to
ten offending values, how many rows fail, and what to do.

Over 400 lines on purpose: the contract builders and the validator write and read the same
failure messages; the sections are formatting, builders and validation.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from bayes_pool.errors import InputError

MAX_VALUES = 10  # offending values shown per failing column
MAX_ROWS = 5  # row positions shown per failing column

_HINTS = {
    "missing": (
        "add the missing columns to your mapping file's [columns] section "
        '(canonical_name = "RAW_NAME") or derive them with a [[recode]].'
    ),
    "dtype": (
        "values do not fit the column's type (often text where numbers are expected): recode "
        "them in your mapping file's [[recode]] section (kind = \"map\" or \"label_map\"), "
        "declare non-response text missing, or fix the export."
    ),
    "value": (
        "map these codes in your mapping file's [[recode]] section (kind = \"map\"), declare "
        "non-response codes missing ([missing] codes = [...]), or fix the data."
    ),
    "null": (
        "this column may not hold missing values: drop or complete these rows before loading, "
        "and check that [missing] codes did not blank out valid answers."
    ),
    "error": "a check could not run on this column; fix its type or the check.",
    "unexpected": "drop these columns or add them to the contract.",
    "unique": "remove the duplicated rows or fix the identifiers.",
    "other": "see the check named above.",
}


# ---- formatting ----------------------------------------------------------------------


def format_values(values: Iterable[Any], limit: int = MAX_VALUES) -> str:
    """Render distinct non-missing values sorted (numbers before text), at most ``limit``.

    Whole floats print as integers (``2.0`` -> ``2``) because survey codes often become floats
    once a column holds NaN; text is quoted so ``'1'`` and ``1`` can be told apart.
    """
    distinct: dict[Any, None] = {}
    for value in values:
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            continue
        distinct.setdefault(value, None)

    def key(v: Any) -> tuple:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return (0, float(v), "")
        return (1, 0.0, str(v))

    ordered = sorted(distinct, key=key)
    shown = [_render(v) for v in ordered[:limit]]
    if len(ordered) > limit:
        shown.append(f"... ({len(ordered) - limit} more distinct)")
    return ", ".join(shown) if shown else "(none)"


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return repr(value) if isinstance(value, str) else str(value)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(n: int, word: str = "row") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ---- contract helpers ----------------------------------------------------------------


def _numeric_mask(series: pd.Series) -> pd.Series:
    """True where a value is a number; text that parses as numbers still fails (it is text)."""
    if pd.api.types.is_numeric_dtype(series):
        return pd.Series(True, index=series.index)
    parsed = pd.to_numeric(series, errors="coerce")
    ok = series.isna() | parsed.notna()
    if ok.all():  # numbers stored as text: every value is the problem
        ok = series.isna()
    return ok


def _numeric() -> pa.Check:
    return pa.Check(_numeric_mask, name="numeric", error="a number (numeric column)")


def _whole_in_range(series: pd.Series, lo: int, hi: int) -> pd.Series:
    return (series >= lo) & (series <= hi) & (np.mod(series, 1) == 0)


def binary(
    name: str, *, nullable: bool = False, required: bool = True, description: str | None = None
) -> pa.Column:
    """A 0/1 column (outcome, treatment, indicator)."""
    return pa.Column(
        None, [_numeric(), pa.Check.isin([0, 1])], nullable=nullable, required=required,
        name=name, description=description,
    )


def codes(
    name: str,
    values: Sequence[Any],
    *,
    nullable: bool = False,
    required: bool = True,
    description: str | None = None,
) -> pa.Column:
    """A categorical column whose codes must be one of ``values`` (numbers or text)."""
    values = list(values)
    checks = [pa.Check.isin(values)]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        checks.insert(0, _numeric())
    return pa.Column(
        None, checks, nullable=nullable, required=required, name=name, description=description
    )


def int_range(
    name: str,
    lo: int,
    hi: int,
    *,
    nullable: bool = False,
    required: bool = True,
    description: str | None = None,
) -> pa.Column:
    """An ordinal code that must be a whole number in ``lo..hi`` (e.g. a 1..5 Likert item)."""
    if lo > hi:
        raise ValueError(f"int_range({name!r}): lo={lo} is above hi={hi}.")
    in_range = pa.Check(
        functools.partial(_whole_in_range, lo=lo, hi=hi),
        name="int_range",
        error=f"a whole number in range {lo}..{hi}",
    )
    return pa.Column(
        None, [_numeric(), in_range], nullable=nullable, required=required, name=name,
        description=description,
    )


def number(
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    nullable: bool = False,
    required: bool = True,
    description: str | None = None,
) -> pa.Column:
    """A numeric column, optionally bounded (inclusive) below by ``lo`` and above by ``hi``."""
    checks = [_numeric()]
    if lo is not None and hi is not None:
        checks.append(pa.Check.in_range(lo, hi))
    elif lo is not None:
        checks.append(pa.Check.ge(lo))
    elif hi is not None:
        checks.append(pa.Check.le(hi))
    return pa.Column(
        None, checks, nullable=nullable, required=required, name=name, description=description
    )


def contract(
    *columns: pa.Column, strict: bool = False, name: str | None = None
) -> pa.DataFrameSchema:
    """Collect helper-built columns into a schema (extra columns are allowed unless ``strict``)."""
    unnamed = [c for c in columns if not c.name]
    if unnamed:
        raise ValueError("contract(): every column needs a name; build them with the helpers.")
    names = [c.name for c in columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"contract(): columns declared twice: {duplicated}.")
    return pa.DataFrameSchema({c.name: c for c in columns}, strict=strict, name=name)


# ---- validation ----------------------------------------------------------------------


def validate(
    frame: pd.DataFrame,
    schema: pa.DataFrameSchema,
    *,
    required: list[str] | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against ``schema`` and raise one readable error listing every failure.

    Parameters
    ----------
    frame : pandas.DataFrame
        Canonical data (after mapping). It is not modified.
    schema : pandera.pandas.DataFrameSchema
        The study's contract, typically built with :func:`contract`.
    required : list of str, optional
        Columns that must be present in addition to those the schema marks required, e.g.
        the optional mediators an analysis needs.
    source : str, optional
        What the data is (a path), named in the error message.

    Returns
    -------
    pandas.DataFrame
        The validated copy pandera returns (coerced where the schema asks for it).

    Raises
    ------
    bayes_pool.errors.InputError
        Missing columns (one error naming all of them, with close matches from the columns
        present), or failed checks: per column the expectation, up to ten offending values,
        the number of failing rows and a hint. The error's ``problems`` attribute holds the
        same information as a DataFrame.
    """
    where = f"'{source}'" if source else "the data"
    must = [c for c, col in schema.columns.items() if col.required and not col.regex]
    must = list(dict.fromkeys(must + list(required or [])))
    absent = [c for c in must if c not in frame.columns]
    if absent:
        raise InputError(_missing_message(absent, list(frame.columns), where))

    # Count failing rows by position, so a duplicated index cannot merge rows.
    work = frame.copy(deep=True)
    positional = schema.index is None
    if positional:
        work = work.reset_index(drop=True)
    try:
        result = schema.validate(work, lazy=True)
    except pa.errors.SchemaErrors as exc:
        problems = _problems(exc.failure_cases, work, schema)
        error = InputError(_message(problems, where, positional))
        error.problems = problems  # type: ignore[attr-defined]
        raise error from exc
    except pa.errors.SchemaError as exc:  # raised eagerly by some schema-level options
        raise InputError(f"{_cap(where)} failed the data contract: {exc}") from exc
    if positional:
        result.index = frame.index
    return result


def check_unique(frame: pd.DataFrame, column: str, *, source: str | None = None) -> None:
    """Raise :class:`InputError` when ``column`` (a respondent id) repeats or is missing.

    The message names the column, up to ten duplicated ids, how many rows share them and their
    row positions (0-based).
    """
    where = f"'{source}'" if source else "the data"
    if column not in frame.columns:
        raise InputError(_missing_message([column], list(frame.columns), where))
    ids = frame[column].reset_index(drop=True)
    n_na = int(ids.isna().sum())
    if n_na:
        raise InputError(
            f"{_cap(where)}: id column '{column}' has {_plural(n_na)} without an id. "
            f"What to do: {_HINTS['null']}"
        )
    dup = ids.duplicated(keep=False)
    if dup.any():
        values = ids[dup]
        positions = ", ".join(map(str, values.index[:MAX_ROWS]))
        more = ", ..." if len(values) > MAX_ROWS else ""
        raise InputError(
            f"{_cap(where)}: id column '{column}' must identify rows uniquely; "
            f"{_plural(int(dup.sum()))} share {values.nunique()} duplicated id(s): "
            f"{format_values(values)} (at row positions (0-based) {positions}{more}). "
            f"What to do: {_HINTS['unique']} A respondent listed twice is usually a merge "
            "or append error."
        )


def _missing_message(absent: list[str], present: list[Any], where: str) -> str:
    names = [str(c) for c in present]
    lines, close_all = [], []
    for col in absent:
        close = difflib.get_close_matches(col, names, n=3, cutoff=0.6)
        close_all += close
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        lines.append(f"  - '{col}'{hint}")
    ordered = list(dict.fromkeys(close_all + names))
    shown = ", ".join(repr(c) for c in ordered[:30])
    more = f", ... ({len(ordered) - 30} more)" if len(ordered) > 30 else ""
    return (
        f"{_cap(where)} lacks {len(absent)} required column(s):\n" + "\n".join(lines)
        + f"\nColumns present (closest first): {shown}{more}.\nWhat to do: {_HINTS['missing']}"
    )


def _expected(check: pa.Check | None, fallback: str) -> str:
    """Say in words what a pandera check wanted."""
    if check is None:
        return fallback
    stats = check.statistics or {}
    name = check.name
    if name == "isin":
        return f"isin [{format_values(stats.get('allowed_values', []), limit=20)}]"
    if name == "notin":
        return f"not in [{format_values(stats.get('forbidden_values', []), limit=20)}]"
    if name == "in_range":
        lo, hi = stats.get("min_value"), stats.get("max_value")
        text = f"in range {_render(lo)}..{_render(hi)}"
        if not stats.get("include_min", True) or not stats.get("include_max", True):
            text += " (bounds excluded)"
        return text
    symbols = {
        "greater_than_or_equal_to": (">=", "min_value"),
        "greater_than": (">", "min_value"),
        "less_than_or_equal_to": ("<=", "max_value"),
        "less_than": ("<", "max_value"),
        "equal_to": ("==", "value"),
        "not_equal_to": ("!=", "value"),
    }
    if name in symbols:
        symbol, key = symbols[name]
        return f"{symbol} {_render(stats.get(key))}"
    if name in ("str_matches", "str_contains"):
        return f"text matching {stats.get('pattern')!r}"
    return check.error or name or fallback


def _check_object(schema: pa.DataFrameSchema, column: Any, number: Any) -> pa.Check | None:
    if number is None or pd.isna(number):
        return None
    if column is None:
        checks = schema.checks
    elif column in schema.columns:
        checks = schema.columns[column].checks
    else:
        return None
    number = int(number)
    return checks[number] if 0 <= number < len(checks) else None


def _classify(check_name: str) -> str:
    if check_name == "column_in_dataframe":
        return "missing"
    if check_name == "not_nullable":
        return "null"
    if check_name.startswith(("coerce_dtype(", "dtype(")):
        return "dtype"
    if check_name == "column_in_schema":
        return "unexpected"
    if check_name in ("field_uniqueness", "multiple_fields_uniqueness", "dataframe_duplicates"):
        return "unique"
    return "value"


def _dtype_offenders(series: pd.Series, dtype: Any) -> pd.Series:
    """Rows whose value does not fit ``dtype`` when pandera reports only the column dtype."""
    kind = str(dtype)
    if any(k in kind for k in ("int", "float", "Int", "Float")):
        bad = ~_numeric_mask(series) & series.notna()
        if "int" in kind.lower() and not bad.any():
            parsed = pd.to_numeric(series, errors="coerce")
            bad = parsed.notna() & (np.mod(parsed, 1) != 0)
        if bad.any():
            return bad
    return series.notna()


def _problems(
    failure_cases: pd.DataFrame, frame: pd.DataFrame, schema: pa.DataFrameSchema
) -> pd.DataFrame:
    """Turn pandera's failure_cases into one row per (column, kind of failure)."""
    cases = failure_cases.astype(object).where(failure_cases.notna(), None)
    table_level = (cases["schema_context"] == "DataFrameSchema").to_numpy()
    # a table-level check reports each column of a failing row; count it once, for the table
    cases["column"] = cases["column"].where(~table_level, None)
    group_key = [f"{c!r}|{k}" for c, k in zip(cases["column"], cases["check"], strict=True)]
    records: dict[tuple[Any, str], dict[str, Any]] = {}
    dtype_columns: set[Any] = set()
    for _, group in cases.groupby(group_key, sort=False):
        column, check_name = group["column"].iloc[0], str(group["check"].iloc[0])
        check = _check_object(schema, column, group["check_number"].iloc[0])
        # pandera reports a check by its error text; the helpers' numeric check is a type test
        kind = "dtype" if check is not None and check.name == "numeric" else _classify(check_name)
        rows = [r for r in group["index"] if r is not None]
        values: list[Any] = list(group["failure_case"])
        note = ""
        if kind == "missing":
            column, values, rows = values[0], [], []
        elif kind == "unexpected":
            rows = []
        elif column is None and kind == "value":
            if not rows:  # a table-level check that could not run (e.g. on text)
                kind, note = "error", f"the check raised {values[0]}"
            values = []  # the values of a whole row; the row positions say more
        elif kind == "value" and not rows and check is not None:
            kind, note = "error", f"the check raised {values[0]}"
            values = []
        elif kind == "dtype":
            dtype_columns.add(column)
            declared = schema.columns[column].dtype if column in schema.columns else None
            if not rows and column in frame.columns:  # pandera names only the dtype found
                bad = _dtype_offenders(frame[column], declared).to_numpy()
                rows, values = list(frame.index[bad]), list(frame[column].to_numpy()[bad])
            if column in frame.columns:
                note = f"the column is stored as {frame[column].dtype}"
        if kind == "dtype":
            expected = "a number (numeric column)"
            if check is None or check.name != "numeric":
                expected = f"dtype {declared}"
        elif kind == "null":
            expected = "not null (no missing values)"
        elif kind == "missing":
            expected = "the column to be present"
        elif kind == "unexpected":
            expected = "only the contract's columns (strict schema)"
        elif kind == "unique":
            expected = "unique values (no duplicates)"
        else:
            expected = _expected(check, check_name)
        key = (column, kind if kind != "value" else f"value:{check_name}")
        record = records.setdefault(
            key,
            {"column": column, "kind": kind, "expected": expected, "rows": set(), "values": [],
             "note": note},
        )
        record["rows"].update(rows)
        record["values"] += values

    out = []
    for record in records.values():
        if record["column"] in dtype_columns and record["kind"] in ("value", "error"):
            continue  # value checks on unconverted text mislead; they run once the type is fixed
        if record["column"] is None and record["kind"] == "error" and dtype_columns:
            continue  # likewise a table-level check that failed on the unconverted column
        rows = sorted(record["rows"], key=lambda r: (str(type(r)), r))
        out.append({
            "column": record["column"],
            "kind": record["kind"],
            "expected": record["expected"],
            "n_rows": len(rows),
            "values": format_values(record["values"]) if record["kind"] != "null" else "",
            "rows": rows[:MAX_ROWS],
            "note": record["note"],
        })
    order = {"missing": 0, "unexpected": 1, "dtype": 2, "null": 3, "value": 4, "unique": 5}
    problems = pd.DataFrame(
        out, columns=["column", "kind", "expected", "n_rows", "values", "rows", "note"]
    )
    problems["_order"] = problems["kind"].map(order).fillna(5)
    problems = problems.sort_values(["_order"], kind="stable").drop(columns="_order")
    return problems.reset_index(drop=True)


def _message(problems: pd.DataFrame, where: str, positional: bool) -> str:
    n_cols = problems["column"].dropna().nunique()
    in_columns = f" in {_plural(n_cols, 'column')}" if n_cols else ""
    lines = [
        f"{_cap(where)} failed the data contract: {_plural(len(problems), 'problem')}"
        f"{in_columns}:"
    ]
    for p in problems.itertuples(index=False):
        column = "the table" if pd.isna(p.column) else f"column '{p.column}'"
        if p.kind == "unexpected":
            lines.append(f"  - {column}: expected {p.expected}; extra columns: {p.values}.")
            continue
        verb = "fails" if p.n_rows == 1 else "fail"
        text = f"  - {column}: expected {p.expected}; {_plural(p.n_rows)} {verb}"
        if p.values and p.values != "(none)":
            text += f"; offending values: {p.values}"
        if p.rows:
            more = ", ..." if p.n_rows > len(p.rows) else ""
            unit = "row positions (0-based)" if positional else "index"
            text += f" (at {unit} {', '.join(map(str, p.rows))}{more})"
        if p.note:
            text += f" [{p.note}]"
        lines.append(text + ".")
    lines.append("What to do:")
    for kind in dict.fromkeys(problems["kind"]):
        lines.append(f"  - {_kind_title(kind)}: {_HINTS.get(kind, _HINTS['other'])}")
    return "\n".join(lines)


def _kind_title(kind: str) -> str:
    """Short name of a kind of failure, used in the hint list."""
    return {
        "missing": "missing columns",
        "dtype": "wrong type",
        "null": "missing values",
        "value": "unexpected values",
        "error": "check errors",
        "unexpected": "columns outside the contract",
        "unique": "duplicates",
    }.get(kind, kind)


__all__ = [
    "binary",
    "check_unique",
    "codes",
    "contract",
    "format_values",
    "int_range",
    "number",
    "validate",
]
