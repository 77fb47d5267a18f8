"""The difference-in-differences design: column roles and the estimation sample.

A :class:`DiDDesign` says which column plays which role; :meth:`DiDDesign.prepare` validates a
frame against those roles and returns the estimation sample. The Bambi model
(:mod:`bayes_pool.bayes.did`) and the statsmodels replication (:mod:`bayes_pool.freq.did`) both
consume the same prepared design, so they always fit the same rows with the same terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import numpy as np
import pandas as pd

from bayes_pool.categorical import expand
from bayes_pool.errors import InputError

Family = Literal["bernoulli", "gaussian"]
FAMILIES: tuple[str, ...] = get_args(Family)


def check_family(family: str) -> None:
    """Reject a model family other than :data:`FAMILIES`."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")


@dataclass(frozen=True)
class PanelRoles:
    """The columns every panel design names first, in this order: the outcome, the 0/1
    treatment (on from adoption), the unit and the time."""

    outcome: str
    treatment: str
    unit: str
    time: str


@dataclass(frozen=True)
class DiDDesign(PanelRoles):
    """Column roles of a two-way (unit and time) difference-in-differences design.

    Parameters
    ----------
    outcome, treatment, unit, time : str
        Column names (:class:`PanelRoles`). ``treatment`` is a 0/1 indicator that switches on
        at adoption.
    covariates : tuple of str
        Control variables entering linearly; text and pandas categorical ones enter as 0/1
        indicators (:mod:`bayes_pool.categorical`).
    family : {"bernoulli", "gaussian"}
        Logit for a binary outcome, linear otherwise.
    categorical : tuple of str
        Numeric covariates to expand into indicators too.
    reference : tuple of (column, level)
        Reference levels (a dict is accepted); others take the most frequent level.
    cluster : str, optional
        Column the frequentist SEs are clustered by (``vcov="cluster"``); None: the unit.
    """

    covariates: tuple[str, ...] = ()
    family: Family = "bernoulli"
    categorical: tuple[str, ...] = ()
    reference: tuple[tuple[str, str], ...] = ()
    cluster: str | None = None

    def __post_init__(self):
        check_family(self.family)
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        ref = self.reference.items() if isinstance(self.reference, dict) else self.reference
        object.__setattr__(self, "reference", tuple(sorted((str(c), str(v)) for c, v in ref)))

    @property
    def columns(self) -> list[str]:
        """Every column the design uses, outcome first (the cluster column last, if it is
        another)."""
        return [self.outcome, self.treatment, self.unit, self.time, *self.covariates,
                *self.cluster_column]

    @property
    def cluster_column(self) -> tuple[str, ...]:
        """The cluster column when it is not one of the other roles, else nothing."""
        roles = (self.outcome, self.treatment, self.unit, self.time, *self.covariates)
        return (self.cluster,) if self.cluster and self.cluster not in roles else ()

    @property
    def terms(self) -> list[str]:
        """The regressors whose effects a fit reports: the treatment, then the covariates."""
        return [self.treatment, *self.covariates]

    def prepare(self, data: pd.DataFrame) -> PreparedDiD:
        """Check the frame against the design and return the complete-case estimation sample.

        Categorical covariates are first replaced by their indicators: the returned
        ``prepared.design`` names the indicators as covariates and ``prepared.categorical``
        records the expansion.

        Raises :class:`~bayes_pool.errors.InputError` naming the column and the offending
        values when a column is missing, the outcome is not 0/1 for a logit, the treatment is
        not 0/1, or the treatment never changes within any unit (the unit effects would absorb it).
        """
        ex = expand(data, self.covariates, categorical=self.categorical,
                    reference=dict(self.reference),
                    required=(self.outcome, self.treatment, self.unit, self.time,
                              *self.cluster_column))
        if ex.changed:
            plain = replace(self, covariates=ex.covariates, categorical=(), reference=())
            return replace(plain.prepare(ex.frame), categorical=ex.record)
        missing = [c for c in self.columns if c not in data.columns]
        if missing:
            raise InputError(
                f"missing column(s) {missing} required by the design; columns present: "
                f"{sorted(map(str, data.columns))}. What to do: check the spelling of the "
                "column options, or name the raw columns in the mapping file's [columns]."
            )
        frame = data[self.columns].copy()
        n_all = len(frame)
        for col in (self.outcome, self.treatment, self.unit, self.time, *self.cluster_column):
            n_na = int(frame[col].isna().sum())
            if n_na:
                first = ", ".join(map(str, np.flatnonzero(frame[col].isna().to_numpy())[:5]))
                raise InputError(f"column {col!r} has {n_na} missing value(s) in {n_all} rows "
                                 f"(row positions {first}{', ...' if n_na > 5 else ''}); "
                                 "outcome, treatment, unit and time must be complete. What to "
                                 "do: drop or complete these rows, and check that [missing] "
                                 "codes in the mapping did not blank out valid answers.")
        for col in (self.outcome, self.treatment, *self.covariates):
            frame[col] = check_numeric(frame, col)
        frame = frame.dropna()
        n_dropped = n_all - len(frame)
        if frame.empty:
            raise InputError(f"no complete rows left for columns {self.columns}: every one of "
                             f"the {n_all} rows misses at least one covariate. What to do: "
                             "drop the covariates that are mostly missing.")
        check_binary(frame, self.treatment, "treatment")
        if self.family == "bernoulli":
            check_binary(frame, self.outcome, "outcome of a logit (family 'bernoulli')")
        frame[self.outcome] = frame[self.outcome].astype(float if self.family == "gaussian" else int)
        frame[self.treatment] = frame[self.treatment].astype(int)
        frame[self.unit] = frame[self.unit].astype(str)
        frame[self.time] = frame[self.time].astype(str)
        if frame[self.treatment].nunique() < 2:
            raise InputError(f"treatment {self.treatment!r} never varies (all {len(frame)} "
                             f"rows = {frame[self.treatment].iloc[0]}); nothing to estimate. "
                             "What to do: check the treatment coding and that the file holds "
                             "both treated and untreated rows.")
        switching = frame.groupby(self.unit)[self.treatment].nunique()
        if not (switching > 1).any():
            raise InputError(
                f"treatment {self.treatment!r} never changes within any {self.unit!r} "
                f"({frame[self.unit].nunique()} {self.unit} values): with {self.unit} effects "
                "the policy effect is not identified. What to do: include periods before "
                "and after adoption for the adopting units, or check the treatment coding."
            )
        for col, what in ((self.unit, "units"), (self.time, "periods")):
            if frame[col].nunique() < 2:
                raise InputError(f"column {col!r} has fewer than 2 {what} "
                                 f"(only {frame[col].iloc[0]!r}); a two-way design needs "
                                 "several.")
        return PreparedDiD(design=self, frame=frame.reset_index(drop=True),
                           n_input=n_all, n_incomplete=n_dropped,
                           switchers=tuple(sorted(switching[switching > 1].index)))

    def check(self, data: pd.DataFrame, *, min_unit_rows: int = 2) -> PreparedDiD:
        """:meth:`prepare`, plus what a fit needs that :meth:`prepare` leaves to the models.

        The outcome varies and every unit has at least ``min_unit_rows`` rows (among all rows,
        which :meth:`prepare` requires complete in outcome, treatment, unit and time); in the
        complete cases, no covariate is constant and for a logit no single column (treatment
        or covariate) separates the outcome. The CLI calls this before it creates
        a run folder or compiles a model; refits on subsamples (placebo, subgroups) call
        :meth:`prepare` only, since a subsample may legitimately be thin.
        """
        # first every row (outcome, treatment, unit and time must be complete anyway), so
        # messages count the rows of the file; then the complete cases
        base = (replace(self, covariates=(), categorical=(), reference=()).prepare(data).frame
                if self.covariates else None)
        prepared = self.prepare(data)
        base = prepared.frame if base is None else base
        if base[self.outcome].nunique() < 2:
            raise InputError(f"outcome {self.outcome!r} never varies (all {len(base)} rows = "
                             f"{base[self.outcome].iloc[0]}); nothing to explain. What to do: "
                             "check the outcome coding and the [missing] codes.")
        check_unit_sizes(base, self.unit, min_rows=min_unit_rows)
        # the complete cases: the sample a fit with the covariates (indicators) uses
        covariates = prepared.design.covariates
        check_constant(prepared.frame, covariates)
        if self.family == "bernoulli":
            check_separation(prepared.frame, self.outcome, [self.treatment, *covariates])
        return prepared


