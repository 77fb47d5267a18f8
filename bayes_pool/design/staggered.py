r"""Event time and adoption cohorts of a staggered-adoption design, built explicitly.

A :class:`StaggeredDesign` adds an adoption-time (``cohort``) column to the DiD roles: the
time at which a unit was first treated, 0 or empty for a unit never treated.
:meth:`StaggeredDesign.prepare` validates the frame and returns a :class:`PreparedStaggered`
holding the estimation sample with

* the **event time** of every row, in periods,

  .. math::

      e_{it} = \left\lfloor \frac{t - g_i}{L} \right\rfloor,

  with :math:`g_i` the unit's adoption time and :math:`L` the period length (by default the
  smallest gap between consecutive observed times: 2 years for CLDS waves 2014/2016/2018,
  so a province adopting in 2015 has event time -1 in 2014, 0 in 2016 and +1 in 2018, and
  one adopting in 2011 has +1 in 2014). Event time is non-negative exactly when the unit is
  treated (``t >= g``), so it agrees with the treatment column (checked). Pass
  ``period_length=1`` for event time in years, the literal reading of Zhang & Chen's Eq. (5);
* the end points binned (:math:`e \le` the window's low end, :math:`e \ge` its high end; the
  paper's window is -2..+4) and one 0/1 column per bin except the reference period (-1);
* the **first treated period** of each treated unit, the first observed time at or after
  adoption (the Wooldridge cohort);
* a **coverage** table saying which units (and times) fill which event-time bin, and which
  bins are identified only by units treated in every observed period (*always treated*).

Always-treated units are never seen untreated, so with unit effects they carry no
before-after contrast: a bin only they fill is either collinear with their unit effects (a
constant dummy, such as Beijing's :math:`\ge +4` in every wave) or identified only by
assuming that an earlier event-time effect, estimated from other units, also holds for them.
Such bins are not estimated, and the always-treated units' rows are left out of the
event-study and ETWFE samples (keeping their rows with some of their dummies dropped would
lump treated rows into the reference period); the coverage table and ``notes`` say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd

from bayes_pool.design.did import DiDDesign, Family, PanelRoles, PreparedDiD, check_family
from bayes_pool.errors import InputError

Control = Literal["never", "notyet"]
CONTROLS: tuple[str, ...] = get_args(Control)
DEFAULT_CONTROL: Control = "notyet"
"""Not-yet-treated controls, the default of R ``etwfe`` (``cgroup = "notyet"``) and Stata
``jwdid``, so users comparing with them see the same number."""

Level = Literal["unit", "cohort"]
"""What absorbs unit levels in the staggered models: unit effects, or cohort dummies."""
LEVELS: tuple[str, ...] = get_args(Level)

EVENT = "_event_time"
"""Column of the prepared frame holding the (unbinned) event time in periods."""
FIRST = "_first_treated"
"""Column holding the first treated period (0 for never-treated units)."""
TIME_VALUE = "_time_value"
"""Column holding the numeric time (the design's ``time`` column is a string category)."""


def event_term(k: int) -> str:
    """Column name of the event-time-``k`` dummy (a valid identifier): ``event_m2``, ``event_p0``."""
    return f"event_{'m' if k < 0 else 'p'}{abs(k)}"


def event_label(k: int) -> str:
    """The estimates-table label of event time ``k``: ``event_time_-2``, ``event_time_0`` ..."""
    return f"event_time_{k}"


def effect_level(frame: pd.DataFrame, unit: str, family: str) -> tuple[Level, str]:
    """Unit effects or cohort dummies for the ETWFE and event-study models, and why.

    The rule: a logit on short panels -- the median unit has at most one row per observed
    period -- takes cohort dummies (Wooldridge 2023; R ``etwfe`` and Stata ``jwdid`` do the
    same for nonlinear models): with a handful of rows per unit, unit dummies are incidental
    parameters and every unit whose outcome never varies is perfectly predicted. Linear
    outcomes, and repeated cross-sections with many rows per unit and period (the provinces of
    the studies), keep unit effects.
    """
    periods = frame[TIME_VALUE].nunique()
    per_unit = float(frame[unit].value_counts().median())
    if family == "bernoulli" and per_unit <= periods:
        return "cohort", (f"cohort dummies: logit on a short panel (median {per_unit:g} rows "
                          f"per {unit} over {periods} periods; Wooldridge 2023)")
    kind = "linear outcome" if family != "bernoulli" else (
        f"median {per_unit:g} rows per {unit} over {periods} periods")
    return "unit", f"{unit} effects: {kind}"


def cohort_from_mapping(units: pd.Series, adoption: Mapping[str, float]) -> pd.Series:
    """Adoption time of each row's unit from a ``unit -> adoption time`` mapping (0 if absent).

    For the study ``pooling-did``:
    ``frame["cohort"] = cohort_from_mapping(frame["province"], contract.ADOPTION_YEAR)``.
    """
    return units.map(dict(adoption)).fillna(0).astype("int64").rename("cohort")


@dataclass(frozen=True)
class StaggeredDesign(PanelRoles):
    """Column roles of a staggered-adoption design.

    Parameters
    ----------
    outcome, treatment, unit, time, covariates, family
        As in :class:`~bayes_pool.design.DiDDesign` (the first four are :class:`PanelRoles`);
        ``time`` must be numeric (a year).
    cohort : str
        Column with the unit's adoption time (first treated time), 0 or empty if never treated.
    period_length : int, optional
        Length of one event-time period in ``time`` units; default the smallest gap between
        consecutive observed times.
    window : (int, int)
        Lowest and highest event time; rows outside are binned into the end points.
    reference : int
        Event time left out as the reference (the last period before adoption).
    """

    cohort: str
    covariates: tuple[str, ...] = ()
    family: Family = "bernoulli"
    period_length: int | None = None
    window: tuple[int, int] = (-2, 4)
    reference: int = -1

    def __post_init__(self):
        check_family(self.family)
        object.__setattr__(self, "covariates", tuple(self.covariates))
        lo, hi = self.window
        if not lo <= self.reference < 0 <= hi:
            raise ValueError(f"window {self.window} must contain the reference period "
                             f"{self.reference} (< 0) and event time 0")

    @property
    def did(self) -> DiDDesign:
        """The plain TWFE DiD design on the same columns."""
        return DiDDesign(outcome=self.outcome, treatment=self.treatment, unit=self.unit,
                         time=self.time, covariates=self.covariates, family=self.family)

    def prepare(self, data: pd.DataFrame) -> PreparedStaggered:
        """Validate the frame, build event time and cohorts, and return the estimation sample.

        Raises :class:`~bayes_pool.errors.InputError` when the cohort or time column is
        missing or not numeric, the cohort varies within a unit, or the treatment disagrees
        with the cohort (``treatment = 1`` exactly when ``cohort > 0`` and ``time >= cohort``).
        """
        for col in (self.cohort, self.time):
            if col not in data.columns:
                raise InputError(f"missing column {col!r} required by the staggered design; "
                                 f"columns present: {sorted(map(str, data.columns))}")
        time = pd.to_numeric(data[self.time], errors="coerce")
        bad = data[self.time][time.isna() & data[self.time].notna()]
        if len(bad):
            raise InputError(f"column {self.time!r} (time) must be numeric for event time; "
                             f"{len(bad)} row(s) have values such as "
                             f"{sorted(map(str, pd.unique(bad)))[:5]}")
        cohort = pd.to_numeric(data[self.cohort], errors="coerce")
        bad = data[self.cohort][cohort.isna() & data[self.cohort].notna()
                                & (data[self.cohort].astype(str).str.strip() != "")]
        if len(bad):
            raise InputError(f"column {self.cohort!r} (cohort) must hold a time or 0/empty for "
                             f"never treated; {len(bad)} row(s) have values such as "
                             f"{sorted(map(str, pd.unique(bad)))[:5]}")
        cohort = cohort.fillna(0)
        per_unit = cohort.groupby(data[self.unit].astype(str)).nunique()
        if (per_unit > 1).any():
            shown = per_unit.index[per_unit > 1].tolist()[:10]
            raise InputError(f"column {self.cohort!r} (cohort) must be constant within each "
                             f"{self.unit!r}; it varies in {int((per_unit > 1).sum())} unit(s): "
                             f"{shown}")
        base = data.assign(**{TIME_VALUE: time, FIRST: cohort})
        expected = ((cohort > 0) & (time >= cohort)).astype(int)
        treat = pd.to_numeric(data[self.treatment], errors="coerce")
        wrong = treat.notna() & (treat != expected)
        if wrong.any():
            ex = data.loc[wrong, [self.unit, self.time, self.cohort, self.treatment]].head(5)
            raise InputError(
                f"column {self.treatment!r} disagrees with cohort {self.cohort!r} in "
                f"{int(wrong.sum())} row(s) (expected 1 exactly when cohort > 0 and "
                f"{self.time} >= cohort); e.g. {ex.to_dict('records')}")
        inner = DiDDesign(outcome=self.outcome, treatment=self.treatment, unit=self.unit,
                          time=self.time, covariates=(*self.covariates, TIME_VALUE, FIRST),
                          family=self.family)
        prepared = inner.prepare(base)
        return _build(self, prepared)


@dataclass(frozen=True)
class PreparedStaggered:
    """A validated staggered-adoption sample with event time, cohorts and their coverage.

    ``frame`` holds every complete row (the TWFE sample, always-treated units included);
    :attr:`event_frame` the event-study and ETWFE sample (without always-treated units).
    """

    design: StaggeredDesign
    frame: pd.DataFrame
    n_input: int
    n_incomplete: int
    period_length: int
    always_treated: tuple[str, ...]
    switchers: tuple[str, ...]
    never_treated: tuple[str, ...]
    coverage: pd.DataFrame
    event_times: tuple[int, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def did(self) -> PreparedDiD:
        """The whole sample as a plain prepared DiD (for the TWFE benchmark)."""
        cols = self.design.did.columns
        return PreparedDiD(design=self.design.did, frame=self.frame[cols].copy(),
                           n_input=self.n_input, n_incomplete=self.n_incomplete,
                           switchers=self.switchers)

    @property
    def event_frame(self) -> pd.DataFrame:
        """Rows of units that are ever untreated in the sample, with the event-time dummies."""
        keep = ~self.frame[self.design.unit].isin(self.always_treated)
        return self.frame[keep].reset_index(drop=True)

    @property
    def event_terms(self) -> list[str]:
        """Dummy columns of the estimated event-time bins (reference and dropped bins left out)."""
        return [event_term(k) for k in self.event_times]

    @property
    def n_obs(self) -> int:
        return len(self.frame)


def _build(design: StaggeredDesign, prepared: PreparedDiD) -> PreparedStaggered:
    d = design
    frame = prepared.frame.copy()
    time = frame[TIME_VALUE].to_numpy(dtype=float)
    times = np.unique(time)
    if d.period_length is not None:
        if d.period_length < 1:
            raise InputError(f"period_length must be a positive number of {d.time!r} units, "
                             f"got {d.period_length}")
        length = int(d.period_length)
    else:
        length = int(np.diff(times).min()) if len(times) > 1 else 1
    first = frame[FIRST].to_numpy(dtype=float)
    treated_unit = first > 0
    event = np.where(treated_unit, np.floor((time - first) / length), np.nan)
    frame[EVENT] = event
    # first treated period: the first observed time at or after adoption (Wooldridge's cohort)
    first_obs = np.array([times[times >= g].min() if g > 0 and (times >= g).any() else 0.0
                          for g in first])
    frame[FIRST] = first_obs
    unit = frame[d.unit]
    untreated_rows = frame[d.treatment].groupby(unit).min()
    ever_treated = frame[d.treatment].groupby(unit).max()
    always = tuple(sorted(untreated_rows.index[untreated_rows == 1]))
    switchers = tuple(sorted(untreated_rows.index[(untreated_rows == 0) & (ever_treated == 1)]))
    never = tuple(sorted(ever_treated.index[ever_treated == 0]))

    lo, hi = d.window
    binned = np.clip(event, lo, hi)
    at_reference = set(frame.loc[binned == d.reference, d.unit])
    notes, rows, estimated = [], [], []
    for k in range(lo, hi + 1):
        mask = binned == k
        label = event_label(k) if lo < k < hi else (f"event_time <= {k}" if k == lo
                                                    else f"event_time >= {k}")
        cells = frame.loc[mask, [d.unit, TIME_VALUE]].drop_duplicates().sort_values(
            [d.unit, TIME_VALUE])
        units = sorted(set(cells[d.unit]))
        by_unit = "; ".join(f"{u} ({', '.join(str(int(t)) for t in cells.loc[cells[d.unit] == u, TIME_VALUE])})"
                            for u in units)
        n_rows = int(mask.sum())
        identifying = [u for u in units if u not in always]
        if k == d.reference:
            status = "reference"
        elif not units:
            status = "empty"
        elif not identifying:
            status = "dropped: only always-treated units"
            notes.append(f"{label} is filled only by always-treated {d.unit}(s) {units}: not "
                         f"identified apart from their {d.unit} effects; not estimated")
        elif k < d.reference and not at_reference.intersection(identifying):
            # every row of such a unit falls in an estimated bin, so its bins add up to its
            # unit (or cohort) indicator: one of them must be its reference instead
            status = "dropped: its units are never observed at the reference period"
            notes.append(f"{label} is filled only by {d.unit}(s) {identifying}, never observed at "
                         f"the reference event time {d.reference}: with {d.unit} or cohort "
                         f"effects their bins are identified only up to a constant, so {label} "
                         f"is not estimated and serves as their reference (their later bins "
                         f"are measured from it)")
        else:
            status = "estimated"
            estimated.append(k)
        rows.append({"event_time": k, "label": label, "term": event_term(k),
                     "units": by_unit, "n_units": len(units),
                     "identifying_units": ", ".join(identifying), "n_rows": n_rows,
                     "n_rows_identifying": int((mask & ~unit.isin(always).to_numpy()).sum()),
                     "status": status})
    if always:
        notes.append(f"always-treated {d.unit}(s) {list(always)} (treated in every observed "
                     f"period) are left out of the event-study and ETWFE samples: never seen "
                     f"untreated, they carry no before-after contrast")
    if not estimated:
        raise InputError("no event-time bin is filled by a unit observed both before and after "
                         f"adoption (coverage: {[(r['label'], r['status']) for r in rows]})")
    for k in estimated:
        frame[event_term(k)] = (binned == k).astype(int)
    coverage = pd.DataFrame(rows)
    return PreparedStaggered(design=d, frame=frame, n_input=prepared.n_input,
                             n_incomplete=prepared.n_incomplete, period_length=length,
                             always_treated=always, switchers=switchers, never_treated=never,
                             coverage=coverage, event_times=tuple(estimated), notes=tuple(notes))


def coverage_text(prepared: PreparedStaggered) -> list[str]:
    """One line per event-time bin: ``event_time 0: Ningxia (2016); Qinghai (2016) -- estimated``."""
    return [f"{r.label}: {r.units or '(no rows)'} -- {r.status}"
            for r in prepared.coverage.itertuples()]


# ------------------------------------------------ choices both backends make the same way ---

def cell_name(g: float, t: float) -> str:
    """Column label of a cohort x period cell: ``g2016_t2018``."""
    return f"g{int(g)}_t{int(t)}"


def cell_columns(frame: pd.DataFrame, *, control: Control = DEFAULT_CONTROL) -> dict[str, dict]:
    """The cohort x period indicators of the ETWFE design, built on a prepared event frame.

    Returns ``{column: {"g", "t", "post", "label"}}`` in cohort then period order; adds the
    0/1 columns (``cell_g<g>_t<t>``) to ``frame`` in place.
    """
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {sorted(CONTROLS)}, got {control!r}")
    time = frame[TIME_VALUE].to_numpy(dtype=float)
    first = frame[FIRST].to_numpy(dtype=float)
    times = np.unique(time)
    cohorts = sorted(set(first[first > 0]))
    if not cohorts:
        raise InputError("no cohort is first treated inside the observed periods; nothing to "
                         "estimate with ETWFE")
    if control == "never" and not (first == 0).any():
        raise InputError("control='never' needs never-treated units, and there are none; "
                         "use control='notyet'")
    cells = {}
    for g in cohorts:
        pre = times[times < g]
        for t in times:
            if t < g and (control == "notyet" or t == pre.max()):
                continue
            col = f"cell_{cell_name(g, t)}"
            frame[col] = ((first == g) & (time == t)).astype(int)
            cells[col] = {"g": g, "t": t, "post": bool(t >= g), "label": cell_name(g, t)}
    return cells


def control_note(control: str) -> str:
    """What a control group means, for the row note."""
    return ("controls: not-yet-treated (R etwfe's default; untreated rows of later cohorts "
            "and never-treated units)" if control == "notyet" else
            "controls: never-treated (each cohort's pre-periods but the last are placebo cells)")


def resolve_level(prepared: PreparedStaggered, level: Level | None) -> tuple[str, str]:
    """The level asked for, or :func:`effect_level`'s rule when None."""
    d = prepared.design
    if level is None:
        return effect_level(prepared.event_frame, d.unit, d.family)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {list(LEVELS)} or None, got {level!r}")
    return level, f"{d.unit if level == 'unit' else 'cohort'} effects (asked for)"


def event_times(prepared: PreparedStaggered, control: Control) -> tuple[int, ...]:
    """The event times estimated under ``control``: all (``never``) or the lags (``notyet``)."""
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {list(CONTROLS)}, got {control!r}")
    return tuple(k for k in prepared.event_times if control == "never" or k >= 0)


def es_control_note(control: str, reference: int) -> str:
    """What the event study's control group is, for the row note."""
    if control == "notyet":
        return ("controls: not-yet-treated (R etwfe's default): lags only, pre-adoption rows "
                "of later adopters are controls; no leads estimated")
    return f"controls: never-treated; leads and lags, reference event time {reference}"
