"""Placebo (randomization-inference) test of a staggered DiD logit.

Each placebo draw picks as many "treated" units as the data has, at random, gives each a random
adoption year from a candidate list, rebuilds the treatment as ``1[time >= adoption year]`` and
refits the TWFE logit of :mod:`bayes_pool.freq.did` (unit and time dummies, SE clustered by
unit). The actual estimate is then read against the placebo distribution: the share of placebo
p-values at or below the actual one (what Fig. 3 of Zhang & Chen 2024 shows) and the
randomization-inference p-value of the coefficient, the share of draws with
``|placebo coef| >= |actual coef|``.

Speed: the design matrix is built once (only the treatment column changes), each refit starts
from the actual fit's solution with the treatment coefficient at zero (the same start in every
draw, so results do not depend on the order or the number of workers), statsmodels' rank check
runs once, the AME and its delta-method SE are computed from the fitted linear predictor (the
same formula as ``get_margeff(dummy=True)``), and draws fan out through
:func:`bayes_pool.parallel.map_refits`. Draw ``i`` uses ``SeedSequence(seed).spawn(n)[i]``.
About 30 ms a refit at n = 6,300 with 44 columns (one core), so 500 draws take ~10-15 s on
two cores. With ``refits_dir`` each finished draw is kept on disk and an interrupted loop
resumes.

A draw in which no placebo unit switches within the sample (every placebo unit adopts before
the first period or after the last) leaves the treatment collinear with the unit dummies; such
assignments are redrawn, so the reference distribution is the randomization distribution
conditional on the placebo effect being identified (``redraws`` counts them).
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
from bayes_pool.parallel import map_refits

log = logging.getLogger(__name__)

Vcov = Literal["cluster", "iid"]
VCOVS: tuple[str, ...] = get_args(Vcov)

MAX_REDRAWS = 1000
"""Give up on a draw after this many unidentified placebo assignments."""


@dataclass(frozen=True)
class _Shared:
    """What every refit needs, sent to each worker once."""

    X: np.ndarray            # constant, treatment (column 1), covariates, unit and time dummies
    y: np.ndarray
    groups: np.ndarray       # unit code of each row (clusters)
    time: np.ndarray         # numeric period of each row
    units: np.ndarray        # unit labels, index = unit code
    start: np.ndarray        # start values: the actual fit with the treatment coefficient at 0
    adoption_years: np.ndarray
    n_treated: int
    vcov: str


@dataclass
class PlaceboResult:
    """Placebo draws and the actual fit read against them.

    Attributes
    ----------
    draws
        One row per draw: ``draw``, ``treated_units``, ``adoption_years`` (";"-joined),
        ``n_switching`` (placebo units that switch within the sample), ``redraws``, ``coef``,
        ``se``, ``p_value``, ``ame``, ``ame_se``, ``ame_p_value`` (delta method), ``converged``.
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

    @property
    def ri_p_value(self) -> float:
        """Share of draws with ``|placebo coef| >= |actual coef|`` (two-sided RI p-value)."""
        coef = self.draws["coef"].dropna().to_numpy()
        return float(np.mean(np.abs(coef) >= abs(self.actual["coef"])))

    @property
    def share_p_below(self) -> float:
        """Share of placebo p-values at or below the actual fit's p-value."""
        p = self.draws["p_value"].dropna().to_numpy()
        return float(np.mean(p <= self.actual["p_value"]))

    @property
    def ks_uniform(self):
        """Kolmogorov-Smirnov test of the placebo p-values against Uniform(0, 1).

        Under a valid test and no effect the placebo p-values are uniform; a small KS p-value
        says the clustered-SE p-values are miscalibrated for this design (e.g. too few
        switching clusters) -- or that the placebo assignments pick up real effects.
        """
        return stats.kstest(self.draws["p_value"].dropna().to_numpy(), "uniform")

    def tidy(self, *, study: str, table: str = "fig3", column: str = "(2)") -> pd.DataFrame:
        """Rows: the actual ``p_value``, ``ri_p_value``, ``share_p_below`` and ``ks_uniform_p``.

        The two shares carry their binomial Monte Carlo SE in ``se``.
        """
        d = self.design
        n = int(self.draws["coef"].notna().sum())
        note = (f"placebo: {n} draws, {self.n_treated_units} random treated {d.unit}s, "
                f"adoption years from {list(self.adoption_years)}, seed {self.seed}, "
                f"{self.vcov} SE")

        def mc_se(p):
            return float(np.sqrt(p * (1 - p) / max(n, 1)))

        base = dict(study=study, table=table, column=column, term=d.treatment,
                    source="frequentist", n_obs=self.n_obs)
        ri, below = self.ri_p_value, self.share_p_below
        rows = [
            estimates.row(**base, quantity="p_value", estimate=self.actual["p_value"],
                          p_value=self.actual["p_value"],
                          note=f"actual fit, TWFE logit, "
                               + (f"SE clustered by {d.unit}" if self.vcov == "cluster"
                                  else "iid SE")),
            estimates.row(**base, quantity="ri_p_value", estimate=ri, se=mc_se(ri), p_value=ri,
                          note=note + "; share of |placebo coef| >= |actual coef|"),
            estimates.row(**base, quantity="share_p_below", estimate=below, se=mc_se(below),
                          note=note + "; share of placebo p-values <= the actual p-value"),
            estimates.row(**base, quantity="ks_uniform_p", estimate=float(self.ks_uniform.pvalue),
                          p_value=float(self.ks_uniform.pvalue),
                          note=note + "; KS test of placebo p-values against Uniform(0, 1)"),
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
    """Logit by Newton from ``start``; treatment coefficient (column 1), its SE and p-value,
    and the AME of the 0/1 treatment with its delta-method SE and p-value.

    The AME is the mean discrete change ``Lambda(eta0 + b) - Lambda(eta0)``; its gradient in
    the parameters is ``mean(lambda(eta1) x1 - lambda(eta0) x0)`` (rows with the treatment set
    to 1 and 0) -- exactly what statsmodels' ``get_margeff(dummy=True)`` computes, without
    rebuilding the margins machinery for every refit.
    """
    kw = dict(cov_type="cluster", cov_kwds={"groups": groups}) if vcov == "cluster" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the design is the actual fit's with one column swapped: its rank was checked once
        res = Logit(y, X, check_rank=False).fit(start_params=start, method="newton",
                                                   maxiter=100, disp=0, **kw)
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
    return dict(coef=b, se=float(res.bse[1]), p_value=float(res.pvalues[1]), ame=ame,
                ame_se=ame_se, ame_p_value=float(2 * stats.norm.sf(abs(ame / ame_se))),
                converged=bool(res.mle_retvals.get("converged", True))), res


def _switching(treat: np.ndarray, groups: np.ndarray, n_units: int) -> int:
    """How many units have both treated and untreated rows."""
    on = np.bincount(groups, weights=treat, minlength=n_units)
    size = np.bincount(groups, minlength=n_units)
    return int(np.sum((on > 0) & (on < size)))


def _placebo_draw(seed_seq, shared: _Shared) -> dict:
    """One placebo assignment and refit (module level, so dask can ship it)."""
    rng = np.random.default_rng(seed_seq)
    n_units = len(shared.units)
    for redraws in range(MAX_REDRAWS):
        codes = rng.choice(n_units, size=shared.n_treated, replace=False)
        years = rng.choice(shared.adoption_years, size=shared.n_treated, replace=True)
        adopt = np.full(n_units, np.inf)
        adopt[codes] = years
        treat = (shared.time >= adopt[shared.groups]).astype(float)
        n_switch = _switching(treat, shared.groups, n_units)
        if n_switch:
            break
    else:
        raise InputError(f"no placebo assignment in {MAX_REDRAWS} tries lets a unit switch "
                         f"treatment within the sample; adoption years "
                         f"{list(shared.adoption_years)} lie outside the observed periods "
                         f"{sorted(set(shared.time))}")
    X = shared.X.copy()
    X[:, 1] = treat
    out, _ = _fit(shared.y, X, shared.groups, shared.start, shared.vcov)
    order = np.argsort(codes)
    return dict(treated_units=";".join(shared.units[codes[order]]),
                adoption_years=";".join(str(int(y)) if float(y).is_integer() else str(y)
                                        for y in years[order]),
                n_switching=n_switch, redraws=redraws, **out)


def placebo(data: PreparedDiD | pd.DataFrame, design: DiDDesign | None = None, *,
            seed: int, adoption_years, n_draws: int = 500, n_treated_units: int | None = None,
            vcov: Vcov = "cluster", workers: int | None = 1, scheduler: str | None = None,
            progress=None, refits_dir: str | Path | None = None) -> PlaceboResult:
    """Placebo test of a TWFE DiD logit by random treated units and random adoption years.

    Parameters
    ----------
    data
        A :class:`~bayes_pool.design.PreparedDiD`, or a frame to prepare with ``design``.
    design
        Needed when ``data`` is a frame; ignored otherwise.
    seed
        Root seed; draw ``i`` uses ``numpy.random.SeedSequence(seed).spawn(n_draws)[i]``.
    adoption_years
        Candidate adoption years, drawn uniformly with replacement for each placebo unit; must
        be comparable with the (numeric) time column. Years at or before the first period make
        a placebo unit always treated, years after the last never treated.
    n_draws
        Number of placebo draws (the paper: 500).
    n_treated_units
        Placebo units per draw; default the number of ever-treated units in the data.
    vcov
        ``"cluster"`` (by unit, as the paper and :mod:`bayes_pool.freq.did`) or ``"iid"``
        (the logit's information matrix) for the p-values of the actual and placebo fits.
        With few treated clusters the clustered p-values over-reject, so under no effect their
        placebo distribution is not uniform; the RI p-value of the coefficient does not use
        the SE at all.
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
        bad = sorted(frame.loc[np.isnan(time), d.time].astype(str).unique())[:10]
        raise InputError(f"time column {d.time!r} must be numeric for placebo adoption years; "
                         f"found {bad}")
    years = np.asarray(sorted(adoption_years), dtype=float)
    if years.size == 0:
        raise InputError("adoption_years is empty; give the candidate placebo adoption years")
    ever = frame.groupby(d.unit)[d.treatment].max()
    n_treated = int(ever.sum()) if n_treated_units is None else int(n_treated_units)
    if not 1 <= n_treated < len(units):
        raise InputError(f"n_treated_units must be between 1 and {len(units) - 1} "
                         f"(the {d.unit}s in the sample), got {n_treated}")
    with threadpool_limits(limits=1):  # small matrices: one BLAS thread is fastest
        actual, res = _fit(y, X, codes, None, vcov)
    start = np.asarray(res.params, dtype=float).copy()
    start[1] = 0.0
    shared = _Shared(X=X, y=y, groups=codes, time=time, units=np.asarray(units, dtype=object),
                     start=start, adoption_years=years, n_treated=n_treated, vcov=vcov)
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
                         checkpoint=str(store.folder) if store else None, resumed=resumed)


def checkpoint_key(shared: _Shared, seed: int) -> str:
    """Checkpoint key of a placebo loop: its inputs, seed, settings and code."""
    data = fingerprint_arrays(shared.X, shared.y, shared.groups, shared.time, shared.units,
                              shared.start)
    return checkpoint.key(_placebo_draw, data=data, seed=seed, settings=dict(
        adoption_years=shared.adoption_years.tolist(), n_treated=shared.n_treated,
        vcov=shared.vcov, max_redraws=MAX_REDRAWS))


def _require(design):
    if design is None:
        raise InputError("placebo() got a DataFrame without a design; pass design=DiDDesign(...)"
                         " or a PreparedDiD")
    return design
