"""Categorical covariates as 0/1 indicators with a reference level, the same way everywhere.

Every generic analysis (DiD, staggered DiD and event study, matching, mediation) calls
:func:`expand` where it reads its covariates, so the frequentist and the Bayesian models, the
balance tables and exact matching all see the same indicators. A covariate is categorical when

* it holds text labels (object or string dtype, no value parses as a number),
* it is a pandas ``Categorical`` (Stata/SPSS value labels become one, see
  :func:`bayes_pool.data.labels.apply_value_labels`), or
* it is named in ``categorical`` (numeric codes, which otherwise enter linearly as coded).

Each level but the reference gets an indicator ``<column>_<level>`` (level made a safe
identifier; ``<column>_<k>``, k the level's position from 1, when that would be empty or
clash). **Reference level:** the one named in ``reference``, else the most frequent level in
the estimation sample (Stata's ``ib(freq).``), ties broken by level order (category or label
order, else sorted). Levels and counts are taken over the complete cases of the analysis, so a
level seen only in rows that are dropped anyway gets no indicator.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_pool.errors import InputError

REFERENCE_RULE = "most frequent level in the estimation sample (ties: first in level order)"


@dataclass(frozen=True)
class Expansion:
    """Covariates after expansion: the frame with indicator columns added, the covariate
    names with each categorical replaced by its indicators, and what was done (manifest)."""

    frame: pd.DataFrame
    covariates: tuple[str, ...]
    indicators: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Categorical column -> its indicators (reference left out), in level order."""
    reference_indicator: dict[str, str] = field(default_factory=dict)
    """Categorical column -> the indicator of its reference level (in ``frame``, not a
    covariate), for balance tables that report every level."""
    record: dict = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.indicators)

    def columns_for(self, names: Iterable[str]) -> list[str]:
        """``names`` with each categorical column replaced by its indicators (exact matching
        on a categorical column is exact matching on its indicators: the same cells)."""
        return [i for n in names for i in self.indicators.get(n, (n,))]


def is_text(values: pd.Series) -> bool:
    """True for an object/string column whose values are text labels (none parses as a
    number); a numeric column with a few stray text values is not (it is a coding error)."""
    if isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(values) \
            or pd.api.types.is_bool_dtype(values):
        return False
    present = values.dropna()
    return not pd.to_numeric(present, errors="coerce").notna().any()


def kind(values: pd.Series, named: bool) -> str | None:
    """How ``values`` is categorical ("pandas categorical", "text", "named"), or None."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "pandas categorical"
    if is_text(values):
        return "text"
    return "named (numeric codes)" if named else None


def parse_reference(items: Iterable[str]) -> dict[str, str]:
    """``["educ=college", ...]`` (the ``--reference`` options) as ``{"educ": "college"}``."""
    out = {}
    for item in items:
        col, sep, level = item.partition("=")
        if not sep or not col.strip() or not level.strip():
            raise InputError(f"--reference {item!r}: write COLUMN=LEVEL, e.g. "
                             "--reference educ=college")
        out[col.strip()] = level.strip()
    return out


def expand(frame: pd.DataFrame, covariates: Iterable[str], *, categorical: Iterable[str] = (),
           reference: Mapping[str, str] | None = None, required: Iterable[str] = (),
           by: str | None = None) -> Expansion:
    """Replace the categorical ``covariates`` by 0/1 indicators (see the module docstring).

    Parameters
    ----------
    frame
        The data; columns not present are left for the design's own missing-column error.
    covariates
        Covariate names as the user gave them.
    categorical
        Numeric covariates to expand as well (text and pandas categorical ones always are).
    reference
        ``{column: level}`` reference levels; others take the most frequent level.
    required
        The analysis's other columns: rows missing any of them (or any covariate) are not in
        the estimation sample and do not count towards levels and the reference.
    by
        A 0/1 group column (the treatment of a propensity model): every level must occur in
        both groups, or the logit of ``by`` has no finite estimate for that level.

    Raises
    ------
    InputError
        A categorical column with no values or one level in the estimation sample, a
        reference level that does not occur, a level missing from one group of ``by``, a
        ``categorical`` or ``reference`` column that is not a covariate, or an indicator
        name that is already a column.
    """
    covariates = tuple(covariates)
    named, reference = set(categorical), dict(reference or {})
    for what, cols in (("--categorical", named), ("--reference", set(reference))):
        stray = sorted(cols - set(covariates))
        if stray:
            raise InputError(f"{what} names {stray}, which are not among the covariates "
                             f"{list(covariates)}. What to do: add them to --covariates or "
                             f"drop them from {what}.")
    present = [c for c in covariates if c in frame.columns]
    kinds = {c: kind(frame[c], c in named) for c in present}
    cats = [c for c in present if kinds[c]]
    stray = sorted(set(reference) - set(cats))
    if stray:
        raise InputError(f"--reference names {stray}, which are numeric covariates entering "
                         "linearly; name them with --categorical too to expand them.")
    if not cats:
        return Expansion(frame=frame, covariates=covariates)
    used = [c for c in (*required, *present, *([by] if by else [])) if c in frame.columns]
    sample = frame[list(dict.fromkeys(used))].notna().all(axis=1)
    out = frame.copy()
    indicators, ref_ind, record = {}, {}, {}
    for col in cats:
        keys = _keys(frame[col])
        levels, counts = _levels(frame[col], keys[sample])
        ref = _reference(col, levels, counts, reference.get(col), int(sample.sum()))
        if by is not None:
            _check_groups(col, keys[sample], frame.loc[sample, by], levels)
        names = _names(col, levels, taken=set(frame.columns) - {col})
        known = keys.isin(levels)  # False also where missing: no indicator value
        for level, name in zip(levels, names):
            out[name] = (keys == level).astype(float).where(known)
        indicators[col] = tuple(n for lv, n in zip(levels, names) if lv != ref)
        ref_ind[col] = names[levels.index(ref)]
        record[col] = {
            "kind": kinds[col], "reference": _label(ref),
            "reference_rule": "chosen (--reference)" if col in reference else REFERENCE_RULE,
            "levels": [{"level": _label(lv), "n": int(n), "indicator": None if lv == ref else nm}
                       for lv, n, nm in zip(levels, counts, names)]}
    expanded = tuple(i for c in covariates for i in indicators.get(c, (c,)))
    return Expansion(frame=out, covariates=expanded, indicators=indicators,
                     reference_indicator=ref_ind, record=record)


def _keys(values: pd.Series) -> pd.Series:
    """The level of each row as compared and counted: text as str, category as its value."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(object)
    if is_text(values):
        return values.map(str, na_action="ignore").astype(object)
    return values


