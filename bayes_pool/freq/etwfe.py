r"""Wooldridge's (2023) extended TWFE for staggered adoption, frequentist (statsmodels logit).

One treatment indicator per adoption cohort :math:`g` (first treated period) and period
:math:`t \ge g`, so every (g, t) cell has its own effect and no already-treated unit ever
serves as a control:

.. math::

    \operatorname{logit} P(y_{it}=1) = \sum_{g}\sum_{s \ge g} \delta_{gs}\,
    1[g_i = g,\ t = s] + X_{it}\gamma + \lambda_t + \alpha_{k(i)}

(identity link for ``family = "gaussian"``), with :math:`\alpha` unit effects (``level="unit"``,
which nest the cohort effects) or cohort effects (``level="cohort"``, Wooldridge's pooled
form). By default (``level=None``) a logit on short panels takes cohort effects and everything
else unit effects (:func:`bayes_pool.design.staggered.effect_level` states the rule). With
``control="notyet"`` (the default, as R ``etwfe`` and Stata ``jwdid``) only the :math:`t \ge g`
cells enter, so the untreated rows of later cohorts are controls too; with
``control="never"`` each cohort also gets indicators for its pre-adoption periods except the
last one (reference :math:`g - 1`), so only never-treated units identify the time effects
(the pre-period cells are placebo estimates, reported but not aggregated). Covariates enter
linearly (not interacted with cohort and period; a stated simplification of Wooldridge).

The ATT of a cell on the probability scale is the average over its treated rows of
:math:`p_{it} - p_{it}^{(0)}`, the fitted probability with and without the cell's indicator;
the overall ATT averages over all treated cell rows, i.e. weights cells by their size. SEs
come from the delta method on the (clustered) covariance of the coefficients; for a linear
outcome that covariance is CRV1 as fixest / ``reghdfe`` (unit dummies not counted in K) with
t(G - 1) p-values and intervals, as :mod:`bayes_pool.freq.did`.

Cohorts treated in every observed period (adopted before the first period) cannot be
compared with anyone at adoption: :mod:`bayes_pool.design.staggered` leaves their units out.

References
----------
Wooldridge, J. M. (2023). Simple approaches to nonlinear difference-in-differences with panel
data. *The Econometrics Journal* 26(3), C31-C66. doi:10.1093/ectj/utad016
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import linalg, stats
from scipy.special import expit

from bayes_pool import estimates
from bayes_pool.errors import InputError
from bayes_pool.design.staggered import (DEFAULT_CONTROL, FIRST, TIME_VALUE, Control, Level,
                                        PreparedStaggered, cell_columns, control_note,
                                        resolve_level)
from bayes_pool.freq import did as freq_did
from bayes_pool.freq.ols import (check_vcov, critical_value, fit_vcov, inference_df, quoted,
                                 vcov_note)

CovType = freq_did.CovType


def switch_off_effects(params: np.ndarray, cov: np.ndarray, exog: np.ndarray,
                       targets: dict[str, tuple[np.ndarray, list[int]]], *,
                       family: str, df: float | None = None) -> pd.DataFrame:
    r"""Average effects of switching indicators off, with delta-method SEs.

    For each target ``name -> (rows, columns)``: the mean over ``rows`` of
    :math:`F(x_i\beta) - F(x_i^{(0)}\beta)`, :math:`x_i^{(0)}` the row with ``columns`` set to
    0 and :math:`F` the inverse link (expit, or identity for ``gaussian``). The gradient is the
    mean of :math:`f(x_i\beta) x_i - f(x_i^{(0)}\beta) x_i^{(0)}`; SEs are
    :math:`\sqrt{J V J^\top}`; p-values from t(``df``), or the normal when ``df`` is None
    (:func:`bayes_pool.freq.ols.inference_df` of the fit).
    """
    names, est, jac = [], [], []
    for name, (rows, cols) in targets.items():
        x1 = exog[rows]
        x0 = x1.copy()
        x0[:, cols] = 0.0
        if family == "bernoulli":
            p1, p0 = expit(x1 @ params), expit(x0 @ params)
            est.append(float(np.mean(p1 - p0)))
            jac.append(((p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0).mean(0))
        else:
            est.append(float(np.mean((x1 - x0) @ params)))
            jac.append((x1 - x0).mean(0))
        names.append(name)
    jac = np.vstack(jac)
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", jac, cov, jac), 0, None))
    est = np.asarray(est)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * (stats.norm.sf(np.abs(est / se)) if df is None
                 else stats.t.sf(np.abs(est / se), df))
    return pd.DataFrame({"estimate": est, "se": se, "p_value": p}, index=names)


def _readable(name: str, unit: str, time: str) -> str:
    """A design column as users know it: ``C(Q('_first_treated'))[T.3.0]`` -> ``cohort == 3.0``."""
    name = re.sub(r"Q\('([^']*)'\)", r"\1", name)
    name = re.sub(r"^C\((.*)\)\[T\.(.*)\]$", r"\1 == \2", name)
    return (name.replace(FIRST, "cohort").replace(TIME_VALUE, time)
            .replace("cell_", "cohort x period cell "))


def check_design(model, *, family: str, unit: str, time: str) -> None:
    """Raise :class:`InputError` naming the design columns that make the fit impossible.

    Empty indicators, columns linearly dependent on the others (QR with pivoting), and, for a
    logit, 0/1 indicators whose rows all share one outcome (quasi-complete separation: the
    coefficient runs off to infinity) -- instead of a bare ``Singular matrix`` later.
    """
    X = np.asarray(model.exog, dtype=float)
    y = np.asarray(model.endog, dtype=float)
    names = list(model.exog_names)
    show = [_readable(n, unit, time) for n in names]
    empty = [show[j] for j in range(X.shape[1]) if not np.any(X[:, j])]
    if empty:
        raise InputError(f"{len(empty)} design column(s) have no rows in the estimation sample: "
                         f"{empty[:10]}; drop the cohort or period, or use another control group")
    if family == "bernoulli":
        separated = []
        for j in range(X.shape[1]):
            on = X[:, j] == 1
            if names[j] != "Intercept" and np.isin(X[:, j], (0, 1)).all() and \
                    np.ptp(y[on]) == 0:
                separated.append(f"{show[j]} (all {int(on.sum())} rows have outcome {y[on][0]:g})")
        if separated:
            raise InputError(f"the logit is separated: {len(separated)} indicator(s) predict the "
                             f"outcome perfectly: {separated[:10]}; merge or drop those cohorts or "
                             f"periods, or use a linear outcome model")
    _, r, piv = linalg.qr(X, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > diag[0] * 1e-10).sum())
    if rank < X.shape[1]:
        dependent = [show[j] for j in sorted(piv[rank:])]
        raise InputError(f"the design is singular (rank {rank} of {X.shape[1]} columns): "
                         f"{dependent[:10]} are linear combinations of the other columns; drop "
                         f"them, or merge the cohorts or periods involved")


def fit_logit_dummies(frame: pd.DataFrame, *, outcome: str, unit: str, rhs: list[str],
                      family: str, cov_type: CovType, level_column: str, time: str = "time"):
    """statsmodels logit/OLS of ``outcome`` on ``rhs`` plus level and time dummies.

    With unit dummies (``level_column == unit``) a logit first drops the units whose outcome
    never varies (as Stata does); the design is checked (:func:`check_design`) before fitting.
    A linear fit's clustered SEs are CRV1 as fixest / ``reghdfe``
    (:func:`bayes_pool.freq.ols.fit_clustered`: unit dummies not counted in K, t(G - 1)
    inference); a logit's are Stata's ``logit, vce(cluster)`` (G/(G - 1) only), as the TWFE
    DiD logit's; ``iid`` and ``hc1`` as :func:`bayes_pool.freq.ols.fit_vcov`.
    Returns ``(result, frame_used, dropped_units)``.
    """
    cov_type = check_vcov(cov_type)
    dropped: tuple[str, ...] = ()
    if family == "bernoulli" and level_column == unit:
        varies = frame.groupby(unit)[outcome].nunique() > 1
        dropped = tuple(sorted(varies.index[~varies]))
        frame = frame[frame[unit].isin(varies.index[varies])].reset_index(drop=True)
        if frame.empty:
            raise InputError(f"the outcome {outcome!r} never varies within any {unit}: a logit "
                             f"with {unit} effects has nothing to fit; use cohort effects")
    formula = (f"{quoted(outcome)} ~ "
               + " + ".join([*map(quoted, rhs), f"C({quoted(level_column)})",
                             f"C({quoted(TIME_VALUE)})"]))
    model = (smf.logit if family == "bernoulli" else smf.ols)(formula, data=frame)
    check_design(model, family=family, unit=unit, time=time)
    if family == "bernoulli":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            result = fit_vcov(model, cov_type, linear=False, groups=frame[unit], disp=0,
                              maxiter=200)
    else:  # unit dummies sit inside the unit clusters: not in K
        result = fit_vcov(model, cov_type, linear=True, groups=frame[unit],
                          nested=freq_did.unit_dummies(model, unit))
    return result, frame, dropped


@dataclass
class FreqETWFEResult:
    """A fitted frequentist ETWFE with per-cell and overall ATTs, beside the TWFE benchmark."""

    prepared: PreparedStaggered
    result: object
    cells: dict[str, dict]
    att: pd.DataFrame
    twfe: freq_did.FreqDiDResult
    n_obs: int
    n_treated: int
    cell_n: dict[str, int]
    dropped_units: tuple[str, ...]
    control: str
    level: str
    cov_type: str
    level_reason: str = ""

    def tidy(self, *, study: str, table: str = "staggered", column: str = "etwfe"
             ) -> pd.DataFrame:
        """Rows: overall ``att`` (column ``column``), per-cell ``att`` (column ``g<g>_t<t>``)
        and the TWFE AME of the treatment (column ``twfe``, quantity ``att``)."""
        d = self.prepared.design
        z = critical_value(self.result)
        base = (f"ETWFE (Wooldridge 2023) {d.family}; {control_note(self.control)}; "
                f"{self.level_reason or self.level + ' effects'}; "
                f"{se_note(self.cov_type, d)}; delta method")
        if self.prepared.always_treated:
            base += f"; always-treated {d.unit}s left out: {', '.join(self.prepared.always_treated)}"
        if self.dropped_units:
            base += f"; dropped {len(self.dropped_units)} {d.unit}(s) whose outcome never varies"
        rows = []
        for name, r in self.att.iterrows():
            if name == "overall":
                col, note, n = column, base + "; cells weighted by size", self.n_treated
            else:
                info = self.cells[f"cell_{name}"]
                col, n = name, self.cell_n[name]
                note = base + ("" if info["post"] else "; pre-treatment cell (placebo)")
            rows.append(estimates.row(
                study=study, table=table, column=col, term=d.treatment, quantity="att",
                source="frequentist", estimate=r["estimate"], se=r["se"],
                ci_low=r["estimate"] - z * r["se"], ci_high=r["estimate"] + z * r["se"],
                p_value=r["p_value"], n_obs=n, note=note))
        tw = self.twfe.tidy(study=study, table=table, column="twfe")
        tw = tw[(tw["term"] == d.treatment) & (tw["quantity"] == "ame")].copy()
        tw["quantity"] = "att"
        tw["note"] = tw["note"] + "; TWFE AME over all rows (the paper's estimator), for comparison"
        return estimates.concat(estimates.frame(rows), tw)


def se_note(cov_type: str, design) -> str:
    """Which SE the rows carry and its convention (:func:`bayes_pool.freq.ols.vcov_note`)."""
    return vcov_note(cov_type, linear=design.family != "bernoulli", cluster=design.unit)


def fit_etwfe(prepared: PreparedStaggered, *, control: Control = DEFAULT_CONTROL,
              level: Level | None = None, cov_type: CovType = "cluster") -> FreqETWFEResult:
    """Fit ETWFE on the event sample and the TWFE benchmark on the whole sample.

    ``level=None`` applies :func:`~bayes_pool.design.staggered.effect_level` (cohort dummies for a
    logit on short panels, unit effects otherwise).
    """
    level, reason = resolve_level(prepared, level)
    d = prepared.design
    frame = prepared.event_frame.copy()
    cells = cell_columns(frame, control=control)
    level_col = d.unit if level == "unit" else FIRST
    result, used, dropped = fit_logit_dummies(
        frame, outcome=d.outcome, unit=d.unit, rhs=[*cells, *d.covariates], family=d.family,
        cov_type=cov_type, level_column=level_col, time=d.time)
    names = list(result.model.exog_names)
    exog = np.asarray(result.model.exog)
    idx = {c: names.index(quoted(c)) for c in cells}
    targets = {}
    post = [c for c, i in cells.items() if i["post"]]
    for c, info in cells.items():
        rows = np.flatnonzero(used[c].to_numpy() == 1)
        if len(rows):
            targets[info["label"]] = (rows, [idx[c]])
    treated_rows = np.flatnonzero(used[post].to_numpy().sum(axis=1) > 0)
    targets = {"overall": (treated_rows, [idx[c] for c in post]), **targets}
    att = switch_off_effects(np.asarray(result.params), np.asarray(result.cov_params()), exog,
                             targets, family=d.family, df=inference_df(result))
    twfe = freq_did.fit_did(prepared.did, cov_type=cov_type)
    return FreqETWFEResult(prepared=prepared, result=result, cells=cells, att=att, twfe=twfe,
                           n_obs=int(result.nobs), n_treated=len(treated_rows),
                           cell_n={i["label"]: int(used[c].sum()) for c, i in cells.items()},
                           dropped_units=dropped, control=control, level=level,
                           cov_type=cov_type, level_reason=reason)
