r"""Bayesian extended TWFE (Wooldridge 2023) with Bambi: one effect per cohort x period cell.

.. math::

    \operatorname{logit} P(y_{it}=1) = \alpha + \sum_{g}\sum_{s \ge g} \delta_{gs}\,
    1[g_i = g,\ t = s] + X_{it}\gamma + \lambda_t + u_{k(i)}, \qquad
    u_k \sim N(0, \sigma_u^2)

(identity link and a Normal likelihood for ``family = "gaussian"``), the cells and controls
as in :mod:`bayes_pool.freq.etwfe`, unit intercepts partially pooled, priors by role from the
spec (the cell effects take the ``treatment`` prior). The ATT of a cell is computed within
each posterior draw -- the average over the cell's treated rows of
:math:`p_{it} - p_{it}^{(0)}`, :math:`p^{(0)}` with the cell's effect removed -- and the
overall ATT averages over all treated cell rows (cells weighted by size); the draws are then
summarised with their convergence diagnostics. Always-treated cohorts are left out
(:mod:`bayes_pool.event_time`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import bambi as bmb
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.families import bambi_family
from bayes_pool.bayes.parameterization import noncentered
from bayes_pool.bayes.predictor import LinearPredictor, flat
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.errors import SpecError
from bayes_pool.event_time import Control, PreparedStaggered
from bayes_pool.freq.etwfe import cell_columns
from bayes_pool.specs import ModelSpec

log = logging.getLogger(__name__)


def _prior(spec: dict) -> bmb.Prior:
    return bmb.Prior(spec["dist"], **{k: v for k, v in spec.items() if k != "dist"})


def build_model(frame: pd.DataFrame, *, outcome: str, effects: list[str],
                covariates: tuple[str, ...], unit: str, time: str, family: str,
                spec: ModelSpec) -> bmb.Model:
    """Bambi model ``outcome ~ effects + covariates + C(time) + (1|unit)``, priors by role
    (``treatment`` for every effect term), built but not sampled."""
    for name in (outcome, unit, time, *effects, *covariates):
        if not name.isidentifier():
            raise SpecError(f"column name {name!r} is not a valid identifier; rename it in the "
                            "mapping file (e.g. to snake_case)")
    if spec.family != family:
        raise SpecError(f"spec {spec.name!r} is for family {spec.family!r} but the design "
                        f"asks for {family!r}")
    formula = f"{outcome} ~ " + " + ".join([*effects, *covariates, f"C({time})", f"(1|{unit})"])
    roles = {"intercept": ["Intercept"], "treatment": list(effects),
             "covariates": list(covariates), "time": [f"C({time})"],
             "sigma": ["sigma"] if family == "gaussian" else []}
    priors = {}
    for role, prior in spec.priors.items():
        if prior == "default":
            continue
        if role == "unit_sd":
            priors[f"1|{unit}"] = bmb.Prior("Normal", mu=0.0, sigma=_prior(prior))
        else:
            # roles of terms this model lacks (the DiD spec's unit_means, unit_time_sd) are skipped
            for term in roles.get(role, []):
                priors[term] = _prior(prior)
    model = bmb.Model(formula, frame, family=bambi_family(family), priors=priors,
                      noncentered=noncentered(frame, unit, spec.sampler.parameterization))
    model.build()
    return model


def sample(model: bmb.Model, spec: ModelSpec, *, seed: int, progressbar: bool = False):
    """NUTS with the spec's sampler settings (passed straight through to Bambi)."""
    return sample_bambi(model, spec.sampler, seed=seed, progressbar=progressbar,
                        what="the extended TWFE model")