def _levels(values: pd.Series, kept: pd.Series) -> tuple[list, list[int]]:
    """Levels seen in the estimation sample ``kept`` (in level order) and their row counts."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        order = list(values.cat.categories)
    else:
        order = sorted(pd.unique(kept.dropna()))
    counts = kept.value_counts()
    levels = [lv for lv in order if counts.get(lv, 0) > 0]
    return levels, [int(counts[lv]) for lv in levels]


def _reference(col: str, levels: list, counts: list[int], chosen: str | None, n: int):
    """The reference level: ``chosen`` (matched by its label) or the most frequent."""
    if not levels:
        raise InputError(f"categorical covariate {col!r} has no values in the {n} rows "
                         "otherwise complete (all missing). What to do: drop it from the "
                         "covariates, or check the [missing] codes of the mapping file.")
    if len(levels) == 1:
        raise InputError(f"categorical covariate {col!r} has a single level "
                         f"({_label(levels[0])!r}, all {counts[0]} complete rows): it cannot be "
                         "told apart from the intercept. What to do: drop it from the "
                         "covariates.")
    if chosen is None:
        return levels[int(np.argmax(counts))]  # argmax takes the first of tied counts
    for lv in levels:
        if _label(lv) == chosen:
            return lv
    raise InputError(f"--reference {col}={chosen}: level {chosen!r} does not occur in column "
                     f"{col!r}; its levels (rows) are "
                     + ", ".join(f"{_label(lv)!r} ({c})" for lv, c in zip(levels, counts))
                     + ". What to do: name one of these.")


def _check_groups(col: str, values: pd.Series, group: pd.Series, levels: list) -> None:
    """Every level in both groups of the 0/1 ``group`` column (else perfect prediction)."""
    table = pd.crosstab(values, group)
    for lv in levels:
        for g in (0, 1):
            n = int(table.loc[lv, g]) if lv in table.index and g in table.columns else 0
            if n == 0:
                other = int(table.loc[lv].sum()) if lv in table.index else 0
                raise InputError(
                    f"categorical covariate {col!r}: level {_label(lv)!r} has no rows with "
                    f"{group.name} = {g} ({other} rows, all {group.name} = {1 - g}); its "
                    f"indicator predicts {group.name} perfectly and the propensity logit has no "
                    "finite estimate. What to do: merge this level with a neighbouring one in "
                    "the mapping file ([[recode]] kind = \"map\"), or drop these rows.")


def _label(level) -> str:
    """A level as text: numbers without a trailing ``.0``."""
    if isinstance(level, float | np.floating) and float(level).is_integer():
        return str(int(level))
    return str(level)


def _names(col: str, levels: list, taken: set) -> list[str]:
    """Formula-safe indicator names ``<col>_<level>``, made unique."""
    stem = _slug(col) or "x"
    if stem[0].isdigit():
        stem = "x_" + stem
    names: list[str] = []
    for k, lv in enumerate(levels, start=1):
        slug = _slug(_label(lv))
        name = f"{stem}_{slug}" if slug else f"{stem}_{k}"
        if name in names or keyword.iskeyword(name):
            name = f"{stem}_{k}"
        names.append(name)
    clash = sorted(set(names) & taken)
    if clash:
        raise InputError(f"categorical covariate {col!r}: its indicator name(s) {clash} are "
                         "already columns of the data. What to do: rename those columns or "
                         f"{col!r} in the mapping file.")
    if len(set(names)) < len(names):  # a slug equal to another level's position
        names = [f"{stem}_{k}" for k in range(1, len(levels) + 1)]
    return names


def _slug(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", text)).strip("_")
