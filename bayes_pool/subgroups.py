"""Two-way splits of a sample into subgroups (Table 6's income, generation, education), shared
by the frequentist and Bayesian heterogeneity fits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_pool.errors import InputError

GROUP = "subgroup"
"""Name of the subgroup-label column the pooled and interacted models add to the frame."""


@dataclass(frozen=True)
class Split:
    """A two-way split of the sample.

    Parameters
    ----------
    by
        A column holding the subgroup labels, or a function of the frame returning one label
        per row (None/NaN where the row belongs to neither group).
    low, high
        The two labels; differences are ``high - low``.
    """

    by: str | Callable[[pd.DataFrame], object]
    low: str
    high: str

    def labels(self, frame: pd.DataFrame) -> pd.Series:
        """The label of every row (NaN outside both groups); unknown labels raise."""
        if isinstance(self.by, str):
            if self.by not in frame.columns:
                raise InputError(f"split column {self.by!r} not in the data; columns: "
                                 f"{sorted(map(str, frame.columns))}")
            lab = frame[self.by]
        else:
            lab = pd.Series(np.asarray(self.by(frame), dtype=object), index=frame.index)
        lab = lab.astype(object).where(lab.notna(), None)
        bad = sorted(set(lab.dropna().astype(str)) - {self.low, self.high})
        if bad:
            raise InputError(f"split labels must be {self.low!r} or {self.high!r}; found {bad} "
                             f"in {int(lab.isin(bad).sum())} rows")
        return lab


def as_split(frame: pd.DataFrame, split: Split | str) -> Split:
    """``split`` itself, or the split by a two-valued column (sorted values: low, high)."""
    if isinstance(split, Split):
        return split
    if isinstance(split, str) and split in frame.columns:
        values = sorted(frame[split].dropna().astype(str).unique())
        if len(values) != 2:
            raise InputError(f"split column {split!r} must have exactly 2 values, has "
                             f"{len(values)}: {values[:10]}")
        lab = frame[split].astype(str).where(frame[split].notna(), None)
        return Split(by=lambda f, lab=lab: lab.reindex(f.index), low=values[0], high=values[1])
    raise InputError(f"a split must be a Split or a column of the data; got {split!r}")
