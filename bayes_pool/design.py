"""The difference-in-differences design: column roles and the estimation sample.

A :class:`DiDDesign` says which column plays which role; :meth:`DiDDesign.prepare` validates a
frame against those roles and returns the estimation sample. The Bambi model
(:mod:`bayes_pool.bayes.did`) and the statsmodels replication (:mod:`bayes_pool.freq.did`) both
consume the same prepared design, so they always fit the same rows with the same terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import pandas as pd

from bayes_pool.errors import InputError

Family = Literal["bernoulli", "gaussian"]
FAMILIES: tuple[str, ...] = get_args(Family)


@dataclass(frozen=True)
class DiDDesign:
    """Column roles of a two-way (unit and time) difference-in-differences design.

    Parameters
    ----------
    outcome, treatment, unit, time : str
        Column names. ``treatment`` is a 0/1 indicator that switches on at adoption.
    covariates : tuple of str
        Control variables entering linearly.
    family : {"bernoulli", "gaussian"}
        Logit for a binary outcome, linear otherwise.
    """

    outcome: str
    treatment: str
    unit: str
    time: str
    covariates: tuple[str, ...] = ()
    family: Family = "bernoulli"

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {self.family!r}")
        object.__setattr__(self, "covariates", tuple(self.covariates))

    @property
    def columns(self) -> list[str]:
        """Every column the design uses, outcome first."""
        return [self.outcome, self.treatment, self.unit, self.time, *self.covariates]

    def prepare(self, data: pd.DataFrame) -> PreparedDiD:
        """Check the frame against the design and return the complete-case estimation sample.

        Raises :class:`~bayes_pool.errors.InputError` naming the column and the offending
        values when a column is missing, the outcome is not 0/1 for a logit, the treatment is
        not 0/1, or the treatment never changes within any unit (the unit effects would absorb it).
        """
        missing = [c for c in self.columns if c not in data.columns]
        if missing:
            raise InputError(
                f"missing column(s) {missing} required by the design; columns present: "
                f"{sorted(map(str, data.columns))}"
            )
        frame = data[self.columns].copy()
        n_all = len(frame)
        for col in (self.outcome, self.treatment, self.unit, self.time):
            n_na = int(frame[col].isna().sum())
            if n_na:
                raise InputError(f"column {col!r} has {n_na} missing value(s) in {n_all} rows; "
                                 "outcome, treatment, unit and time must be complete")
        frame = frame.dropna()
        n_dropped = n_all - len(frame)
        if frame.empty:
            raise InputError(f"no complete rows left for columns {self.columns}")
        check_binary(frame, self.treatment, "treatment")
        if self.family == "bernoulli":
            check_binary(frame, self.outcome, "outcome of a logit (family 'bernoulli')")
        for col in (self.outcome, self.treatment, *self.covariates):
            if not pd.api.types.is_numeric_dtype(frame[col]):
                bad = sorted(frame[col].astype(str).unique()[:10])
                raise InputError(f"column {col!r} must be numeric; found values such as {bad}")
        frame[self.outcome] = frame[self.outcome].astype(float if self.family == "gaussian" else int)
        frame[self.treatment] = frame[self.treatment].astype(int)
        frame[self.unit] = frame[self.unit].astype(str)
        frame[self.time] = frame[self.time].astype(str)
        if frame[self.treatment].nunique() < 2:
            raise InputError(f"treatment {self.treatment!r} never varies "
                             f"(all rows = {frame[self.treatment].iloc[0]}); nothing to estimate")
        switching = frame.groupby(self.unit)[self.treatment].nunique()
        if not (switching > 1).any():
            raise InputError(
                f"treatment {self.treatment!r} never changes within any {self.unit!r}: with "
                f"{self.unit} effects the policy effect is not identified"
            )
        for col, what in ((self.unit, "units"), (self.time, "periods")):
            if frame[col].nunique() < 2:
                raise InputError(f"column {col!r} has fewer than 2 {what}")
        return PreparedDiD(design=self, frame=frame.reset_index(drop=True),
                           n_input=n_all, n_incomplete=n_dropped,
                           switchers=tuple(sorted(switching[switching > 1].index)))


@dataclass(frozen=True)
class PreparedDiD:
    """A validated estimation sample for a :class:`DiDDesign`."""

    design: DiDDesign
    frame: pd.DataFrame
    n_input: int
    n_incomplete: int
    switchers: tuple[str, ...] = field(default=())

    @property
    def n_obs(self) -> int:
        return len(self.frame)


def check_binary(frame: pd.DataFrame, col: str, what: str) -> None:
    """Raise :class:`InputError` naming the column, its non-0/1 values and their count."""
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = frame[col][values.isna() | ~values.isin([0, 1])]
    if len(bad):
        shown = sorted(map(str, pd.unique(bad)))[:10]
        raise InputError(f"column {col!r} ({what}) must be 0/1; {len(bad)} row(s) have "
                         f"other values: {shown}. Recode it in the mapping file.")
