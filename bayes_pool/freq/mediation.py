r"""Frequentist mediation: the stepwise (Baron-Kenny) regressions, the Sobel test, and natural
effects on the outcome's scale by g-computation with a seeded cluster bootstrap.

The model (Zhang & Chen 2024, Eqs. 2-4), with optional unit and time fixed effects:

.. math::

    M_i &= \alpha_0 + a D_i + X_i\alpha + \lambda_{k(i)} + \gamma_{t(i)} + e_i,
           \qquad e_i \sim N(0, \sigma_M^2) \\
    g(E[Y_i]) &= \rho_0 + d D_i + b M_i + X_i\rho + \lambda'_{k(i)} + \gamma'_{t(i)}

with ``g`` the logit (``family="bernoulli"``) or the identity (``"gaussian"``). The mediator
step is OLS, the outcome step a logit (or OLS); both have standard errors clustered by unit
(heteroskedasticity-robust HC1 without a unit). With both a unit and a time column the two
steps are the TWFE DiD of :mod:`bayes_pool.freq.did` -- the outcome step is that DiD with the
mediator as one more covariate -- so their coefficients and AMEs are the ones Table 3 uses.

Indirect effect. The Sobel test is of the product :math:`ab` (outcome's link scale). The
indirect, direct and total effects reported on the outcome's own scale (probability for a
logit) are the *natural* effects by g-computation (Imai, Keele & Tingley 2010), the same
formula :mod:`bayes_pool.bayes.mediation` applies to every posterior draw
(:func:`natural_effects`): for each row, the mediator under treatment ``t'`` is
:math:`M(t') = \hat\mu_M + a (t' - D_i) + \sigma_M \varepsilon`, and

.. math::

    \bar Y(t, t') = \frac1n \sum_i E_\varepsilon\, g^{-1}\big(\eta_i + d (t - D_i)
                    + b (M_i(t') - M_i)\big)

is integrated over :math:`\varepsilon \sim N(0, 1)` by Gauss-Hermite quadrature. Then
indirect (NIE) = :math:`\bar Y(1,1) - \bar Y(1,0)`, direct (pure NDE) =
:math:`\bar Y(1,0) - \bar Y(0,0)`, total = their sum and proportion mediated =
indirect / total. Their intervals are percentile intervals of a cluster bootstrap by unit,
stratified by whether the unit's treatment changes (so every replicate keeps units that
identify the effect under unit fixed effects); rows are resampled when there is no unit.
With few switching units that bootstrap (and the Sobel test's clustered SEs) rest on those
few clusters and over-reject (the row notes give the measured null-world size); the
randomization test of :mod:`bayes_pool.freq.mediation_ri` (row ``indirect_ri``) is the test
of the indirect effect shown to keep its size there.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from threadpoolctl import threadpool_limits

from bayes_pool import estimates
# MediationDesign stays importable from here for the tests that import it so
from bayes_pool.design.mediation import MediationDesign, PreparedMediation  # noqa: F401
from bayes_pool.estimands.mediation import EFFECTS, natural_effects
from bayes_pool.freq import did as freq_did
from bayes_pool.freq.ols import critical_value, fit_vcov, quoted, vcov_note

log = logging.getLogger(__name__)

NULL_WORLD_SIZE = {
    "sobel": ("over-rejects with few switchers: null-world size at 5% with 3 switchers 19.0% "
              "(13.8-25.1%) without and 19.5% (14.2-25.7%) with region x wave shocks, 200 "
              "seeds each, docs/inference_mediation.md"),
    "bootstrap": ("the indirect effect's percentile interval excluded 0 in 22% (16-29%, 159 "
                  "seeds) and 24% (17-31%, 155 seeds) of null worlds without / with region x "
                  "wave shocks, docs/inference_mediation.md"),
}
"""What the null-world study (docs/inference_mediation.md: 3 switchers, no indirect effect)
measured for the Sobel test and the bootstrap interval of the indirect effect."""


# ------------------------------------------------------------------------ the steps ---

@dataclass
class _Step:
    """One fitted regression step: coefficients, SEs, p-values, AMEs, sample and predictor."""

    coef: pd.Series
    se: pd.Series
    p_value: pd.Series
    ame: pd.DataFrame
    rows: np.ndarray  # positions in the prepared frame
    eta: np.ndarray  # fitted linear predictor on those rows
    scale: float  # residual variance (OLS)
    dropped_units: tuple[str, ...] = ()
    crit: float | None = None  # the 95% quantile of the step's inference, with an explicit vcov

    @property
    def n_obs(self) -> int:
        return len(self.rows)


def _fit_step(prepared: PreparedMediation, *, outcome_step: bool, vcov=None) -> _Step:
    d = prepared.design
    terms = [d.treatment, *((d.mediator,) if outcome_step else ()), *d.covariates]
    family = d.family if outcome_step else "gaussian"
    frame = prepared.frame
    if d.unit and d.time:
        res = freq_did.fit_did(d.did(outcome_step=outcome_step).prepare(frame),
                               cov_type=vcov or "cluster")
        keep = ~frame[d.unit].isin(res.dropped_units).to_numpy()
        return _Step(coef=_by_term(res.result.params, terms), se=_by_term(res.result.bse, terms),
                     p_value=_by_term(res.result.pvalues, terms), ame=res.margeff,
                     rows=np.flatnonzero(keep), eta=np.asarray(res.result.fittedvalues),
                     scale=float(res.result.scale), dropped_units=res.dropped_units,
                     crit=res.critical_value if vcov else None)
    y = d.outcome if outcome_step else d.mediator
    keep = np.ones(len(frame), dtype=bool)
    dropped: tuple[str, ...] = ()
    if family == "bernoulli" and d.unit:
        varies = frame.groupby(d.unit)[y].nunique() > 1
        dropped = tuple(sorted(varies.index[~varies]))
        keep = frame[d.unit].isin(varies.index[varies]).to_numpy()
    sub = frame[keep].reset_index(drop=True)
    effects = [f"C({quoted(c)})" for c in (d.unit, d.time) if c]
    formula = f"{quoted(y)} ~ " + " + ".join([*map(quoted, terms), *effects])
    fit_kw = (dict(cov_type="cluster", cov_kwds={"groups": pd.factorize(sub[d.unit])[0]})
              if d.unit else dict(cov_type="HC1"))

    def fit(model, **kw):  # vcov None: statsmodels' conventions, as before vcov existed
        return model.fit(**kw, **fit_kw) if vcov is None else fit_vcov(
            model, vcov, linear=family != "bernoulli", groups=sub[d.unit] if d.unit else None,
            nested=freq_did.unit_dummies(model, d.unit) if d.unit else 0, **kw)
    if family == "bernoulli":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            res = fit(smf.logit(formula, data=sub), disp=0, maxiter=200)
        ame = freq_did._logit_margeff(res, terms)
        scale = 1.0
    else:
        res = fit(smf.ols(formula, data=sub))
        keys = [quoted(t) for t in terms]
        ame = pd.DataFrame({"ame": res.params[keys].to_numpy(), "se": res.bse[keys].to_numpy(),
                            "p_value": res.pvalues[keys].to_numpy()}, index=terms)
        scale = float(res.scale)
    return _Step(coef=_by_term(res.params, terms), se=_by_term(res.bse, terms),
                 p_value=_by_term(res.pvalues, terms), ame=ame, rows=np.flatnonzero(keep),
                 eta=np.asarray(res.fittedvalues), scale=scale, dropped_units=dropped,
                 crit=critical_value(res) if vcov else None)


def _by_term(values: pd.Series, terms: list[str]) -> pd.Series:
    return pd.Series([float(values[quoted(t)]) for t in terms], index=terms)


def _plug_in(prepared: PreparedMediation, med: _Step, out: _Step) -> dict[str, float]:
    """Natural effects at the point estimates (g-computation over the outcome step's rows)."""
    d = prepared.design
    frame = prepared.frame.iloc[out.rows]
    t = frame[d.treatment].to_numpy(float)
    m = frame[d.mediator].to_numpy(float)
    a, b, dd = med.coef[d.treatment], out.coef[d.mediator], out.coef[d.treatment]
    base = out.eta - dd * t - b * m
    mu0 = med.eta[out.rows] - a * t
    eff = natural_effects(base, mu0, a, b, dd, np.sqrt(med.scale), family=d.family)
    return {k: float(v[0]) for k, v in eff.items()}


# ------------------------------------------------------------------------ bootstrap ---

def _matrices(prepared: PreparedMediation):
    """Design matrices of both steps: treatment, (mediator), covariates, then one-hot unit
    columns (spanning the intercept) or an intercept, then time dummies (first level dropped)."""
    d = prepared.design
    f = prepared.frame
    parts = [f[[d.treatment, *d.covariates]].to_numpy(float)]
    if d.unit:
        parts.append(pd.get_dummies(f[d.unit], dtype=float).to_numpy())
    else:
        parts.append(np.ones((len(f), 1)))
    if d.time:
        parts.append(pd.get_dummies(f[d.time], drop_first=True, dtype=float).to_numpy())
    x_med = np.column_stack(parts)
    x_out = np.column_stack([x_med[:, :1], f[d.mediator].to_numpy(float), x_med[:, 1:]])
    return x_med, x_out


def _resample(prepared: PreparedMediation, rng: np.random.Generator) -> np.ndarray:
    """Row positions of one bootstrap replicate (clusters by unit, stratified by switching)."""
    d = prepared.design
    f = prepared.frame
    if not d.unit:
        return rng.integers(0, len(f), len(f))
    groups = f.groupby(d.unit).indices
    switch = set(prepared.switchers)
    rows = []
    for stratum in ([u for u in groups if u in switch], [u for u in groups if u not in switch]):
        if stratum:
            for u in rng.choice(len(stratum), size=len(stratum), replace=True):
                rows.append(groups[stratum[u]])
    return np.concatenate(rows)


def _replicate(prepared: PreparedMediation, x_med, x_out, rows) -> dict[str, float] | None:
    """Refit both steps on bootstrap rows; None when the effect is not identified there."""
    d = prepared.design
    f = prepared.frame
    y = f[d.outcome].to_numpy(float)
    m = f[d.mediator].to_numpy(float)
    t = f[d.treatment].to_numpy(float)
    rows_out = rows
    if d.family == "bernoulli" and d.unit:
        units = f[d.unit].to_numpy()[rows]
        ok = pd.Series(y[rows]).groupby(units).transform("nunique").to_numpy() > 1
        rows_out = rows[ok]
    if len(np.unique(t[rows_out])) < 2:
        return None
    xm, xo = x_med[rows], x_out[rows_out]
    cm, co = xm.any(axis=0), xo.any(axis=0)  # drop columns of levels not drawn
    xm, xo = xm[:, cm], xo[:, co]
    if np.linalg.matrix_rank(xo) < xo.shape[1] or np.linalg.matrix_rank(xm) < xm.shape[1]:
        return None
    ols = sm.OLS(m[rows], xm).fit()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if d.family == "bernoulli":
                res = sm.Logit(y[rows_out], xo).fit(disp=0, maxiter=100)
            else:
                res = sm.OLS(y[rows_out], xo).fit()
    except (np.linalg.LinAlgError, ValueError) as exc:
        log.debug("bootstrap replicate failed: %s", exc)
        return None
    a, dd, b = ols.params[0], res.params[0], res.params[1]
    eta = xo @ res.params
    base = eta - dd * t[rows_out] - b * m[rows_out]
    mu0 = x_med[rows_out][:, cm] @ ols.params - a * t[rows_out]
    eff = natural_effects(base, mu0, a, b, dd, np.sqrt(ols.scale), family=d.family)
    return {k: float(v[0]) for k, v in eff.items()}


def bootstrap_effects(prepared: PreparedMediation, *, n_boot: int = 200,
                      seed: int | np.random.SeedSequence | None = None) -> tuple[pd.DataFrame, int]:
    """Natural effects in ``n_boot`` cluster-bootstrap replicates.

    Returns the replicates (one row each, columns :data:`EFFECTS`) and how many replicates
    were skipped because the effect was not identified in them.
    """
    rng = np.random.default_rng(seed)
    x_med, x_out = _matrices(prepared)
    out, failed = [], 0
    # Many small fits: multi-threaded BLAS only adds contention (tens of times slower on a
    # busy machine), so each replicate runs single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(n_boot):
            r = _replicate(prepared, x_med, x_out, _resample(prepared, rng))
            if r is None:
                failed += 1
            else:
                out.append(r)
    if failed:
        log.info("%d of %d bootstrap replicates skipped (effect not identified)", failed, n_boot)
    return pd.DataFrame(out, columns=list(EFFECTS)), failed


# ----------------------------------------------------------------------------- result ---

@dataclass
class FreqMediationResult:
    """The stepwise fits, Sobel test, plug-in natural effects and their bootstrap."""

    prepared: PreparedMediation
    mediator_step: _Step
    outcome_step: _Step
    effects: dict[str, float]
    boot: pd.DataFrame
    n_boot_failed: int
    ri: object = None  # bayes_pool.freq.mediation_ri.IndirectRI, when computed
    vcov: str | None = None  # None: clustered by unit (HC1 without one), as statsmodels

    @property
    def sobel(self) -> dict[str, float]:
        """Product :math:`ab` (outcome link scale), its Sobel SE, z and two-sided p-value."""
        d = self.prepared.design
        a, sa = self.mediator_step.coef[d.treatment], self.mediator_step.se[d.treatment]
        b, sb = self.outcome_step.coef[d.mediator], self.outcome_step.se[d.mediator]
        se = float(np.sqrt(a**2 * sb**2 + b**2 * sa**2))
        z = a * b / se
        return {"estimate": float(a * b), "se": se, "z": float(z),
                "p_value": float(2 * stats.norm.sf(abs(z)))}

    def tidy(self, *, study: str, tables: tuple[str, str] = ("mediator_model", "outcome_model"),
             column: str | None = None, mediation_column: str | None = None) -> pd.DataFrame:
        """Rows of the estimates table.

        ``tables[0]``: ``beta`` of the treatment in the mediator step; ``tables[1]``: ``beta``
        and ``ame`` of treatment and mediator in the outcome step (both in ``column``,
        default the mediator's name); table ``mediation`` (column ``mediation_column``,
        default the mediator's name), term = treatment: ``indirect``, ``direct``, ``total``,
        ``proportion_mediated`` (bootstrap) and ``indirect_ab`` (Sobel).
        """
        d = self.prepared.design
        column = column or d.mediator
        mediation_column = mediation_column or d.mediator
        z = stats.norm.ppf(0.5 + estimates.CI_PROB / 2)
        se_kind, med_kind = ((f"SE clustered by {d.unit}" if d.unit else "HC1 robust SE"),) * 2 \
            if self.vcov is None else (vcov_note(self.vcov, linear=lin, cluster=d.unit)
                                       for lin in (d.family != "bernoulli", True))
        fe = ", ".join(f"{c} effects" for c in (d.unit, d.time) if c) or "no fixed effects"
        rows = []

        def add(table, col, term, quantity, est, se, p, n, note, crit=None):
            q = crit or z
            rows.append(estimates.row(study=study, table=table, column=col, term=term,
                                      quantity=quantity, source="frequentist", estimate=est,
                                      se=se, ci_low=est - q * se, ci_high=est + q * se,
                                      p_value=p, n_obs=n, note=note))

        med, out = self.mediator_step, self.outcome_step
        add(tables[0], column, d.treatment, "beta", med.coef[d.treatment], med.se[d.treatment],
            med.p_value[d.treatment], med.n_obs,
            f"OLS of {d.mediator} on {d.treatment}; covariates, {fe}; {med_kind}", med.crit)
        note = f"{'logit' if d.family == 'bernoulli' else 'OLS'} of {d.outcome}; covariates, {fe}; {se_kind}"
        if out.dropped_units:
            note += f"; dropped {len(out.dropped_units)} {d.unit}(s) whose outcome never varies"
        for term in (d.treatment, d.mediator):
            add(tables[1], column, term, "beta", out.coef[term], out.se[term],
                out.p_value[term], out.n_obs, note, out.crit)
            m = out.ame.loc[term]
            add(tables[1], column, term, "ame", m["ame"], m["se"], m["p_value"], out.n_obs,
                note + "; delta method", out.crit)
        s = self.sobel
        add("mediation", mediation_column, d.treatment, "indirect_ab", s["estimate"], s["se"],
            s["p_value"], out.n_obs, f"a*b on the outcome's link scale; Sobel SE from the "
            f"steps' SEs ({se_kind})" + (f"; {NULL_WORLD_SIZE['sobel']}"
                                         if _few_switchers(self.prepared) else ""))
        lo_q, hi_q = (1 - estimates.CI_PROB) / 2, (1 + estimates.CI_PROB) / 2
        n_ok = len(self.boot)
        boot_note = (f"natural effect by g-computation (Gauss-Hermite over the mediator "
                     f"residual); {'cluster' if d.unit else 'row'} bootstrap, "
                     f"{n_ok} replicates, percentile CI; p from bootstrap SE"
                     + _few_switchers_note(self.prepared))
        if self.n_boot_failed:
            boot_note += f"; {self.n_boot_failed} replicate(s) skipped (not identified)"
        for q in EFFECTS:
            draws = self.boot[q].dropna().to_numpy() if n_ok else np.array([])
            est = self.effects[q]
            se = float(np.std(draws, ddof=1)) if len(draws) > 1 else np.nan
            lo, hi = (np.quantile(draws, [lo_q, hi_q]) if len(draws) > 1 else (np.nan, np.nan))
            p = float(2 * stats.norm.sf(abs(est / se))) if se and np.isfinite(se) else np.nan
            rows.append(estimates.row(study=study, table="mediation", column=mediation_column,
                                      term=d.treatment, quantity=q, source="frequentist",
                                      estimate=est, se=se, ci_low=float(lo), ci_high=float(hi),
                                      p_value=p, n_obs=out.n_obs, note=boot_note))
        if self.ri is not None:
            from bayes_pool.freq.mediation_ri import RI_NOTE
            rows.append(estimates.row(
                study=study, table="mediation", column=mediation_column, term=d.treatment,
                quantity="indirect_ri", source="frequentist", estimate=self.effects["indirect"],
                se=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=self.ri.p_value,
                n_obs=out.n_obs,
                note=RI_NOTE.format(draws=self.ri.draws, p_a=self.ri.p_a, p_b=self.ri.p_b)))
        return estimates.frame(rows)


def _few_switchers(prepared: PreparedMediation) -> bool:
    """Unit effects identified by at most 10 switching units."""
    return bool(prepared.design.unit) and 0 < len(prepared.switchers) <= 10


def _few_switchers_note(prepared: PreparedMediation) -> str:
    """What resampling the switching units does when there are few of them."""
    k = len(prepared.switchers)
    if not _few_switchers(prepared):
        return ""
    dup = 1 - np.prod(np.arange(1, k + 1) / k)  # 1 - k!/k^k
    return (f"; the {k} switching {prepared.design.unit}(s) are resampled with replacement, "
            f"so {dup:.0%} of replicates duplicate a switcher and the interval rests on {k} "
            f"clusters: not valid with few switchers (see indirect_ri); "
            f"{NULL_WORLD_SIZE['bootstrap']}")


def fit_mediation(prepared: PreparedMediation, *, bootstrap: int = 200,
                  seed: int | np.random.SeedSequence | None = None,
                  ri_draws: int = 0, vcov: str | None = None) -> FreqMediationResult:
    """Fit both steps, the plug-in natural effects, ``bootstrap`` cluster-bootstrap
    replicates seeded by ``seed`` (0 replicates: no bootstrap, intervals NaN) and, with
    ``ri_draws`` > 0 and unit and time columns, the randomization test of the indirect
    effect (:mod:`bayes_pool.freq.mediation_ri`) seeded by a child of ``seed``. ``vcov``: the
    steps' SEs (None: the module docstring's default); the Sobel SE follows them."""
    med = _fit_step(prepared, outcome_step=False, vcov=vcov)
    out = _fit_step(prepared, outcome_step=True, vcov=vcov)
    effects = _plug_in(prepared, med, out)
    if bootstrap > 0:
        boot, failed = bootstrap_effects(prepared, n_boot=bootstrap, seed=seed)
    else:
        boot, failed = pd.DataFrame(columns=list(EFFECTS)), 0
    ri = None
    if ri_draws > 0 and prepared.design.unit and prepared.design.time:
        from bayes_pool.freq.mediation_ri import indirect_ri  # it imports this module
        parent = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        ri = indirect_ri(prepared, float(out.p_value[prepared.design.mediator]),
                         draws=ri_draws, seed=parent.spawn(1)[0])
    return FreqMediationResult(prepared=prepared, mediator_step=med, outcome_step=out,
                               effects=effects, boot=boot, n_boot_failed=failed, ri=ri,
                               vcov=vcov)
