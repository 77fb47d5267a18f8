"""Stata/SPSS value labels as pandas categoricals, for covariates that are categories.

The readers keep labelled codes as numbers (:func:`bayes_pool.data.io.read_table`), so
recodes can name codes or labels. A generic command that is given a labelled column as a
covariate turns it into a categorical of its labels first; :mod:`bayes_pool.categorical` then
expands it into indicators named by label.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def apply_value_labels(frame: pd.DataFrame, value_labels: dict[str, dict],
                       columns: Iterable[str]) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with each of ``columns`` whose every present code has a value label
    replaced by a categorical of the labels (categories in code order), and the names of
    the columns replaced.

    A column with codes that have no label (say, ages with only the non-response codes
    labelled) is a number with labelled special values, not a category: it is left as it is.
    Two codes with the same label stay apart (``"label (code)"``).
    """
    out, done = frame, []
    for col in columns:
        labels = value_labels.get(col)
        if not labels or col not in frame.columns:
            continue
        codes = pd.unique(frame[col].dropna())
        if not len(codes) or not set(codes) <= set(labels):
            continue
        order = sorted(labels)
        texts = [str(labels[c]) for c in order]
        shown = {c: (t if texts.count(t) == 1 else f"{t} ({c:g})") for c, t in zip(order, texts)}
        if out is frame:
            out = frame.copy()
        out[col] = pd.Categorical(frame[col].map(shown),
                                  categories=[shown[c] for c in order])
        done.append(col)
    return out, done
