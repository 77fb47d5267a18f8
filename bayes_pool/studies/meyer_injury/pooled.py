r"""Several 2x2 DiDs with their effects partially pooled: the code only this study needs (the
core's heterogeneity model is a logit over two-way splits), called from ``study.toml`` as a
``python`` analysis.

Each group :math:`g` (a state, an injury type) is its own natural experiment with its own
baseline, period and earnings-group terms; the DiD effects vary around a common mean:

.. math::

    y_i = \alpha_{g} + \gamma_{g}\,\text{after}_i + \delta_{g}\,\text{high}_i
          + (\beta + b_{g})\,D_i + \varepsilon_i, \qquad b_g \sim N(0, \tau^2),\
          \varepsilon_i \sim N(0, \sigma^2)

Bambi: ``y ~ 0 + C(g) + C(g):after + C(g):high + D + (0 + D | g)``. The frequentist twin is
each group's own OLS (no pooling), in the same cell, so the comparison shows the shrinkage.
Rows: ``beta`` of the treatment per group (column = the group's label), the common
:math:`\beta` (column ``common``) and :math:`\tau` (quantity ``effect_sd``).
"""

from __future__ import annotations

import pandas as pd

from bayes_pool import estimates
from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.freq.ols import fit_ols
from bayes_pool.specs import load_spec
from bayes_pool.workflow import Analysis


def _label(value, labels: dict) -> str:
    """A group value as its label (``1.0`` and ``1`` are both key ``"1"``)."""
    key = str(int(value)) if pd.api.types.is_number(value) and float(value).is_integer() \
        else str(value)
    return labels.get(key, key)


def _model(data: pd.DataFrame, *, outcome, treatment, unit, time, effect_sd: float,
           vague: bool):
    import bambi as bmb
    wide = bmb.Prior("Normal", mu=0.0, sigma=10.0 * float(data[outcome].std(ddof=1)))
    priors = {f"{treatment}|g": bmb.Prior("Normal", mu=0.0,
                                          sigma=bmb.Prior("HalfNormal", sigma=effect_sd))}
    if vague:
        priors.update({"C(g)": wide, f"C(g):{time}": wide, f"C(g):{unit}": wide,
                       treatment: wide})
    model = bmb.Model(f"{outcome} ~ 0 + C(g) + C(g):{time} + C(g):{unit} + {treatment} + "
                      f"(0 + {treatment} | g)", data, family="gaussian", priors=priors)
    model.build()
    return model


def pooled_did(frame: pd.DataFrame, *, outcome: str, treatment: str, unit: str, time: str,
               group: str, labels: dict | None = None, effect_sd: float = 0.25,
               study: str, table: str, column: str, seed: int, draws=None, tune=None,
               chains=None, backends=("frequentist", "bayesian"), priors=None,
               progressbar: bool = False) -> Analysis:
    """Separate OLS DiDs per value of ``group`` and the partially pooled Bayesian model.

    ``unit`` is the treated-group indicator, ``time`` the after indicator, ``treatment``
    their product; ``labels`` names the group values (``{"1": "ky"}``); ``effect_sd`` is the
    scale of the HalfNormal prior on tau (outcome units); ``priors = "vague"`` puts
    Normal(0, 10 sd(y)) on every other coefficient (else Bambi's defaults).
    """
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    data = frame[[outcome, treatment, unit, time, group]].dropna().reset_index(drop=True)
    data["g"] = data[group].map(lambda v: _label(v, labels)).astype("category")
    groups = sorted(data["g"].cat.categories)
    rows, posteriors, facts = [], {}, {"groups": {g: int((data["g"] == g).sum())
                                                  for g in groups}}
    if "frequentist" in backends:
        for g in groups:
            ols = fit_ols(data[data["g"] == g], outcome, [treatment, time, unit]).tidy(
                study=study, table=table, column=g)
            keep = ols[(ols["term"] == treatment) & (ols["quantity"] == "beta")].copy()
            keep["note"] = f"OLS of {outcome} in {g} alone (no pooling); classical SEs"
            rows.append(keep)
    if "bayesian" in backends:
        spec = load_spec("linear_regression")
        changes = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items()
                   if v is not None}
        spec = spec.with_sampler(target_accept=0.95, **changes)
        model = _model(data, outcome=outcome, treatment=treatment, unit=unit, time=time,
                       effect_sd=effect_sd, vague=priors == "vague")
        idata = sample_bambi(model, spec.sampler, seed=seed, progressbar=progressbar,
                             what=f"the pooled DiD by {group}")
        post = idata["posterior"].to_dataset()
        dev = post[f"{treatment}|g"]
        dim = [d for d in dev.dims if d not in ("chain", "draw")][0]
        effects = {f"effect_{g}": post[treatment] + dev.sel({dim: g}).drop_vars(dim)
                   for g in groups}
        idata["posterior"] = post.assign(effects)
        note = (f"Bambi gaussian: DiD effects by {group} partially pooled, tau ~ "
                f"HalfNormal({effect_sd}); priors {priors or 'default'}")
        common = dict(thresholds=spec.convergence, study=study, table=table, note=note)
        for g in groups:
            rows.append(posterior_rows(idata, {f"effect_{g}": (treatment, "beta")},
                                       column=g, n_obs=facts["groups"][g], **common))
        rows.append(posterior_rows(idata, {treatment: (treatment, "beta"),
                                           f"{treatment}|g_sigma": (treatment, "effect_sd")},
                                   column="common", n_obs=len(data), **common))
        posteriors[column] = idata
        facts["divergences"] = divergences(idata)
    return Analysis(estimates=estimates.concat(*rows), posteriors=posteriors,
                    facts={column: facts})
