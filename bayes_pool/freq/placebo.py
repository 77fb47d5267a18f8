"""Placebo test and randomization inference (RI) for a staggered DiD logit.

Each placebo draw gives a placebo treatment to randomly chosen units, rebuilds it as
``1[time >= adoption year]`` and refits the TWFE logit of :mod:`bayes_pool.freq.did` (unit
and time dummies, SE clustered by unit). Two ways to draw an assignment:

``adoption_years=None`` (randomization inference, the default)
    the data's own adoption schedule -- every ever-treated unit's first treated period,
    always-treated units included -- is permuted across units (optionally within strata of
    units of similar size, ``match_size``), and draws in which a different number of units
    switches within the sample are redrawn. Every draw thus has the data's number of
    switchers and the data's adoption years: under the sharp null of no effect the actual
    assignment is one draw of this distribution. Two RI p-values come out, both
    ``(1 + #{|s_b| >= |s|}) / (1 + B)``: **RI-t** with ``s`` the clustered t-statistic of the
    placebo fit (MacKinnon & Webb 2020: studentizing protects against treated units of
    unusual size or variance) and **RI-beta** with ``s`` the coefficient.
``adoption_years=[...]`` (the paper's Fig. 3)
    ``n_treated_units`` random units each get a year drawn from the list (Zhang & Chen 2024's
    placebo); draws in which no unit switches are redrawn.

The placebo p-values are also read as the paper does (the share at or below the actual one).

Speed: the design matrix is built once (only the treatment column changes), each refit starts
from the actual fit's solution with the treatment coefficient at zero (the same start in every
draw, so results do not depend on the order or the number of workers), statsmodels' rank check
runs once, the AME and its delta-method SE are computed from the fitted linear predictor (the
same formula as ``get_margeff(dummy=True)``), and draws fan out through
:func:`bayes_pool.parallel.map_refits`. Draw ``i`` uses ``SeedSequence(seed).spawn(n)[i]``.
About 30 ms a refit at n = 6,300 with 44 columns (one core), so 500 draws take ~10-15 s on
two cores. With ``refits_dir`` each finished draw is kept on disk and an interrupted loop
resumes.

Measured size (``benchmarks/null_world.py``, :data:`NULL_WORLD_RATES`): each row's note quotes
the rejection rate at 5% its p-value showed in null worlds without and with province x year
shocks.

Reference: MacKinnon & Webb (2020), J Econometrics 218(2):435-450,
doi:10.1016/j.jeconom.2020.04.024.

Over 400 lines on purpose: one procedure (design matrix, adoption schedules, draws,
fan-out, result) whose steps share the record of a placebo run (``_Shared``).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit
from statsmodels.discrete.discrete_model import Logit
from threadpoolctl import threadpool_limits

from bayes_pool import checkpoint, estimates
from bayes_pool.checkpoint import Checkpoint, fingerprint_arrays
from bayes_pool.design import DiDDesign, PreparedDiD
from bayes_pool.errors import InputError
from bayes_pool.freq.ols import fit_clustered
from bayes_pool.parallel import map_refits

log = logging.getLogger(__name__)

Vcov = Literal["cluster", "iid"]
VCOVS: tuple[str, ...] = get_args(Vcov)

MAX_REDRAWS = 1000
"""Give up on a draw after this many placebo assignments that fail the draw's condition."""

NULL_WORLD_RATES: dict[str, str] = {
    "clustered": ("23.5% [17.8, 30.0] without province x year shocks, "
                  "20.0% [14.7, 26.2] with (200 seeds each)"),
    "clustered_t": ("22.0% [16.5, 28.4] without province x year shocks, "
                    "18.0% [12.9, 24.0] with (200 seeds each)"),
    "model_based": ("4.0% [1.7, 7.7] without province x year shocks, "
                    "5.0% [2.4, 9.0] with (200 seeds each)"),
    "ri_beta": ("14.5% [9.9, 20.2] without province x year shocks, "
                "17.5% [12.5, 23.5] with (200 seeds each)"),
    "ri_t": ("3.0% [1.1, 6.4] without province x year shocks, "
             "7.5% [4.3, 12.1] with (200 seeds each)"),
    "clustered_lpm": ("21.5% [16.0, 27.8] without province x year shocks, "
                      "22.5% [16.9, 28.9] with (200 seeds each)"),
    "wild": ("1.5% [0.3, 4.3] without province x year shocks, "
             "1.0% [0.1, 3.6] with (200 seeds each)"),
}
"""Rejection rate at 5% measured for each inference method in the null-world study
(``benchmarks/null_world.py``; table in ``benchmarks/results/null_world.md``), as the text a
row's note quotes. Keys: ``clustered``, ``model_based``, ``ri_beta``, ``ri_t``, ``wild``."""


