"""Prior and posterior predictive checks, and the power-scaling sensitivity of a fitted Bambi model.

* :func:`prior_predictive` -- what the priors alone imply for the outcome's mean (the share
  healthy of a logit) and for the treatment effect (the AME of a logit, the coefficient of a
  linear model), from Bambi's prior predictive draws and the same per-draw AME code as the
  posterior (:func:`bayes_pool.bayes.did.add_ame_draws`).
* :func:`posterior_predictive` -- replicated outcome statistics (mean by time x treatment
  group for a logit; mean and SD by treatment group for a linear model) against the observed.
* :func:`power_scaling` -- ArviZ's power-scaling sensitivity (``arviz_stats.psense_summary``,
  Kallioinen et al. 2024, R's priorsense) for every posterior variable, without refitting.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)

CONFLICT = "potential prior-data conflict"
WEAK_LIKELIHOOD = "potential strong prior / weak likelihood"
PSENSE_THRESHOLD = 0.05
"""Power-scaling sensitivity (CJS distance gradient) above which ArviZ flags a component."""


def _draws(da) -> np.ndarray:
    return np.asarray(da.transpose("chain", "draw", ...)).reshape(-1, *da.shape[2:])


def prior_predictive(model, *, treatment: str, prepared=None, draws: int = 500,
                     seed: int = 0, effect=None) -> dict[str, np.ndarray]:
    """Draws of the outcome mean and of the treatment effect implied by the priors alone.

    ``prepared`` (a :class:`~bayes_pool.design.PreparedDiD`) is needed for a logit, whose
    effect is the AME computed per draw over the sample; a linear model's effect is its
    coefficient; ``effect(tree)`` (optional) computes another model's effect per draw of a
    tree whose ``posterior`` holds the prior draws (a staggered model's ATT). Returns
    ``{"outcome_mean": ..., "effect": ...}`` (one value per draw).
    """
    from bayes_pool.bayes.did import add_ame_draws
    pp = model.prior_predictive(draws=draws, random_seed=seed)
    prior = pp["prior"].to_dataset()
    response = model.response_term.name
    tree = xr.DataTree.from_dict({"posterior": prior})
    if effect is not None:
        draws_of_effect = effect(tree)
    elif model.family.name == "bernoulli":
        if prepared is None:
            raise ValueError("a logit's implied AME needs the prepared design")
        add_ame_draws(model, tree, prepared)
        draws_of_effect = _draws(tree["posterior"][f"ame_{treatment}"])
    else:
        draws_of_effect = _draws(prior[treatment])
    mean = _draws(prior["p"] if model.family.name == "bernoulli"
                  else pp["prior_predictive"][response]).mean(axis=-1)
    return {"outcome_mean": mean, "effect": draws_of_effect}


def posterior_predictive(model, idata, *, treatment: str,
                         time: str | None = None, draws: int = 400, seed: int = 0) -> pd.DataFrame:
    """Replicated statistics of the outcome next to the observed ones.

    Uses ``draws`` evenly thinned posterior draws and Bambi's ``predict(kind="response")``.
    Groups are treatment x time cells (plus ``all``); statistics the mean, and for a Gaussian
    outcome also the SD. Long frame: ``statistic, group, draw, replicated, observed``.
    """
    tree = xr.DataTree.from_dict({"posterior": thinned(idata["posterior"].to_dataset(), draws)})
    response = model.response_term.name
    pred = model.predict(tree, kind="response", inplace=False, random_seed=seed)
    yrep = _draws(pred["posterior_predictive"][response]).astype(float)
    y = np.asarray(model.data[response], dtype=float)
    return replicated_statistics(yrep, y, model.data, treatment=treatment, time=time,
                                 gaussian=model.family.name != "bernoulli")


def thinned(post: xr.Dataset, draws: int) -> xr.Dataset:
    """About ``draws`` evenly spaced draws of a posterior (draw coordinates renumbered)."""
    n = post.sizes["chain"] * post.sizes["draw"]
    thin = post.isel(draw=slice(None, None, max(1, n // max(draws, 1))))
    return thin.assign_coords(draw=np.arange(thin.sizes["draw"]))


def replicated_statistics(yrep: np.ndarray, y: np.ndarray, data: pd.DataFrame, *,
                          treatment: str, time: str | None, gaussian: bool) -> pd.DataFrame:
    """The frame of :func:`posterior_predictive` from replicated outcomes ``yrep`` (draws x
    rows) and the observed ``y``, grouped by the ``treatment`` (x ``time``) cells of ``data``
    (a frame with one row per row of ``y``); any model's replications, Bambi's or PyMC's."""
    if len(y) != yrep.shape[1]:
        raise ValueError(f"model data has {len(y)} rows, predictions {yrep.shape[1]}")
    groups = {"all": np.ones(len(y), bool)}
    keys = [treatment] + ([time] if time else [])
    cells = data[keys].astype(str).agg(" ".join, axis=1) if time else data[treatment].astype(str)
    for cell in sorted(cells.unique()):
        label = f"{treatment}={cell.split(' ')[0]}" + (f", {time}={cell.split(' ')[1]}" if time else "")
        groups[label] = (cells == cell).to_numpy()
    stats = {"mean": np.mean, "sd": np.std} if gaussian else {"mean": np.mean}
    rows = []
    for stat, fn in stats.items():
        for label, mask in groups.items():
            rep = fn(yrep[:, mask], axis=1)
            rows.append(pd.DataFrame({"statistic": stat, "group": label,
                                      "draw": np.arange(len(rep)), "replicated": rep,
                                      "observed": float(fn(y[mask])), "n": int(mask.sum())}))
    return pd.concat(rows, ignore_index=True)


def power_scaling(model, idata, *, var_names: list[str] | None = None
                  ) -> tuple[pd.DataFrame, xr.DataTree]:
    """Prior and likelihood power-scaling sensitivity of every posterior variable.

    The log prior covers the model's top-level priors (coefficients, time effects, group SDs);
    the group effects' own density (the standardised offsets' N(0, 1) when non-centred, the
    effects' N(0, sigma) when centred) is the hierarchical structure, not a prior choice, and
    is left out, as priorsense does. Bambi drops the offsets from the posterior and reports
    the intercept of the uncentred predictors, while its prior is on the intercept of the
    centred ones; both are rebuilt exactly for PyMC to evaluate the log prior.

    Returns the ``psense_summary`` frame (``variable, prior, likelihood, diagnosis``) and a
    small tree (posterior, log_prior, and the log-likelihood summed over rows, which is all
    power-scaling uses) for plotting.
    """
    from pymc.stats import compute_log_prior

    from bayes_pool.bayes.predictor import total_log_likelihood

    pm_model = model.backend.model
    post = idata["posterior"].to_dataset()
    offsets = [rv.name for rv in pm_model.free_RVs if rv.name.endswith("_offset")]
    extra = {}
    for name in offsets:
        base = name.removesuffix("_offset")
        if name not in post:
            extra[name] = post[base] / post[f"{base}_sigma"]
    extra.update(_centred_intercepts(model, post))
    groups = set(model.parameters[model.family.likelihood.parent].group_specific_terms)
    top = [rv.name for rv in pm_model.free_RVs if rv.name not in {*offsets, *groups}]
    work = xr.DataTree.from_dict({"posterior": post.assign(extra)})
    compute_log_prior(work, var_names=top, model=pm_model)
    total = total_log_likelihood(model, post)
    if total is None:
        ll = model.compute_log_likelihood(idata, inplace=False)["log_likelihood"].to_dataset()
        total = sum(ll[v].sum([d for d in ll[v].dims if d not in ("chain", "draw")])
                    for v in ll.data_vars)
    keep = [v for v in post.data_vars if v not in offsets]
    return psense_table(post[keep], work["log_prior"].to_dataset(), total, var_names=var_names)


def psense_table(post: xr.Dataset, log_prior: xr.Dataset, total: xr.DataArray, *,
                 var_names: list[str] | None = None) -> tuple[pd.DataFrame, xr.DataTree]:
    """``psense_summary`` of the posterior variables without a per-row dimension, from the
    log prior by variable and the per-draw log-likelihood summed over rows (``total``), and
    the small tree it was computed on (any model's: :func:`power_scaling` gives Bambi's)."""
    import arviz_stats as azs
    keep = [v for v in post.data_vars if not any("obs" in str(d) for d in post[v].dims)]
    small = xr.DataTree.from_dict({
        "posterior": post[keep],
        "log_prior": log_prior,
        "log_likelihood": xr.Dataset({"total": total}),
    })
    summary = azs.psense_summary(small, var_names=var_names or keep, threshold=PSENSE_THRESHOLD,
                                 round_to=6)
    summary = summary.rename_axis("variable").reset_index()
    return summary[["variable", "prior", "likelihood", "diagnosis"]], small


def _centred_intercepts(model, post: xr.Dataset) -> dict:
    """The sampled (centred-predictor) intercepts: Bambi's reported intercept plus the
    predictor means times the coefficients, the inverse of Bambi's own un-centring."""
    from bambi.utils import get_aliased_name
    if not model.center_predictors:
        return {}
    out = {}
    for comp in model.backend.distributional_components.values():
        bc = comp.component
        if not (bc.intercept_term and bc.common_terms):
            continue
        means = np.asarray(comp.design_matrix_without_intercept).mean(0)
        name = get_aliased_name(bc.intercept_term)
        shape = (post.sizes["chain"], post.sizes["draw"])
        coefs = np.concatenate([np.asarray(post[get_aliased_name(t)].transpose("chain", "draw", ...))
                                .reshape(*shape, -1) for t in bc.common_terms.values()], axis=-1)
        if coefs.shape[-1] != len(means) or post[name].dims != ("chain", "draw"):
            raise ValueError(f"{coefs.shape[-1]} coefficients but {len(means)} predictor means: "
                             "cannot rebuild the centred intercept")
        out[name] = post[name] + xr.DataArray(coefs @ means, dims=("chain", "draw"))
    return out
