"""What the public API returns: an analysis's estimates table with views for people.

A :class:`Result` wraps the workflow's :class:`~bayes_pool.workflow.Analysis` (the rows of the
one estimates table, the posteriors, the facts) and adds the views pyfixest and CausalPy users
expect: :meth:`~Result.tidy` (the table itself, the same rows ``estimates.csv`` holds),
:attr:`~Result.idata`, :meth:`~Result.summary` (a Stata-like text table),
:meth:`~Result.diagnostics` (convergence per posterior row, judged from the diagnostic columns)
and :meth:`~Result.plot` (a forest or event-study figure, returned, never written). Every view
is computed from the table; nothing here fits a model or chooses a matplotlib backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_pool import estimates

SHOWN = {"published": "published", "frequentist": "frequentist", "bayesian": "Bayesian"}
"""How each source is named in the summary and the figures' legends."""

_EVENT = re.compile(r"^event_time_(-?\d+)$")


def _num(x) -> str:
    """A number as the summary prints it (4 significant digits; blank when missing)."""
    return "" if pd.isna(x) else f"{x:.4g}"


@dataclass
class Result:
    """The result of one analysis (``bp.did``, ``bp.psm``, ``bp.mediate``, ``bp.event_study``,
    ``bp.staggered``, ``bp.study(...).run``).

    Attributes
    ----------
    analysis : bayes_pool.workflow.Analysis
        The workflow's record: ``estimates``, ``posteriors`` by fit, ``facts`` (sample sizes,
        dropped units, seeds, formulas) and ``results`` (fitted frequentist objects).
    title : str
        What was fitted, for the summary and figure titles.
    thresholds : bayes_pool.specs.Convergence or None
        The spec's convergence thresholds (None without a Bayesian spec).
    shown : dict
        Which rows :meth:`summary` and :meth:`plot` show by default: column name -> allowed
        values (e.g. ``{"term": ("d",), "quantity": ("beta", "ame")}``).
    synthetic : bool
        The data were generated; every title says so.
    """

    analysis: object
    title: str
    thresholds: object = None
    shown: dict = field(default_factory=dict)
    synthetic: bool = False

    def tidy(self) -> pd.DataFrame:
        """The estimates table: one row per (table, column, term, quantity, source) with
        ``estimate, se, ci_low, ci_high, p_value, n_obs, note`` and, for posterior rows,
        ``r_hat, ess_bulk, ess_tail, divergences, converged`` (:mod:`bayes_pool.estimates`).
        A copy: changing it leaves the result alone."""
        return self.analysis.estimates.copy()

    @property
    def idata(self):
        """The posterior: one InferenceData (DataTree) when the analysis fitted one model, a
        dict by fit name when it fitted several, None when it fitted none."""
        posteriors = self.analysis.posteriors
        if not posteriors:
            return None
        return next(iter(posteriors.values())) if len(posteriors) == 1 else dict(posteriors)

    @property
    def facts(self) -> dict:
        """Sample sizes, dropped units, seeds and the other facts a run's manifest records."""
        return self.analysis.facts

    def _rows(self, **select) -> pd.DataFrame:
        """The rows ``select`` picks (column -> value or values; None: any), or without it
        the rows :attr:`shown` picks."""
        table = self.tidy()
        keep = pd.Series(True, index=table.index)
        unknown = sorted(set(select) - set(table.columns))
        if unknown:
            raise ValueError(f"cannot select rows by {unknown}: not columns of the estimates "
                             f"table {list(table.columns)}")
        for col, values in (select or self.shown).items():
            if values is None:
                continue
            values = (values,) if isinstance(values, str) else tuple(values)
            keep &= table[col].isin(values)
        return table[keep]

    def diagnostics(self, **thresholds) -> pd.DataFrame:
        """R-hat, bulk and tail ESS, divergences and the ``converged`` verdict of every
        posterior row.

        The verdict is a function of the diagnostic columns only
        (:func:`bayes_pool.estimates.rejudge`): without arguments, each row's verdict against
        its spec's thresholds; with ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail`` or
        ``max_divergences``, the rows re-judged against them as ``--max-r-hat`` and friends
        do on the command line.
        """
        table = self.tidy()
        if thresholds:
            from bayes_pool.specs import Convergence
            table = estimates.rejudge(table, thresholds, self.thresholds or Convergence())
        cols = ["table", "column", "term", "quantity", "r_hat", "ess_bulk", "ess_tail",
                "divergences", "converged"]
        return table.loc[table["source"] == "bayesian", cols].reset_index(drop=True)

    def summary(self, **select) -> str:
        """A printable table, Stata-like: term, estimate, SE (posterior SD for Bayesian rows),
        the 95% interval, the p-value, and for Bayesian rows R-hat, ESS, divergences and the
        convergence verdict. Keywords select rows instead of the default selection, as in
        :meth:`plot` (``table="psm_balance"``; ``table=None``: every row)."""
        rows = self._rows(**select)
        first = {k: i for i, k in reversed(list(enumerate(_keys(rows))))}
        order = rows.assign(_k=[first[k] for k in _keys(rows)],
                            _s=rows["source"].map({s: i for i, s in enumerate(SHOWN)}))
        rows = rows.loc[order.sort_values(["_k", "_s"], kind="stable").index]
        pct = f"{round(estimates.CI_PROB * 100)}%"
        bayes = rows["source"] == "bayesian"
        view = pd.DataFrame({
            "table": rows["table"], "column": rows["column"], "term": rows["term"],
            "quantity": rows["quantity"], "source": rows["source"].map(SHOWN),
            "estimate": rows["estimate"].map(_num), "SE/SD": rows["se"].map(_num),
            f"[{pct} interval": rows["ci_low"].map(_num), "]": rows["ci_high"].map(_num),
            "P>|z|": rows["p_value"].map(_num),
            "R-hat": rows["r_hat"].map(_num), "ESS bulk": rows["ess_bulk"].map(_num),
            "ESS tail": rows["ess_tail"].map(_num), "div": rows["divergences"].map(_num),
            "converged": [("yes" if ok else "NO") if b and pd.notna(ok) else ""
                          for b, ok in zip(bayes, rows["converged"])]})
        view = view.loc[:, (view != "").any()]  # e.g. no p-values for posteriors or balance
        body = "\n".join(line.rstrip() for line in view.to_string(index=False).splitlines()) \
            if len(view) else "(no rows selected)"
        width = max(len(line) for line in body.splitlines())
        n_obs = rows["n_obs"].dropna()
        head = [("SYNTHETIC DATA — " if self.synthetic else "") + self.title]
        if len(n_obs):
            head.append(f"Observations: {int(n_obs.max())}")
        foot = [f"SE/SD: standard error (frequentist, published) or posterior SD (Bayesian); "
                f"interval: {pct} confidence interval or {pct} equal-tailed posterior interval."]
        failing = int((bayes & ~rows["converged"].fillna(False).astype(bool)).sum())
        if failing:
            foot.append(f"{failing} posterior row(s) NOT CONVERGED: see .diagnostics().")
        if self.thresholds is not None and bayes.any():
            t = self.thresholds
            foot.append(f"Converged: judged at the fit against the spec's R-hat <= "
                        f"{t.max_r_hat:g}, ESS bulk/tail >= {t.min_ess_bulk:g}/"
                        f"{t.min_ess_tail:g}, divergences <= {t.max_divergences:g} (rows "
                        "that scale the ESS minima say so in their notes).")
        rule = "-" * width
        return "\n".join([*head, rule, body, rule, *foot])

    def __repr__(self) -> str:
        t = self.analysis.estimates
        fits = ", ".join(self.analysis.posteriors) or "none"
        return (f"<{type(self).__name__}: {self.title}; {len(t)} estimates rows "
                f"({', '.join(sorted(set(t['source'])))}); posteriors: {fits}>")

    def plot(self, ax=None, **select):
        """A forest plot of the selected rows: one line per (table, column, term, quantity),
        one marker per source with its 95% interval (published and frequentist rows without
        one: estimate ± 1.96 SE); unconverged posteriors hollow.

        Keywords select rows instead of the default selection (column of the table ->
        value or values; None: any), e.g. ``quantity="ame"``. Draws into ``ax`` when given.
        Returns ``(fig, ax)``; writes no file (``fig.savefig`` does).
        """
        from bayes_pool.figures import Z
        rows = self._rows(**select)
        if rows.empty:
            raise ValueError(f"no rows to plot for {select or self.shown}; the table has "
                             f"quantities {sorted(set(self.analysis.estimates['quantity']))}")
        keys = list(dict.fromkeys(_keys(rows)))
        fig, ax = _axes(ax, (7, 0.45 * len(keys) + 1.6))
        sources = [s for s in SHOWN if (rows["source"] == s).any()]
        for i, source in enumerate(sources):
            r = rows[rows["source"] == source]
            pos = np.array([len(keys) - 1 - keys.index(k) for k in _keys(r)], dtype=float)
            lo = r["ci_low"].where(r["ci_low"].notna(), r["estimate"] - Z * r["se"])
            hi = r["ci_high"].where(r["ci_high"].notna(), r["estimate"] + Z * r["se"])
            _dots(ax, source, pos + 0.2 * ((len(sources) - 1) / 2 - i), r["estimate"], lo, hi,
                  r["converged"], horizontal=True)
        ax.set_yticks(np.arange(len(keys))[::-1], [" ".join(k[1:]) for k in keys])
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.set_xlabel(f"estimate with {round(estimates.CI_PROB * 100)}% interval")
        return self._finish(fig, ax)

    def _finish(self, fig, ax):
        ax.set_title(("SYNTHETIC DATA\n" if self.synthetic else "") + self.title, fontsize=10)
        ax.legend(loc="best", fontsize=8)
        return fig, ax