def measured(method: str) -> str:
    """Note fragment with the null-world rejection rate of ``method`` (empty if not measured)."""
    rate = NULL_WORLD_RATES.get(method)
    return f"; null-world rejection rate at 5%: {rate}" if rate else ""


@dataclass(frozen=True)
class _Shared:
    """What every refit needs, sent to each worker once."""

    X: np.ndarray            # constant, treatment (column 1), covariates, unit and time dummies
    y: np.ndarray
    groups: np.ndarray       # unit code of each row (clusters)
    time: np.ndarray         # numeric period of each row
    units: np.ndarray        # unit labels, index = unit code
    start: np.ndarray        # start values: the actual fit with the treatment coefficient at 0
    adoption_years: np.ndarray  # uniform mode: candidate years; permute mode: the schedule
    n_treated: int
    vcov: str
    permute: bool = False    # permute the data's schedule (RI) instead of uniform years
    strata: np.ndarray | None = None  # size stratum of each unit code (permute within)
    n_switching: int = 0     # permute mode: switchers every draw must have


@dataclass
class PlaceboResult:
    """Placebo draws and the actual fit read against them.

    Attributes
    ----------
    draws
        One row per draw: ``draw``, ``treated_units``, ``adoption_years`` (";"-joined),
        ``n_switching`` (placebo units that switch within the sample), ``redraws``, ``coef``,
        ``se``, ``t`` (coef / se), ``p_value``, ``ame``, ``ame_se``, ``ame_p_value`` (delta
        method), ``converged``.
    actual
        The actual fit: the same fields.
    """

    design: DiDDesign
    draws: pd.DataFrame
    actual: dict
    n_obs: int
    seed: int
    adoption_years: tuple
    n_treated_units: int
    vcov: str = "cluster"
    dropped_units: tuple[str, ...] = field(default=())
    checkpoint: str | None = None
    """Folder the draws were kept in (None: not kept)."""
    resumed: int = 0
    """Draws read back from the checkpoint instead of refitted."""
    assignment: str = "uniform"
    """``permute`` (the data's schedule permuted: randomization inference) or ``uniform``."""
    n_switching: int = 0
    """Units of the data whose treatment switches within the sample."""
    match_size: int = 0
    """Size strata the schedule was permuted within (0: none)."""

    def _ri(self, column: str) -> float:
        stat = self.draws[column].dropna().to_numpy()
        return float((1 + np.sum(np.abs(stat) >= abs(self.actual[column]))) / (1 + len(stat)))

    @property
    def ri_p_value(self) -> float:
        """RI-beta: ``(1 + #{|placebo coef| >= |actual coef|}) / (1 + B)``."""
        return self._ri("coef")

    @property
    def ri_t_p_value(self) -> float:
        """RI-t (MacKinnon & Webb 2020): ``(1 + #{|placebo t| >= |actual t|}) / (1 + B)``,
        t the placebo fit's coefficient over its (clustered) SE."""
        return self._ri("t")

    @property
    def share_p_below(self) -> float:
        """Share of placebo p-values at or below the actual fit's p-value."""
        p = self.draws["p_value"].dropna().to_numpy()
        return float(np.mean(p <= self.actual["p_value"]))

    @property
    def ks_uniform(self):
        """Kolmogorov-Smirnov test of the placebo p-values against Uniform(0, 1).

        Descriptive only: the placebo p-values of ONE data set share its data and are not an
        independent sample, so this KS p-value is not a valid test of the SEs (uniformity is a
        property across data sets; see ``benchmarks/null_world.py``).
        """
        return stats.kstest(self.draws["p_value"].dropna().to_numpy(), "uniform")

    def tidy(self, *, study: str, table: str = "placebo", column: str = "placebo") -> pd.DataFrame:
        """Rows: the actual ``p_value``, ``ri_t_p_value``, ``ri_p_value`` (RI-beta),
        ``share_p_below`` and ``ks_uniform_p``. The two RI p-values carry their binomial
        Monte Carlo SE in ``se``, as does the share."""
        d = self.design
        n = int(self.draws["coef"].notna().sum())
        how = (f"the data's adoption schedule permuted across {d.unit}s"
               + (f" within {self.match_size} size strata" if self.match_size else "")
               + f", {self.n_switching} switching {d.unit}s in every draw"
               if self.assignment == "permute" else
               f"{self.n_treated_units} random treated {d.unit}s, adoption years from "
               f"{list(self.adoption_years)}")
        note = f"placebo: {n} draws, {how}, seed {self.seed}, {self.vcov} SE"
        se_label = f"SE clustered by {d.unit}" if self.vcov == "cluster" else "iid SE"

        def mc_se(p):
            return float(np.sqrt(p * (1 - p) / max(n, 1)))

        base = dict(study=study, table=table, column=column, term=d.treatment,
                    source="frequentist", n_obs=self.n_obs)
        ri, ri_t, below = self.ri_p_value, self.ri_t_p_value, self.share_p_below
        actual_rate = measured("clustered" if self.vcov == "cluster" else "model_based")
        ks = float(self.ks_uniform.pvalue)
        rows = [
            estimates.row(**base, quantity="p_value", estimate=self.actual["p_value"],
                          p_value=self.actual["p_value"],
                          note=f"actual fit, TWFE logit, {se_label}{actual_rate}"),
            estimates.row(**base, quantity="ri_t_p_value", estimate=ri_t, se=mc_se(ri_t),
                          p_value=ri_t,
                          note=note + "; RI-t: (1 + #{|placebo t| >= |actual t|}) / (1 + B), "
                                      f"t = coef / {se_label}" + measured("ri_t")),
            estimates.row(**base, quantity="ri_p_value", estimate=ri, se=mc_se(ri), p_value=ri,
                          note=note + "; RI-beta: (1 + #{|placebo coef| >= |actual coef|}) "
                                      "/ (1 + B)" + measured("ri_beta")),
            estimates.row(**base, quantity="share_p_below", estimate=below, se=mc_se(below),
                          note=note + "; share of placebo p-values <= the actual p-value "
                                      "(the paper's reading of Fig. 3)"),
            estimates.row(**base, quantity="ks_uniform_p", estimate=ks, p_value=ks,
                          note=note + "; KS of this data set's placebo p-values against "
                                      "Uniform(0, 1): descriptive, not a valid test (the draws "
                                      "share one data set)"),
        ]
        return estimates.frame(rows)


