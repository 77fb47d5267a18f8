"""What prior sensitivity needs of the joint PyMC mediation model: a prior set applied to it,
and its prior and posterior predictive checks and power-scaling.

:func:`apply_prior_set` puts a named prior set (:mod:`bayes_pool.priors`) into both equations.
The checks are the twins of :mod:`bayes_pool.checks` (written for Bambi models) for
:mod:`bayes_pool.bayes.mediation`, so that ``bayes-pool sensitivity`` on a ``mediate`` run
gives the same three checks as on a DiD: what the priors alone imply for the outcome's mean
and the indirect effect, replicated outcome statistics by treatment group, and ArviZ's
power-scaling diagnostics. Outcomes are reported in the data's units (the model standardises
a Gaussian outcome).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayes_pool.bayes.mediation import (BayesMediationResult, MediationSpec, add_effect_draws,
                                        model_data)
from bayes_pool.checks import psense_table, replicated_statistics, thinned
from bayes_pool.priors import PriorSet, apply_prior_set as apply_to_spec, resolve

STRUCTURE = ("_unit_z", "_unit_time_z", "latent_z")
"""Suffixes of the standardised effects: the hierarchy's N(0, 1), not a prior choice, left out
of the log prior as :func:`bayes_pool.checks.power_scaling` leaves Bambi's offsets out."""


def apply_prior_set(spec: MediationSpec, prior_set: PriorSet, *, roles, family: str,
                    refs: dict) -> MediationSpec:
    """``spec`` with the set's priors for ``roles``: its priors for the outcome ``family`` in
    the outcome equation, its Gaussian ones in the mediator equation (both on the model's
    standardised scale, so ``refs["sd_y"]`` is 1)."""
    from dataclasses import replace
    outcome = replace(spec.model, family=family)
    mediator = {r: p for r, p in prior_set.for_family("gaussian").items() if r in roles}
    return replace(spec, model=apply_to_spec(outcome, prior_set, roles=roles, refs=refs),
                   mediator_priors={**spec.mediator_priors,
                                    **resolve(mediator, refs, f"prior set {prior_set.name!r}")})


def checks(res: BayesMediationResult):
    """The three checks of the fit as callables, as
    :func:`bayes_pool.sensitivity_models.checks` gives them: ``prior(draws, seed)``,
    ``scaling()`` and ``replicate(seed)``."""
    return (lambda n, s: prior_predictive(res, draws=n, seed=s), lambda: power_scaling(res),
            lambda s: posterior_predictive(res, seed=s))


def _flat(da: xr.DataArray) -> np.ndarray:
    return np.asarray(da.transpose("chain", "draw", ...)).reshape(-1, *da.shape[2:])


def _data(res: BayesMediationResult):
    return model_data(res.prepared, res.spec.model.unit_effects, res.spec.model.unit_time)


def _free(res: BayesMediationResult, post: xr.Dataset) -> list[str]:
    """The posterior's sampled variables (not the effect draws added after sampling)."""
    return [rv.name for rv in res.model.free_RVs if rv.name in post]


def _in_units(y: np.ndarray, res: BayesMediationResult) -> np.ndarray:
    """Outcome draws back on the data's scale (a Gaussian outcome is standardised)."""
    if res.prepared.design.family == "bernoulli":
        return y
    observed = res.prepared.frame[res.prepared.design.outcome].to_numpy(float)
    return y * observed.std() + observed.mean()


def prior_predictive(res: BayesMediationResult, *, draws: int = 500, seed: int = 0
                     ) -> dict[str, np.ndarray]:
    """Draws of the outcome mean and of the natural indirect effect implied by the priors
    alone (``{"outcome_mean": ..., "effect": ...}``, one value per draw)."""
    pp = pm.sample_prior_predictive(draws=draws, model=res.model, random_seed=seed)
    tree = xr.DataTree.from_dict({"posterior": pp["prior"].to_dataset()})
    add_effect_draws(tree, res.prepared, _data(res))
    y = _in_units(_flat(pp["prior_predictive"]["outcome"]).astype(float), res)
    return {"outcome_mean": y.mean(axis=1), "effect": _flat(tree["posterior"]["indirect"])}


def posterior_predictive(res: BayesMediationResult, *, draws: int = 400, seed: int = 0
                         ) -> pd.DataFrame:
    """Replicated outcome statistics by treatment (x time) group next to the observed ones
    (the frame of :func:`bayes_pool.checks.posterior_predictive`)."""
    d = res.prepared.design
    post = res.idata["posterior"].to_dataset()
    thin = thinned(post[_free(res, post)], draws)
    pred = pm.sample_posterior_predictive(thin, model=res.model, var_names=["outcome"],
                                          random_seed=seed, progressbar=False)
    yrep = _in_units(_flat(pred["posterior_predictive"]["outcome"]).astype(float), res)
    frame = res.prepared.frame.reset_index(drop=True)
    return replicated_statistics(yrep, frame[d.outcome].to_numpy(float), frame,
                                 treatment=d.treatment, time=d.time,
                                 gaussian=d.family != "bernoulli")


def power_scaling(res: BayesMediationResult) -> tuple[pd.DataFrame, xr.DataTree]:
    """Prior and likelihood power-scaling of every posterior variable (the log prior over the
    top-level priors, the log-likelihood of both equations summed over rows)."""
    from pymc.stats import compute_log_prior
    model = res.model
    post = res.idata["posterior"].to_dataset()
    top = [rv.name for rv in model.free_RVs if not rv.name.endswith(STRUCTURE)]
    work = xr.DataTree.from_dict({"posterior": post[_free(res, post)]})
    compute_log_prior(work, var_names=top, model=model)
    ll = pm.compute_log_likelihood(work, model=model, extend_inferencedata=False,
                                   progressbar=False)  # the log_likelihood group's Dataset
    total = sum(ll[v].sum([d for d in ll[v].dims if d not in ("chain", "draw")])
                for v in ll.data_vars)
    keep = [v for v in post.data_vars if not v.endswith(STRUCTURE)]
    return psense_table(post[keep], work["log_prior"].to_dataset(), total)
