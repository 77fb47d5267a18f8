"""Published vs frequentist vs Bayesian: one row per (table, column, term, quantity).

Comparing with the paper is a join of the estimates table on its keys; each replication's
distance from the published number is given in units of the published SE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["study", "table", "column", "term", "quantity"]


def comparison(table: pd.DataFrame, *, tables: list[str] | None = None,
               quantities: list[str] | None = None) -> pd.DataFrame:
    """Wide comparison of the three sources on the keys they share with the published rows.

    Columns: the keys, ``published``/``published_se``, ``frequentist``/``frequentist_se``,
    ``bayesian``/``bayesian_sd``, the Bayesian 95% interval, the differences from the
    published value in published SEs (``freq_diff_se``, ``bayes_diff_se``), and ``converged``.
    Published rows flagged as contradictions in the paper keep their note.
    """
    t = table
    if tables is not None:
        t = t[t["table"].isin(tables)]
    if quantities is not None:
        t = t[t["quantity"].isin(quantities)]
    pub = t[t["source"] == "published"].drop_duplicates(KEYS)
    pub = pub[KEYS + ["estimate", "se", "n_obs", "note"]].rename(columns={
        "estimate": "published", "se": "published_se", "n_obs": "published_n",
        "note": "published_note"})
    freq = t[t["source"] == "frequentist"][KEYS + ["estimate", "se", "n_obs"]].rename(columns={
        "estimate": "frequentist", "se": "frequentist_se", "n_obs": "n_obs"})
    bay = t[t["source"] == "bayesian"][KEYS + ["estimate", "se", "ci_low", "ci_high", "r_hat",
                                              "ess_bulk", "divergences", "converged"]].rename(
        columns={"estimate": "bayesian", "se": "bayesian_sd", "ci_low": "bayes_ci_low",
                 "ci_high": "bayes_ci_high"})
    out = freq.merge(bay, on=KEYS, how="outer").merge(pub, on=KEYS, how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["freq_diff_se"] = (out["frequentist"] - out["published"]) / out["published_se"]
        out["bayes_diff_se"] = (out["bayesian"] - out["published"]) / out["published_se"]
    cols = KEYS + ["published", "published_se", "frequentist", "frequentist_se", "bayesian",
                   "bayesian_sd", "bayes_ci_low", "bayes_ci_high", "freq_diff_se",
                   "bayes_diff_se", "published_n", "n_obs", "r_hat", "ess_bulk",
                   "divergences", "converged", "published_note"]
    # Keep the order in which the analyses reported their terms (treatment first), not A-Z.
    order = {k: i for i, k in enumerate(pd.concat([freq, bay])["term"].drop_duplicates())}
    out["_term_order"] = out["term"].map(order)
    out = out.sort_values(["study", "table", "column", "_term_order", "quantity"], kind="stable")
    return out[cols].reset_index(drop=True)


def to_markdown(comp: pd.DataFrame, *, title: str, synthetic: bool) -> str:
    """A Markdown rendering, headed by a synthetic-data notice when the data were generated."""
    lines = [f"# {title}", ""]
    if synthetic:
        lines += ["> **SYNTHETIC DATA.** These estimates come from data generated to mimic the "
                  "published design. Agreement with the paper is by construction and shows only "
                  "that the pipeline works; it is not a replication of the survey.", ""]
    lines += ["Differences are in units of the published SE. Bayesian: posterior mean (SD) and "
              "95% equal-tailed interval; R-hat, bulk ESS and divergences of each posterior.", ""]
    head = ("| table | column | term | quantity | published (SE) | frequentist (SE) | "
            "Bayesian (SD) [95% CI] | Δfreq/SE | Δbayes/SE | N pub/used | R-hat | ESS | div | ok |")
    lines += [head, "|" + "---|" * 14]
    for _, r in comp.iterrows():
        conv = "" if pd.isna(r["converged"]) else ("yes" if r["converged"] else "**NO**")
        lines.append(
            f"| {r['table']} | {r['column']} | {r['term']} | {r['quantity']} | "
            f"{estimate_se(r['published'], r['published_se'])} | "
            f"{estimate_se(r['frequentist'], r['frequentist_se'])} | "
            f"{estimate_se(r['bayesian'], r['bayesian_sd'])} {_ci(r['bayes_ci_low'], r['bayes_ci_high'])} | "
            f"{_f(r['freq_diff_se'], 2)} | {_f(r['bayes_diff_se'], 2)} | "
            f"{_f(r['published_n'], 0)}/{_f(r['n_obs'], 0)} | {_f(r['r_hat'], 3)} | "
            f"{_f(r['ess_bulk'], 0)} | {_f(r['divergences'], 0)} | {conv} |")
    flagged = comp[comp["published_note"].fillna("").str.contains("contradiction")]
    if len(flagged):
        lines += ["", "Published cells the paper contradicts elsewhere (see the ledger):", ""]
        lines += [f"- Table {r['table']} {r['column']} {r['term']} {r['quantity']}: {r['published_note']}"
                  for _, r in flagged.iterrows()]
    return "\n".join(lines) + "\n"


def _f(x, digits: int) -> str:
    return "–" if pd.isna(x) else f"{x:.{digits}f}"


def estimate_se(est, se) -> str:
    """``0.123 (0.045)``: an estimate with its SE or posterior SD, "–" when missing."""
    if pd.isna(est):
        return "–"
    return f"{est:.3f}" + ("" if pd.isna(se) else f" ({se:.3f})")


def _ci(lo, hi) -> str:
    return "" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]"