def add_switch_off_draws(model: bmb.Model, idata, frame: pd.DataFrame, family: str,
                         targets: dict[str, tuple[np.ndarray, list[str]]]) -> None:
    """Add a (chain, draw) variable per target: the mean over ``rows`` of p - p(terms off).

    ``targets`` maps a new variable name to ``(rows, terms)``; each term is a 0/1 column
    entering linearly, so the linear predictor without it is eta - sum_j b_j x_j.
    """
    post = idata["posterior"]
    b = {t: flat(post[t]) for _, terms in targets.values() for t in terms}
    x = {(name, t): frame[t].to_numpy(dtype=float)[rows]
         for name, (rows, terms) in targets.items() for t in terms}

    def shift(name, draws):
        return sum(b[t][draws, None] * x[name, t][None, :] for t in targets[name][1])

    if family == "bernoulli":
        lp = LinearPredictor(model, post)
        values = {name: np.empty(lp.n_draws) for name in targets}
        for draws, eta in lp.chunks():
            for name, (rows, _) in targets.items():
                e = eta[:, rows]
                values[name][draws] = (expit(e) - expit(e - shift(name, draws))).mean(axis=1)
    else:
        every = slice(0, post.sizes["chain"] * post.sizes["draw"])
        values = {name: shift(name, every).mean(axis=1) for name in targets}
    shape = (post.sizes["chain"], post.sizes["draw"])
    coords = {"chain": post["chain"], "draw": post["draw"]}
    new = {name: xr.DataArray(v.reshape(shape), dims=("chain", "draw"), coords=coords)
           for name, v in values.items()}
    idata["posterior"] = idata["posterior"].to_dataset().assign(new)


@dataclass
class BayesETWFEResult:
    """A sampled Bayesian ETWFE with per-draw ATTs (``att_overall``, ``att_g<g>_t<t>``)."""

    prepared: PreparedStaggered
    spec: ModelSpec
    model: bmb.Model
    idata: object
    cells: dict[str, dict]
    cell_n: dict[str, int]
    control: str

    @property
    def divergences(self) -> int:
        return divergences(self.idata)

    def tidy(self, *, study: str, table: str = "staggered", column: str = "etwfe"
             ) -> pd.DataFrame:
        """Rows: overall ``att`` (column ``column``) and per cell (column ``g<g>_t<t>``)."""
        d = self.prepared.design
        note = (f"Bayesian ETWFE (Wooldridge 2023), Bambi {d.family} hierarchical; "
                f"controls: {self.control}-treated; {self.spec.sampler.backend}")
        if self.prepared.always_treated:
            note += f"; always-treated {d.unit}s left out: {', '.join(self.prepared.always_treated)}"
        n_treated = sum(self.cell_n[i["label"]] for i in self.cells.values() if i["post"])
        parts = [posterior_rows(self.idata, {"att_overall": (d.treatment, "att")},
                                thresholds=self.spec.convergence, study=study, table=table,
                                column=column, n_obs=n_treated,
                                note=note + "; cells weighted by size")]
        for info in self.cells.values():
            lab = info["label"]
            parts.append(posterior_rows(
                self.idata, {f"att_{lab}": (d.treatment, "att")},
                thresholds=self.spec.convergence, study=study, table=table, column=lab,
                n_obs=self.cell_n[lab],
                note=note + ("" if info["post"] else "; pre-treatment cell (placebo)")))
        return pd.concat(parts, ignore_index=True)


def fit_etwfe(prepared: PreparedStaggered, spec: ModelSpec, *, seed: int,
              control: Control = "never", progressbar: bool = False) -> BayesETWFEResult:
    """Sample the ETWFE posterior on the event sample and add the per-draw ATTs."""
    d = prepared.design
    frame = prepared.event_frame.copy()
    cells = cell_columns(frame, control=control)
    model = build_model(frame, outcome=d.outcome, effects=list(cells), covariates=d.covariates,
                        unit=d.unit, time=d.time, family=d.family, spec=spec)
    idata = sample(model, spec, seed=seed, progressbar=progressbar)
    post = [c for c, i in cells.items() if i["post"]]
    targets = {"att_overall": (np.flatnonzero(frame[post].to_numpy().sum(axis=1) > 0), post)}
    for c, info in cells.items():
        targets[f"att_{info['label']}"] = (np.flatnonzero(frame[c].to_numpy() == 1), [c])
    add_switch_off_draws(model, idata, frame, d.family, targets)
    return BayesETWFEResult(prepared=prepared, spec=spec, model=model, idata=idata,
                            cells=cells, control=control,
                            cell_n={i["label"]: int(frame[c].sum()) for c, i in cells.items()})
