r"""The single-mediator design: column roles and the complete-case estimation sample.

The frequentist steps (:mod:`bayes_pool.freq.mediation`) and the Bayesian joint model
(:mod:`bayes_pool.bayes.mediation`) both consume :class:`PreparedMediation`; with a unit and a
time column each step is the two-way DiD of :class:`~bayes_pool.design.did.DiDDesign`
(:meth:`MediationDesign.did`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bayes_pool.design.did import FAMILIES, DiDDesign, Family, check_binary
from bayes_pool.errors import InputError


@dataclass(frozen=True)
class MediationDesign:
    """Column roles of a single-mediator design.

    Parameters
    ----------
    outcome, treatment, mediator : str
        Column names; ``treatment`` is 0/1, ``mediator`` continuous.
    covariates : tuple of str
        Controls entering both steps linearly.
    unit, time : str, optional
        Fixed effects (frequentist) or partially pooled intercepts / time effects (Bayesian);
        ``None`` for neither. Standard errors are clustered by ``unit`` when given.
    family : {"bernoulli", "gaussian"}
        Logit or linear outcome step.
    items : tuple of str
        Items measuring the mediator (used by the Bayesian measurement model); rows missing
        an item are dropped too.
    """

    outcome: str
    treatment: str
    mediator: str
    covariates: tuple[str, ...] = ()
    unit: str | None = None
    time: str | None = None
    family: Family = "bernoulli"
    items: tuple[str, ...] = ()

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise InputError(f"outcome family must be one of {sorted(FAMILIES)}, "
                             f"got {self.family!r}")
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "items", tuple(self.items))

    @property
    def columns(self) -> list[str]:
        """Every column the design uses (no duplicates), outcome first."""
        cols = [self.outcome, self.treatment, self.mediator, *self.covariates,
                *(c for c in (self.unit, self.time) if c), *self.items]
        return list(dict.fromkeys(cols))

    def did(self, *, outcome_step: bool) -> DiDDesign:
        """The DiD design of one step (needs both unit and time)."""
        if outcome_step:
            return DiDDesign(outcome=self.outcome, treatment=self.treatment, unit=self.unit,
                             time=self.time, covariates=(*self.covariates, self.mediator),
                             family=self.family)
        return DiDDesign(outcome=self.mediator, treatment=self.treatment, unit=self.unit,
                         time=self.time, covariates=self.covariates, family="gaussian")

    def prepare(self, data: pd.DataFrame) -> PreparedMediation:
        """Validate the frame and return the complete-case sample.

        Raises :class:`~bayes_pool.errors.InputError` naming the column and values when a
        column is missing or not numeric, the treatment (or a logit's outcome) is not 0/1,
        outcome/treatment/unit/time have missing values, or the treatment never changes
        within any unit while unit effects are asked for.
        """
        missing = [c for c in self.columns if c not in data.columns]
        if missing:
            raise InputError(f"missing column(s) {missing} required by the mediation design; "
                             f"columns present: {sorted(map(str, data.columns))}")
        frame = data[self.columns].copy()
        n_all = len(frame)
        for col in (c for c in (self.outcome, self.treatment, self.unit, self.time) if c):
            n_na = int(frame[col].isna().sum())
            if n_na:
                raise InputError(f"column {col!r} has {n_na} missing value(s) in {n_all} rows; "
                                 "outcome, treatment, unit and time must be complete")
        numeric = [self.outcome, self.treatment, self.mediator, *self.covariates, *self.items]
        for col in numeric:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                bad = sorted(frame[col].dropna().astype(str).unique()[:10])
                raise InputError(f"column {col!r} must be numeric; found values such as {bad}")
        frame = frame.dropna().reset_index(drop=True)
        if len(frame) < 10:
            raise InputError(f"only {len(frame)} complete row(s) for columns {self.columns}")
        check_binary(frame, self.treatment, "treatment")
        if self.family == "bernoulli":
            check_binary(frame, self.outcome, "outcome of a logit (family 'bernoulli')")
        frame[self.treatment] = frame[self.treatment].astype(int)
        if frame[self.treatment].nunique() < 2:
            raise InputError(f"treatment {self.treatment!r} never varies "
                             f"(all rows = {frame[self.treatment].iloc[0]}); nothing to estimate")
        if frame[self.mediator].nunique() < 3:
            raise InputError(f"mediator {self.mediator!r} takes fewer than 3 distinct values; "
                             "a linear mediator model needs a continuous mediator")
        switchers: tuple[str, ...] = ()
        for col in (c for c in (self.unit, self.time) if c):
            frame[col] = frame[col].astype(str)
            if frame[col].nunique() < 2:
                raise InputError(f"column {col!r} has fewer than 2 levels")
        if self.unit:
            varies = frame.groupby(self.unit)[self.treatment].nunique() > 1
            switchers = tuple(sorted(varies.index[varies]))
            if not switchers:
                raise InputError(f"treatment {self.treatment!r} never changes within any "
                                 f"{self.unit!r}: with {self.unit} effects the effect is not "
                                 "identified")
        return PreparedMediation(design=self, frame=frame, n_input=n_all,
                                 n_incomplete=n_all - len(frame), switchers=switchers)


@dataclass(frozen=True)
class PreparedMediation:
    """A validated complete-case sample for a :class:`MediationDesign`."""

    design: MediationDesign
    frame: pd.DataFrame
    n_input: int
    n_incomplete: int
    switchers: tuple[str, ...] = field(default=())

    @property
    def n_obs(self) -> int:
        return len(self.frame)