@dataclass(frozen=True)
class PreparedDiD:
    """A validated estimation sample for a :class:`DiDDesign`."""

    design: DiDDesign
    frame: pd.DataFrame
    n_input: int
    n_incomplete: int
    switchers: tuple[str, ...] = field(default=())
    categorical: dict = field(default_factory=dict)
    """How categorical covariates were expanded (:attr:`bayes_pool.categorical.Expansion.record`)."""

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


def check_numeric_columns(frame: pd.DataFrame, columns, *, what: str = "column",
                          why: str = "") -> None:
    """Raise :class:`InputError` naming the ``columns`` missing from the frame (and listing its
    columns), else those not of a numeric dtype (``why``: the reason they must be, if any)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what}(s) {missing} not in the frame; columns: {sorted(frame.columns)}")
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise InputError(f"{what}(s) {bad} must be numeric" + (f" ({why})" if why else ""))


def check_numeric(frame: pd.DataFrame, col: str) -> pd.Series:
    """``col`` as numbers; raise :class:`InputError` naming the values that are not numbers
    (text, including numbers stored as text) and their count."""
    values = frame[col]
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    is_number = values.map(lambda v: isinstance(v, int | float | np.number)
                           and not isinstance(v, bool), na_action="ignore").fillna(True)
    if is_number.astype(bool).all():  # an object column holding numbers (and missing values)
        return pd.to_numeric(values)
    parses = pd.to_numeric(values, errors="coerce").notna() | values.isna()
    bad = values[~parses]
    what = "are not numbers"
    if not len(bad):  # every value parses: numbers stored as text
        bad, what = values[~is_number.astype(bool)], "are numbers stored as text"
    shown = sorted(map(str, pd.unique(bad)))[:10]
    raise InputError(f"column {col!r} must be numeric; {len(bad)} row(s) hold values that "
                     f"{what}: {shown}. What to do: recode them in the mapping file "
                     "([[recode]] kind = \"map\" or \"label_map\") or declare non-response "
                     "codes missing ([missing] codes); a categorical covariate can be named "
                     "with --categorical to enter as 0/1 indicators.")


def check_unit_sizes(frame: pd.DataFrame, unit: str, *, min_rows: int = 2) -> None:
    """Raise :class:`InputError` listing the units with fewer than ``min_rows`` rows.

    A unit effect cannot be estimated from one respondent (the frequentist fixed effect is
    infinite, the Bayesian one is its prior), and a unit seen once is often a mistyped code.
    """
    counts = frame[unit].value_counts()
    thin = counts[counts < min_rows].sort_index()
    if len(thin):
        shown = ", ".join(f"{u!r} ({n} row{'s' if n != 1 else ''})"
                          for u, n in list(thin.items())[:10])
        more = f", ... ({len(thin) - 10} more)" if len(thin) > 10 else ""
        raise InputError(
            f"column {unit!r}: {len(thin)} {unit} value(s) have fewer than {min_rows} rows in "
            f"{len(frame)} rows: {shown}{more}. A {unit} effect "
            f"cannot be estimated from a single respondent, and a {unit} seen once is often a "
            f"mistyped code. What to do: fix these codes, merge these {unit} values with "
            "others in the mapping file, or drop their rows."
        )


def check_constant(frame: pd.DataFrame, columns) -> None:
    """Raise :class:`InputError` naming covariates with a single value in the sample."""
    for col in columns:
        values = frame[col].dropna()
        if len(values) and values.nunique() < 2:
            raise InputError(
                f"covariate {col!r} is constant (all {len(values)} rows = {values.iloc[0]}) "
                "and cannot be told apart from the intercept. What to do: drop it from the "
                "covariates."
            )


def separation(frame: pd.DataFrame, outcome: str, column: str) -> str | None:
    """Describe how ``column`` alone separates the 0/1 ``outcome``, or None if it does not.

    Complete separation: some cut-off puts every 0 on one side and every 1 on the other.
    Quasi-complete: the same with ties at the cut-off. Either way the logit coefficient of
    ``column`` has no finite maximum-likelihood estimate. Rows where either is missing are
    ignored; a constant column is not reported (see :func:`check_constant`).
    """
    pair = frame[[outcome, column]].dropna()
    x = pd.to_numeric(pair[column], errors="coerce").to_numpy(dtype=float)
    y = pair[outcome].to_numpy()
    x0, x1 = x[y == 0], x[y == 1]
    if not len(x0) or not len(x1) or np.nanmin(x) == np.nanmax(x):
        return None
    for lo, hi, y_lo, y_hi in ((x0, x1, 0, 1), (x1, x0, 1, 0)):
        top, bottom = lo.max(), hi.min()
        if top < bottom:
            return (f"complete separation: every row with {column} <= {_num(top)} has "
                    f"{outcome} = {y_lo} ({len(lo)} rows) and every row with {column} >= "
                    f"{_num(bottom)} has {outcome} = {y_hi} ({len(hi)} rows)")
        if top == bottom:
            below, above = int((x < top).sum()), int((x > top).sum())
            parts = []
            if below:
                parts.append(f"every one of the {below} rows with {column} < {_num(top)} has "
                             f"{outcome} = {y_lo}")
            if above:
                parts.append(f"every one of the {above} rows with {column} > {_num(top)} has "
                             f"{outcome} = {y_hi}")
            return "quasi-complete separation: " + " and ".join(parts)
    return None


def check_separation(frame: pd.DataFrame, outcome: str, columns) -> None:
    """Raise :class:`InputError` naming the first column that separates a logit's outcome.

    ``frame`` is the estimation sample (complete cases); only single columns are checked, a
    separating combination of several columns is left to the fit's diagnostics.
    """
    for col in columns:
        found = separation(frame, outcome, col)
        if found:
            raise InputError(
                f"column {col!r} perfectly predicts the outcome {outcome!r} of the logit "
                f"in the {len(frame)} complete cases ({found}); its coefficient has no "
                f"finite estimate and the fit would not converge. What to do: drop {col!r} "
                "from the model, merge its sparse categories, or check it is not a recoded "
                "copy of the outcome."
            )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def check_varies(frame: pd.DataFrame, col: str, what: str) -> None:
    """Raise :class:`InputError` unless ``col`` is 0/1 (missing allowed) and takes both values."""
    if col not in frame.columns:
        raise InputError(f"missing column {col!r} ({what}); columns present: "
                         f"{sorted(map(str, frame.columns))}")
    present = frame[[col]].dropna()
    check_binary(present, col, what)
    if present[col].nunique() < 2:
        value = present[col].iloc[0] if len(present) else "missing"
        raise InputError(f"{what} {col!r} never varies (all {len(present)} rows = {value}); "
                         "nothing to compare. What to do: check the coding and that the file "
                         "holds both groups.")
