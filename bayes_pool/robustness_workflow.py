"""How robust is a run's key estimate to its identifying assumption: the pieces, and the
``robustness/`` folder they are written to.

Each analysis adds :class:`Piece` objects to its :class:`~bayes_pool.workflow.Analysis`
(``analysis.robustness``) from the fits it already made, so the cheap breakdown numbers come
with every run at no extra sampling: Rosenbaum bounds of the k-NN ATT
(:func:`psm_pieces`), the E-value of a logit DiD's odds ratio (:func:`did_pieces`), the
mediation rho at which the indirect effect vanishes (:func:`mediation_pieces`), the
omitted-variable robustness value of an OLS coefficient (:func:`ols_piece`) and the
parallel-trends breakdown of an event study (:func:`event_study_pieces`). A piece whose
function is not in :mod:`bayes_pool.robustness` (parallel trends, binary-outcome mediation:
issue 17, written elsewhere) or does not apply is kept as a "not computed: <why>" line, so
the report says what is missing instead of leaving it out.

:mod:`bayes_pool.robustness_run` writes them into the run folder's ``robustness/`` and
rebuilds them for a finished run (``bayes-pool robustness RUN_DIR``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from bayes_pool import robustness
from bayes_pool.estimands.rosenbaum import breakdown_gamma

GAMMA_MAX = 100.0
"""Largest Gamma on the Rosenbaum curve (the breakdown value itself is not limited)."""
MBAR_GRID = tuple(np.round(np.linspace(0.0, 2.0, 21), 10))
"""Relative-magnitudes bounds Mbar of the parallel-trends breakdown."""


@dataclass
class Piece:
    """One breakdown analysis of one key estimate."""

    name: str
    """File stem of its curve and figure (unique within a run)."""
    analysis: str
    """``rosenbaum``, ``e_value``, ``robustness_value``, ``mediation_rho``, ``parallel_trends``."""
    cell: dict
    """The estimate it bears on: ``table``, ``column``, ``term``, ``quantity``."""
    estimate: float | None
    method: str
    parameter: str
    breakdown: float | None = None
    meaning: str = ""
    status: str = "computed"
    curve: pd.DataFrame | None = None
    make_curve: Callable[[], pd.DataFrame] | None = field(default=None, repr=False)
    """Computes :attr:`curve` when it is first needed: a run writes it, a refit loop that
    wants the breakdown value only (coverage tests) does not pay for it."""
    make_piece: Callable[[], Piece] | None = field(default=None, repr=False)
    """For a :data:`PENDING` piece: computes it (see :func:`resolved`)."""

    @property
    def computed(self) -> bool:
        return self.status == "computed"

    @property
    def has_curve(self) -> bool:
        return self.curve is not None or self.make_curve is not None

    def the_curve(self) -> pd.DataFrame | None:
        """The curve, computed now if it was left for later."""
        if self.curve is None and self.make_curve is not None:
            self.curve = self.make_curve()
        return self.curve


PENDING = "pending"
"""Status of a piece whose analysis costs seconds to a minute (the binary-outcome rho curve,
the parallel-trends sets): it is computed when the run is written (:func:`resolved`), so the
workflows called in loops (coverage tests, refits) do not pay for it."""


def pending(name: str, analysis: str, cell: dict, method: str, parameter: str,
            compute: Callable[[], Piece], estimate: float | None = None) -> Piece:
    """A piece left for :func:`resolved` to compute."""
    return Piece(name=name, analysis=analysis, cell=cell, estimate=estimate, method=method,
                 parameter=parameter, status=PENDING, make_piece=compute)


def resolved(pieces: list[Piece]) -> list[Piece]:
    """The pieces with every pending one computed; one that fails becomes a "not computed"
    line naming the error (an optional analysis never fails a run)."""
    out = []
    for p in pieces:
        if p.status == PENDING:
            try:
                p = p.make_piece()
            except Exception as exc:  # noqa: BLE001 (any failure of an optional analysis)
                p = not_computed(p.name, p.analysis, p.cell, p.method, p.parameter,
                                 f"{type(exc).__name__}: {exc}", estimate=p.estimate)
        out.append(p)
    return out


def not_computed(name: str, analysis: str, cell: dict, method: str, parameter: str,
                 why: str, estimate: float | None = None) -> Piece:
    """A piece that could not be computed, saying why."""
    return Piece(name=name, analysis=analysis, cell=cell, estimate=estimate, method=method,
                 parameter=parameter, status=f"not computed: {why}")


def _stem(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(map(str, parts))).strip("_").lower()


def _cell(table: str, column: str, term: str, quantity: str) -> dict:
    return {"table": str(table), "column": str(column), "term": str(term),
            "quantity": str(quantity)}


# --------------------------------------------------------------------------- unconfoundedness


def rosenbaum_piece(differences, *, cell: dict, estimate: float, what: str,
                    alpha: float = 0.05) -> Piece:
    """Rosenbaum bounds of a matched estimate from its treated-minus-matched differences."""
    name = _stem("rosenbaum", cell["table"], cell["column"])
    flip = estimate < 0  # the bounds test a positive effect: test a negative one on -d
    d = np.asarray(differences, dtype=float)
    d = -d if flip else d
    g = breakdown_gamma(d, alpha=alpha)
    top = min(GAMMA_MAX, max(3.0, 1.5 * g)) if np.isfinite(g) else GAMMA_MAX

    def curve() -> pd.DataFrame:  # seconds: Hodges-Lehmann and CI bounds by bisection
        table = pd.DataFrame(robustness.rosenbaum_bounds(d, np.geomspace(1.0, top, 15),
                                                         alpha=alpha))
        if flip:  # back to the effect's scale
            for lo, hi in (("hl_low", "hl_high"), ("ci_low", "ci_high")):
                table[lo], table[hi] = -table[hi], -table[lo]
        return table

    sign = "negative" if flip else "positive"
    return Piece(name=name, analysis="rosenbaum", cell=cell, estimate=estimate,
                 method=f"Rosenbaum bounds, Wilcoxon signed rank on {what} "
                        f"(Rosenbaum 2002; Stata rbounds)",
                 parameter="Gamma", breakdown=_finite(g),
                 meaning=(f"the {sign} effect is not significant at {alpha:g} (one-sided) even "
                          "without hidden bias (Gamma = 1)" if g <= 1.0 else
                          f"a hidden confounder that multiplies the odds of treatment of two "
                          f"matched units by {_num(g)} makes the {sign} effect no longer "
                          f"significant at {alpha:g} (one-sided)"),
                 make_curve=curve)


def psm_pieces(freq, *, table: str, methods=("knn",)) -> list[Piece]:
    """Rosenbaum bounds of the k-NN ATT (as ``rbounds`` after ``psmatch2``) of a
    :class:`~bayes_pool.freq.psm.PSMResult`."""
    from bayes_pool.estimands.rosenbaum import differences_from_matching
    out = []
    y = freq.prepared.y
    for method in methods:
        if method not in freq.matchings:
            continue
        cell = _cell(table, method, freq.prepared.design.treatment, "att")
        d = differences_from_matching(freq.matchings[method], y)
        out.append(rosenbaum_piece(d, cell=cell, estimate=float(freq.att[method]),
                                   what=f"the {method} treated-minus-matched differences"))
    return out


def ols_piece(t: float, dof: float, *, cell: dict, estimate: float, se: float,
              alpha: float = 0.05) -> Piece:
    """Omitted-variable robustness value of an OLS coefficient (Cinelli & Hazlett 2020); the
    curve is the estimate adjusted for a confounder with partial R^2 ``r`` with both the
    treatment and the outcome (``|bias| = se * sqrt(dof) * r / sqrt(1 - r)``)."""
    rv = robustness.robustness_value(t, dof, alpha=alpha)
    r = np.linspace(0.0, min(0.99, max(0.05, 2.5 * rv["rv_q"])), 101)
    bias = np.sign(estimate) * se * np.sqrt(dof) * r / np.sqrt(1.0 - r)
    crit = float(stats.t.ppf(1 - alpha / 2, dof))
    curve = pd.DataFrame({"partial_r2": r, "adjusted": estimate - bias,
                          "adjusted_low": estimate - bias - crit * se,
                          "adjusted_high": estimate - bias + crit * se})
    return Piece(name=_stem("robustness_value", cell["table"], cell["column"], cell["term"]),
                 analysis="robustness_value", cell=cell, estimate=estimate,
                 method="omitted-variable robustness value of the OLS coefficient "
                        "(Cinelli & Hazlett 2020)",
                 parameter="partial R2 of a confounder", breakdown=rv["rv_q"],
                 meaning=(f"a confounder explaining {rv['rv_q']:.1%} of the residual variance "
                          f"of both treatment and outcome removes the estimate; "
                          + (f"{rv['rv_q_alpha']:.1%} makes it insignificant at {alpha:g}"
                             if rv["rv_q_alpha"] > 0 else
                             f"it is not significant at {alpha:g} even without one")
                          + f" (partial R2 of the treatment: {rv['partial_r2']:.2%})"),
                 curve=curve)


def e_value_piece(log_odds: float, low: float, high: float, *, cell: dict) -> Piece:
    """E-value of a logit coefficient's odds ratio, converted for a common outcome
    (``sqrt(OR)``, VanderWeele & Ding 2017); the curve is the ratio divided by the largest bias
    a confounder of strength ``g`` (risk ratio with treatment and outcome) can produce,
    ``g^2 / (2g - 1)``."""
    ev = robustness.e_value(np.exp(log_odds), np.exp(low), np.exp(high), measure="OR",
                            rare=False)
    rr = ev["risk_ratio"]
    limit = np.sqrt(np.exp(low if log_odds >= 0 else high))
    top = max(2.0, 1.5 * ev["e_value"])
    g = np.linspace(1.0, top, 101)
    bias = g * g / (2 * g - 1)
    adj = (lambda x: x / bias) if rr >= 1 else (lambda x: x * bias)
    curve = pd.DataFrame({"confounder_rr": g, "adjusted_rr": adj(rr),
                          "adjusted_ci_limit": adj(limit)})
    return Piece(name=_stem("e_value", cell["table"], cell["column"], cell["term"]),
                 analysis="e_value", cell=cell, estimate=log_odds,
                 method="E-value of the odds ratio exp(beta), common outcome: sqrt(OR) "
                        "(VanderWeele & Ding 2017)",
                 parameter="confounder risk ratio", breakdown=ev["e_value"],
                 meaning=(f"a confounder associated with treatment and outcome by risk ratios "
                          f"of {ev['e_value']:.2f} each explains the estimate away; "
                          + (f"{ev['e_value_ci']:.2f} each moves its 95% interval to 1"
                             if ev["e_value_ci"] > 1 else "its 95% interval already contains 1")),
                 curve=curve)


def did_pieces(rows: pd.DataFrame, *, family: str, treatment: str) -> list[Piece]:
    """E-value of a logit DiD's frequentist beta (rows of :func:`~bayes_pool.workflow.analyse_did`);
    a linear DiD's effect is a difference, not a ratio, and its frequentist fit has clustered
    SEs, so it gets a "not computed" line (its identifying assumption is parallel trends:
    ``did --event-study``)."""
    beta = rows[(rows["source"] == "frequentist") & (rows["term"] == treatment)
                & (rows["quantity"] == "beta")]
    out = []
    for r in beta.itertuples():
        cell = _cell(r.table, r.column, r.term, "beta")
        if family != "bernoulli":
            out.append(not_computed(_stem("e_value", r.table, r.column, r.term), "e_value", cell,
                                    "E-value", "confounder risk ratio",
                                    "a linear DiD's effect is a difference, not a ratio; "
                                    "see the parallel-trends line of an event study",
                                    estimate=r.estimate))
        elif np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
            out.append(e_value_piece(r.estimate, r.ci_low, r.ci_high, cell=cell))
    return out


# --------------------------------------------------------------------------- mediation


def mediation_pieces(freq, *, table: str = "mediation") -> list[Piece]:
    """The rho (error correlation of mediator and outcome) at which the indirect effect of a
    :class:`~bayes_pool.freq.mediation.FreqMediationResult` vanishes: the closed form of Imai,
    Keele & Yamamoto (2010) for a linear outcome; for a binary outcome
    ``robustness.mediation_sensitivity_summary`` when it exists."""
    d = freq.prepared.design
    cell = _cell(table, d.mediator, d.treatment, "indirect")
    acme = float(freq.effects.get("indirect", np.nan))
    name = _stem("mediation_rho", d.mediator)
    method = "ACME as a function of rho = corr(e_M, e_Y) (Imai, Keele & Yamamoto 2010)"
    def piece(curve, rho0) -> Piece:
        return Piece(name=name, analysis="mediation_rho", cell=cell, estimate=acme,
                     method=method, parameter="rho", breakdown=_finite(rho0),
                     meaning=(f"the indirect effect is zero if the unobserved errors of mediator "
                              f"and outcome correlate at rho = {_num(rho0)} (0 under sequential "
                              "ignorability)"),
                     curve=pd.DataFrame(curve))

    if d.family == "gaussian":
        m, o = freq.mediator_step, freq.outcome_step
        curve = robustness.mediation_rho_curve(
            b2=float(m.coef[d.treatment]), g=float(o.coef[d.mediator]),
            sigma_m=float(np.sqrt(m.scale)), sigma_y=float(np.sqrt(o.scale)),
            b3=float(o.coef[d.treatment]))
        return [piece(curve, curve.attrs["rho_at_zero"])]
    summary = getattr(robustness, "mediation_sensitivity_summary", None)
    if summary is None:
        return [not_computed(name, "mediation_rho", cell, method, "rho",
                             "the binary-outcome (probit) rho curve is not in this version "
                             "(robustness.mediation_sensitivity_summary)", estimate=acme)]

    def compute() -> Piece:
        curve, info = summary(freq.prepared.frame, d)
        return piece(curve, info.get("rho_at_zero"))

    return [pending(name, "mediation_rho", cell, method, "rho", compute, estimate=acme)]


# --------------------------------------------------------------------------- parallel trends


def event_study_pieces(freq, idata=None, *, table: str = "event_study",
                       mbar_grid=MBAR_GRID) -> list[Piece]:
    """Parallel-trends breakdown (Rambachan & Roth 2023, relative magnitudes) of the first
    post-period effect (the event-time-0 coefficient, the summary's default target) of a
    frequentist event study and, given its posterior, the Bayesian one, by
    ``robustness.parallel_trends_summary`` when it exists. The breakdown shown is the
    Bayesian one (Mbar where P(effect > 0) falls below 0.9) when there are draws, else the
    frequentist one (Mbar where the confidence set first holds 0)."""
    from bayes_pool.design.staggered import event_label
    d = freq.prepared.design
    first_post = min((k for k in freq.bin_n if k >= 0), default=0)
    cell = _cell(table, event_label(first_post), d.treatment, "beta")
    name = _stem("parallel_trends", table)
    method = "relative magnitudes: post-period violation <= Mbar x the largest pre-period one " \
             "(Rambachan & Roth 2023)"
    summary = getattr(robustness, "parallel_trends_summary", None)
    if summary is None:
        return [not_computed(name, "parallel_trends", cell, method, "Mbar",
                             "the parallel-trends breakdown is not in this version "
                             "(robustness.parallel_trends_summary)")]
    coefs, cov, pre, post = _event_coefficients(freq)
    if not len(pre) or not len(post):
        return [not_computed(name, "parallel_trends", cell, method, "Mbar",
                             f"needs pre- and post-period coefficients; this event study has "
                             f"{len(pre)} pre and {len(post)} post")]
    draws = _event_draws(idata, coefs.index) if idata is not None else None
    estimate = float(coefs.iloc[post[0]])

    def compute() -> Piece:
        curve, breakdown = summary(coefs.to_numpy(), cov.to_numpy(), draws, pre, post,
                                   list(mbar_grid))
        key = "bayesian_p90" if draws is not None and "bayesian_p90" in breakdown \
            else "frequentist"
        mbar = _finite(breakdown.get(key))
        which = ("P(effect > 0) falls below 0.9" if key == "bayesian_p90" else
                 "the 95% confidence set first contains 0")
        what = (f"at Mbar = {mbar:.3g} (a post-period violation of parallel trends {mbar:.3g} "
                f"times the largest pre-period one) {which}" if mbar is not None else
                f"no Mbar up to {max(mbar_grid):g} overturns it ({which} nowhere on the grid)")
        return Piece(name=name, analysis="parallel_trends", cell=cell, estimate=estimate,
                     method=method, parameter="Mbar", breakdown=mbar,
                     meaning=(f"{what}; the bound scales {len(pre)} pre-period coefficient"
                              f"{'s' if len(pre) > 1 else ''}"),
                     curve=pd.DataFrame(curve))

    return [pending(name, "parallel_trends", cell, method, "Mbar", compute, estimate=estimate)]


def _event_coefficients(freq):
    """The event-time coefficients of the treatment (by event time, named as the Bayesian
    model names them), their covariance and the positions of the pre- and post-period ones."""
    from bayes_pool.design.staggered import event_term
    times = sorted(freq.bin_n)
    keys = [f"Q('{event_term(k)}')" for k in times]  # the frequentist formula's names
    names = [event_term(k) for k in times]
    coefs = pd.Series(freq.result.params[keys].to_numpy(), index=names)
    cov = pd.DataFrame(freq.result.cov_params().loc[keys, keys].to_numpy(), index=names,
                       columns=names)
    pre = [i for i, k in enumerate(times) if k < 0]
    post = [i for i, k in enumerate(times) if k >= 0]
    return coefs, cov, pre, post


def _event_draws(idata, names):
    """Posterior draws (draws x coefficients) of the named event-time coefficients, or None
    when the posterior lacks one."""
    try:
        post = idata["posterior"]
        return np.column_stack([np.asarray(post[n].values).reshape(-1) for n in names])
    except (KeyError, AttributeError, TypeError):
        return None


def _finite(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _num(x) -> str:
    return "not reached on the grid" if _finite(x) is None else f"{x:.3g}"