def _keys(rows: pd.DataFrame):
    """The (table, column, term, quantity) of each row: what a forest plot's line shows."""
    return zip(rows["table"], rows["column"], rows["term"], rows["quantity"])


def _axes(ax, size):
    """``(fig, ax)``: a new figure of ``size`` inches, or ``ax`` and its figure."""
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=size, layout="constrained") if ax is None else (ax.figure, ax)


def _dots(ax, source: str, where, value, low, high, converged, *, horizontal: bool) -> None:
    """One source's estimates at positions ``where``, with their intervals: along x
    (``horizontal``, a forest plot) or along y (an event-study path). Unconverged posteriors
    are hollow; the markers carry ``gid=source``."""
    from bayes_pool.figures import COLORS
    color = COLORS[source]
    err = np.nan_to_num(np.vstack([value - low, high - value]).clip(min=0))
    xy = (value, where) if horizontal else (where, value)
    ax.errorbar(*xy, **{"xerr" if horizontal else "yerr": err}, fmt="none", ecolor=color,
                capsize=2, label=SHOWN[source])
    hollow = (source == "bayesian") & ~converged.fillna(False).astype(bool)
    ax.scatter(*xy, zorder=3, edgecolors=color, gid=source,
               color=["white" if h else color for h in hollow])


@dataclass
class EventStudyResult(Result):
    """An event study: :meth:`plot` draws the path of the effect against event time."""

    reference: int = -1
    """The reference event time (drawn at 0, no interval)."""

    def plot(self, ax=None, quantity: str = "beta", **select):
        """The event-study path: the ``quantity`` of every ``event_time_<k>`` row against k,
        frequentist and Bayesian side by side with their 95% intervals, the reference period
        at 0 (no interval). Returns ``(fig, ax)``; writes no file."""
        rows = self._rows(**{**self.shown, "quantity": quantity, **select})
        k = rows["column"].str.extract(_EVENT, expand=False).astype(float)
        rows = rows.assign(k=k)[k.notna()]
        if rows.empty:
            raise ValueError(f"no {quantity!r} rows with columns event_time_<k> to plot")
        fig, ax = _axes(ax, (6.5, 4))
        for shift, source in ((-0.08, "frequentist"), (0.08, "bayesian")):
            r = rows[rows["source"] == source].sort_values("k")
            if len(r):
                _dots(ax, source, r["k"] + shift, r["estimate"], r["ci_low"], r["ci_high"],
                      r["converged"], horizontal=False)
        ax.scatter([self.reference], [0.0], color="black", marker="D", zorder=3, label="reference")
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("event time (periods since adoption)")
        ax.set_ylabel(f"{quantity}, {round(estimates.CI_PROB * 100)}% interval")
        return self._finish(fig, ax)
