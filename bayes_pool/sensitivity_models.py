"""The models prior sensitivity refits, by :class:`~bayes_pool.sensitivity.Target` kind: the
fit, the rows of its key effects, and its three checks.

Kinds: ``did`` (:mod:`bayes_pool.bayes.did`), ``staggered`` (the extended TWFE of
:mod:`bayes_pool.bayes.etwfe`, key quantity the overall ATT), ``linear``
(:mod:`bayes_pool.bayes.linear`) and ``mediation`` (:mod:`bayes_pool.bayes.mediation`, whose
PyMC checks are :mod:`bayes_pool.mediation_checks`). Kept apart from
:mod:`bayes_pool.sensitivity`, which runs any of them under every prior set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EFFECT_QUANTITIES = {"did": ("beta", "ame"), "linear": ("beta", "ame"), "staggered": ("att",),
                     "mediation": ("indirect", "direct", "total")}
"""The quantities of the treatment a refit reports, by kind."""


def fit(target, spec, *, seed: int):
    """Fit the target's model under ``spec``; a result with ``model``, ``idata`` and ``tidy``."""
    if target.kind == "did":
        from bayes_pool.bayes.did import fit_did
        return fit_did(target.prepared, spec, seed=seed)
    if target.kind == "staggered":
        from bayes_pool.bayes.etwfe import fit_etwfe
        return fit_etwfe(target.prepared, spec, seed=seed, control=target.control)
    if target.kind == "mediation":
        from bayes_pool.bayes.mediation import fit_mediation
        return fit_mediation(target.prepared, spec, seed=seed)
    from bayes_pool.bayes.linear import fit_linear
    return fit_linear(target.frame, outcome=target.outcome, treatment=target.treatment,
                      covariates=list(target.covariates), spec=spec, seed=seed)


def effect_rows(target, res, *, column: str) -> pd.DataFrame:
    """The refit's rows of the treatment's key effects, in table ``sensitivity``, column
    ``column`` (a staggered fit's overall ATT only, not its cells)."""
    if target.kind == "mediation":
        rows = res.tidy(study=target.study, column=column, mediation_column=column)
        rows = rows[rows["table"] == "mediation"].assign(table="sensitivity")
    else:
        rows = res.tidy(study=target.study, table="sensitivity", column=column)
        rows = rows[rows["column"] == column]
    keep = (rows["term"] == target.treatment) & rows["quantity"].isin(
        EFFECT_QUANTITIES[target.kind])
    return rows[keep].copy()


def checks(target, res):
    """The fit's checks as callables: ``prior(draws, seed)`` (prior predictive outcome mean
    and effect), ``scaling()`` (power-scaling table and tree) and ``replicate(seed)``
    (posterior predictive statistics)."""
    if target.kind == "mediation":
        from bayes_pool import mediation_checks
        return mediation_checks.checks(res)
    from bayes_pool import checks as bambi
    effect = _staggered_att(res) if target.kind == "staggered" else None
    return (lambda n, s: bambi.prior_predictive(res.model, treatment=target.treatment,
                                                prepared=target.prepared, draws=n, seed=s,
                                                effect=effect),
            lambda: bambi.power_scaling(res.model, res.idata),
            lambda s: bambi.posterior_predictive(res.model, res.idata,
                                                 treatment=target.treatment, time=target.time,
                                                 seed=s))


def _staggered_att(res):
    """The overall ATT of an ETWFE fit per draw of a tree's ``posterior`` (prior draws in
    the prior predictive check), as :func:`bayes_pool.bayes.etwfe.fit_etwfe` computes it."""
    from bayes_pool.bayes.etwfe import add_switch_off_draws
    post = [c for c, info in res.cells.items() if info["post"]]
    rows = np.flatnonzero(res.frame[post].to_numpy().sum(axis=1) > 0)

    def effect(tree) -> np.ndarray:
        add_switch_off_draws(res.model, tree, res.frame, res.prepared.design.family,
                             {"att_overall": (rows, post)})
        return np.asarray(tree["posterior"]["att_overall"]).ravel()
    return effect