def design_matrix(prepared: PreparedDiD) -> tuple[np.ndarray, np.ndarray, list[str], tuple]:
    """Outcome, and the TWFE logit's matrix: constant, treatment, covariates, dummies.

    Units whose outcome never varies are dropped first, as in :func:`bayes_pool.freq.did.fit_did`.
    Returns ``(y, X, column names, dropped units)``; the frame rows kept are those of
    ``prepared.frame`` whose unit is not dropped, in order.
    """
    frame, dropped = _kept_frame(prepared)
    d = prepared.design
    dummies = [pd.get_dummies(frame[c], prefix=c, drop_first=True, dtype=float)
               for c in (d.unit, d.time)]
    X = pd.concat([pd.Series(1.0, index=frame.index, name="const"),
                   frame[[d.treatment, *d.covariates]].astype(float), *dummies], axis=1)
    return frame[d.outcome].to_numpy(dtype=float), X.to_numpy(), list(X.columns), dropped


def _kept_frame(prepared: PreparedDiD) -> tuple[pd.DataFrame, tuple[str, ...]]:
    d = prepared.design
    frame = prepared.frame
    if d.family != "bernoulli":
        raise InputError(f"placebo() refits a logit; design family is {d.family!r}")
    varies = frame.groupby(d.unit)[d.outcome].nunique() > 1
    dropped = tuple(sorted(varies.index[~varies]))
    return frame[frame[d.unit].isin(varies.index[varies])].reset_index(drop=True), dropped


def _fit(y, X, groups, start, vcov="cluster"):
    """Logit by Newton from ``start``; treatment coefficient (column 1), its SE (clustered as
    Stata's ``logit, vce(cluster)``, as :func:`bayes_pool.freq.did.fit_did`), t and p-value, and
    the AME of the 0/1 treatment with its delta-method SE and p-value.

    The AME is the mean discrete change ``Lambda(eta0 + b) - Lambda(eta0)``; its gradient in
    the parameters is ``mean(lambda(eta1) x1 - lambda(eta0) x0)`` (rows with the treatment set
    to 1 and 0) -- exactly what statsmodels' ``get_margeff(dummy=True)`` computes, without
    rebuilding the margins machinery for every refit.
    """
    kw = dict(start_params=start, method="newton", maxiter=100, disp=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the design is the actual fit's with one column swapped: its rank was checked once
        model = Logit(y, X, check_rank=False)
        res = (fit_clustered(model, groups, convention="logit", **kw) if vcov == "cluster"
               else model.fit(**kw))
    params = np.asarray(res.params)
    b = float(params[1])
    eta0 = X @ params - b * X[:, 1]
    p1, p0 = expit(eta0 + b), expit(eta0)
    ame = float(np.mean(p1 - p0))
    d1, d0 = p1 * (1 - p1), p0 * (1 - p0)
    grad = (d1 - d0) @ X / len(y)
    grad[0] = np.mean(d1 - d0)          # constant
    grad[1] = np.mean(d1)               # treatment: 1 in x1, 0 in x0
    ame_se = float(np.sqrt(grad @ np.asarray(res.cov_params()) @ grad))
    se = float(res.bse[1])
    return dict(coef=b, se=se, t=b / se, p_value=float(res.pvalues[1]), ame=ame,
                ame_se=ame_se, ame_p_value=float(2 * stats.norm.sf(abs(ame / ame_se))),
                converged=bool(res.mle_retvals.get("converged", True))), res


def _switching(treat: np.ndarray, groups: np.ndarray, n_units: int) -> int:
    """How many units have both treated and untreated rows."""
    on = np.bincount(groups, weights=treat, minlength=n_units)
    size = np.bincount(groups, minlength=n_units)
    return int(np.sum((on > 0) & (on < size)))


def adoption_schedule(frame: pd.DataFrame, unit: str, time: str, treatment: str) -> pd.Series:
    """Each unit's first treated period (``inf``: never treated), checked to be staggered.

    A unit's treatment must be ``1[time >= adoption]``: raises :class:`InputError` naming the
    units (and their rows) that have a treated row at or before an untreated one.
    """
    t = pd.to_numeric(frame[time], errors="coerce")
    on = frame[treatment].astype(float) > 0
    first_on = t[on].groupby(frame.loc[on, unit]).min()
    last_off = t[~on].groupby(frame.loc[~on, unit]).max()
    units = pd.Index(sorted(frame[unit].unique()))
    adopt = first_on.reindex(units).fillna(np.inf)
    bad = last_off.reindex(units).fillna(-np.inf) >= adopt
    if bad.any():
        rows = int(frame[unit].isin(units[bad]).sum())
        raise InputError(
            f"column {treatment!r} is not a staggered adoption (once treated, always treated) "
            f"in {int(bad.sum())} {unit}(s) ({rows} rows): {list(units[bad][:10])}; the "
            f"permutation placebo needs one adoption period per {unit} -- pass adoption_years "
            f"for the paper's random-year placebo instead")
    return adopt.rename("adoption")


def size_strata(sizes: np.ndarray, n_strata: int) -> np.ndarray:
    """Stratum (0 .. n_strata - 1) of each unit by rank of its row count, near-equal strata;
    ``sizes`` in unit-label order, so ties in row count are broken by label."""
    rank = np.argsort(np.argsort(sizes, kind="stable"), kind="stable")
    return (rank * n_strata) // len(sizes)


def _permuted(rng, shared: _Shared) -> np.ndarray:
    """The schedule permuted across units (within size strata when given)."""
    schedule = shared.adoption_years
    if shared.strata is None:
        return schedule[rng.permutation(len(schedule))]
    out = np.empty_like(schedule)
    for s in np.unique(shared.strata):
        idx = np.flatnonzero(shared.strata == s)
        out[idx] = schedule[idx[rng.permutation(len(idx))]]
    return out


def _uniform(rng, shared: _Shared) -> np.ndarray:
    """``n_treated`` random units, each with a year drawn from the candidate list."""
    adopt = np.full(len(shared.units), np.inf)
    codes = rng.choice(len(shared.units), size=shared.n_treated, replace=False)
    adopt[codes] = rng.choice(shared.adoption_years, size=shared.n_treated, replace=True)
    return adopt


def _placebo_draw(seed_seq, shared: _Shared) -> dict:
    """One placebo assignment and refit (module level, so dask can ship it)."""
    rng = np.random.default_rng(seed_seq)
    n_units = len(shared.units)
    for redraws in range(MAX_REDRAWS):
        adopt = _permuted(rng, shared) if shared.permute else _uniform(rng, shared)
        treat = (shared.time >= adopt[shared.groups]).astype(float)
        n_switch = _switching(treat, shared.groups, n_units)
        if (n_switch == shared.n_switching) if shared.permute else n_switch > 0:
            break
    else:
        want = (f"exactly {shared.n_switching} units to switch" if shared.permute else
                f"a unit to switch; adoption years {list(shared.adoption_years)} lie outside "
                f"the observed periods {sorted(set(shared.time))}")
        raise InputError(f"no placebo assignment in {MAX_REDRAWS} tries lets {want} "
                         f"treatment within the sample")
    X = shared.X.copy()
    X[:, 1] = treat
    out, _ = _fit(shared.y, X, shared.groups, shared.start, shared.vcov)
    codes = np.flatnonzero(np.isfinite(adopt))
    years = adopt[codes]
    return dict(treated_units=";".join(shared.units[codes]),
                adoption_years=";".join(str(int(y)) if float(y).is_integer() else str(y)
                                        for y in years),
                n_switching=n_switch, redraws=redraws, **out)


def placebo(data: PreparedDiD | pd.DataFrame, design: DiDDesign | None = None, *,
            seed: int, adoption_years=None, n_draws: int = 500,
            n_treated_units: int | None = None, match_size: int = 0,
            vcov: Vcov = "cluster", workers: int | None = 1, scheduler: str | None = None,
            progress=None, refits_dir: str | Path | None = None) -> PlaceboResult:
    """Placebo test / randomization inference of a TWFE DiD logit.

    Parameters
    ----------
    data
        A :class:`~bayes_pool.design.PreparedDiD`, or a frame to prepare with ``design``.
    design
        Needed when ``data`` is a frame; ignored otherwise.
    seed
        Root seed; draw ``i`` uses ``numpy.random.SeedSequence(seed).spawn(n_draws)[i]``.
    adoption_years
        ``None`` (default): randomization inference -- permute the data's adoption schedule
        across units, keeping the data's number of switchers (module docstring). A list:
        the paper's placebo -- ``n_treated_units`` random units, each with a year drawn
        uniformly (with replacement) from the list; years at or before the first period make
        a placebo unit always treated, years after the last never treated.
    n_draws
        Number of placebo draws (the paper: 500).
    n_treated_units
        Paper's placebo only: units per draw; default the number of ever-treated units.
    match_size
        Randomization inference only: permute the schedule within this many strata of units
        of similar row count (0: across all units), so a small switcher is replaced by a
        small unit.
    vcov
        ``"cluster"`` (by unit, as the paper and :mod:`bayes_pool.freq.did`) or ``"iid"``
        (the logit's information matrix) for the p-values and the t of RI-t.
    workers, scheduler, progress
        Passed to :func:`bayes_pool.parallel.map_refits` (``workers=1``: in-process;
        ``scheduler``: address of an existing dask scheduler, default
        ``$DASK_SCHEDULER_ADDRESS``).
    refits_dir
        Keep every finished draw in ``refits_dir/<key>/`` (see :mod:`bayes_pool.checkpoint`;
        the key hashes the design matrix, outcome, clusters, periods, seed and settings), so an
        interrupted placebo loop restarted with the same inputs resumes and ends with exactly
        ``n_draws`` draws. ``None``: nothing is written.

    Returns
    -------
    PlaceboResult
    """
    if vcov not in VCOVS:
        raise ValueError(f"vcov must be one of {sorted(VCOVS)}, got {vcov!r}")
    prepared = data if isinstance(data, PreparedDiD) else _require(design).prepare(data)
    d = prepared.design
    y, X, names, dropped = design_matrix(prepared)
    frame, _ = _kept_frame(prepared)
    codes, units = pd.factorize(frame[d.unit], sort=True)
    time = pd.to_numeric(frame[d.time], errors="coerce").to_numpy(dtype=float)
    if np.isnan(time).any():
        bad = frame.loc[np.isnan(time), d.time].astype(str)
        raise InputError(f"time column {d.time!r} must be numeric for placebo adoption years; "
                         f"{len(bad)} rows hold {sorted(bad.unique())[:10]}: recode it to "
                         f"numbers (e.g. the survey year)")
    n_units = len(units)
    permute = adoption_years is None
    strata = None
    n_switch = _switching(frame[d.treatment].to_numpy(dtype=float), codes, n_units)
    if permute:
        years = adoption_schedule(frame, d.unit, d.time, d.treatment).reindex(units).to_numpy()
        n_treated = int(np.isfinite(years).sum())
        if not 1 <= n_treated < n_units or n_switch == 0:
            raise InputError(f"randomization inference needs treated and untreated "
                             f"{d.unit}s and at least one that switches; the data have "
                             f"{n_treated} ever-treated of {n_units}, {n_switch} switching")
        if match_size:
            if not 1 <= match_size <= n_units:
                raise InputError(f"match_size must be between 1 and {n_units} (the {d.unit}s), "
                                 f"got {match_size}")
            strata = size_strata(np.bincount(codes, minlength=n_units), int(match_size))
    else:
        years = np.asarray(sorted(adoption_years), dtype=float)
        if years.size == 0:
            raise InputError("adoption_years is empty; give the candidate placebo adoption "
                             "years, or None to permute the data's own schedule")
        ever = frame.groupby(d.unit)[d.treatment].max()
        n_treated = int(ever.sum()) if n_treated_units is None else int(n_treated_units)
        if not 1 <= n_treated < n_units:
            raise InputError(f"n_treated_units must be between 1 and {n_units - 1} "
                             f"(the {d.unit}s in the sample), got {n_treated}")
    with threadpool_limits(limits=1):  # small matrices: one BLAS thread is fastest
        actual, res = _fit(y, X, codes, None, vcov)
    start = np.asarray(res.params, dtype=float).copy()
    start[1] = 0.0
    shared = _Shared(X=X, y=y, groups=codes, time=time, units=np.asarray(units, dtype=object),
                     start=start, adoption_years=years, n_treated=n_treated, vcov=vcov,
                     permute=permute, strata=strata, n_switching=n_switch)
    # child i of the root seed depends on i only, never on n_draws, the worker or the order
    children = np.random.SeedSequence(seed).spawn(n_draws)
    log.info("placebo: %d draws of %d random %s(s)", n_draws, n_treated, d.unit)
    store, resumed = None, 0
    if refits_dir is not None:
        store = Checkpoint(Path(refits_dir) / checkpoint_key(shared, seed))
        resumed = min(len(store), n_draws)
    out = map_refits(_placebo_draw, children, shared=shared, workers=workers,
                     scheduler=scheduler, progress=progress, checkpoint=store)
    draws = pd.DataFrame(out)
    draws.insert(0, "draw", np.arange(n_draws))
    return PlaceboResult(design=d, draws=draws, actual=actual, n_obs=len(y), seed=seed,
                         adoption_years=tuple(years.tolist()), n_treated_units=n_treated,
                         vcov=vcov, dropped_units=dropped,
                         checkpoint=str(store.folder) if store else None, resumed=resumed,
                         assignment="permute" if permute else "uniform",
                         n_switching=n_switch, match_size=int(match_size) if permute else 0)


def checkpoint_key(shared: _Shared, seed: int) -> str:
    """Checkpoint key of a placebo loop: its inputs, seed, settings and code."""
    data = fingerprint_arrays(shared.X, shared.y, shared.groups, shared.time, shared.units,
                              shared.start)
    return checkpoint.key(_placebo_draw, data=data, seed=seed, settings=dict(
        adoption_years=shared.adoption_years.tolist(), n_treated=shared.n_treated,
        vcov=shared.vcov, max_redraws=MAX_REDRAWS, permute=shared.permute,
        strata=None if shared.strata is None else shared.strata.tolist(),
        n_switching=shared.n_switching))


def _require(design):
    if design is None:
        raise InputError("placebo() got a DataFrame without a design; pass design=DiDDesign(...)"
                         " or a PreparedDiD")
    return design
