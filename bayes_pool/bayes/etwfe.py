r"""Bayesian extended TWFE (Wooldridge 2023) with Bambi: one effect per cohort x period cell.

.. math::

    \operatorname{logit} P(y_{it}=1) = \alpha + \sum_{g}\sum_{s \ge g} \delta_{gs}\,
    1[g_i = g,\ t = s] + X_{it}\gamma + \lambda_t + \bar w_{k(i)}\xi + u_{k(i)}, \qquad
    u_k \sim N(0, \sigma_u^2)

(identity link and a Normal likelihood for ``family = "gaussian"``), the cells, controls and
the choice between unit effects and cohort dummies as in :mod:`bayes_pool.freq.etwfe`. With
unit effects the intercepts are correlated random effects by default: :math:`\bar w_k` holds
the unit's cohort dummies and its means of the cells, covariates and period dummies
(:func:`unit_structure`), so the cell effects are the within-unit ones the fixed-effects fit
estimates; ``[model] unit_effects = "exchangeable"`` drops :math:`\bar w` (and then leaks
level differences between units into the effects). Priors by role from the spec (cells:
``treatment``; :math:`\xi` and cohort dummies: ``unit_means``). The ATT of a cell is computed within
each posterior draw -- the average over the cell's treated rows of
:math:`p_{it} - p_{it}^{(0)}`, :math:`p^{(0)}` with the cell's effect removed -- and the
overall ATT averages over all treated cell rows (cells weighted by size); the draws are then
summarised with their convergence diagnostics. Always-treated cohorts are left out
(:mod:`bayes_pool.design.staggered`).
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
from bayes_pool.bayes.parameterization import choose_after_unit_terms
from bayes_pool.bayes.predictor import LinearPredictor, flat
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.errors import SpecError
from bayes_pool.design.staggered import (DEFAULT_CONTROL, FIRST, Control, Level,
                                        PreparedStaggered, cell_columns, control_note,
                                        resolve_level)
from bayes_pool.mundlak import unit_means
from bayes_pool.specs import ModelSpec, require_pooled

log = logging.getLogger(__name__)


def _prior(spec: dict) -> bmb.Prior:
    return bmb.Prior(spec["dist"], **{k: v for k, v in spec.items() if k != "dist"})


def _noncentered(frame: pd.DataFrame, unit: str, setting: str, outcome: str, family: str,
                 unit_terms: list[str]) -> tuple[bool, str]:
    """Bambi's ``noncentered`` flag and why
    (:func:`~bayes_pool.bayes.parameterization.choose_after_unit_terms`)."""
    choice = choose_after_unit_terms(frame, unit, setting, outcome=outcome, family=family,
                                     unit_terms=unit_terms)
    return choice.noncentered, (f"{'non-centred' if choice.noncentered else 'centred'} "
                                f"({choice.reason})")


def unit_structure(frame: pd.DataFrame, *, unit: str, time: str, effects, covariates,
                   level: str, unit_effects: str) -> tuple[pd.DataFrame, list[str], str, dict]:
    """The terms that absorb unit levels: ``(frame, fixed terms, group term, record)``.

    ``level="cohort"``: cohort dummies and no unit effects (Wooldridge 2023's pooled form).
    ``unit_effects="correlated"`` (with unit effects): cohort dummies plus the unit means of
    the effect terms, covariates and period dummies (:mod:`bayes_pool.mundlak`; means
    collinear with the cohort dummies are dropped), with ``(1|unit)`` pooled around them, so
    the effects are the within-unit ones (Mundlak 1978; Wooldridge 2021); ``"exchangeable"``:
    ``(1|unit)`` alone. The fixed terms take the ``unit_means`` prior.
    """
    if level == "cohort":
        name = "cohort"  # formulae refuses FIRST's leading "_"
        while name in frame.columns:
            name += "_"
        return (frame.assign(**{name: frame[FIRST].astype(int)}), [f"C({name})"], "",
                {"unit_structure": "cohort dummies, no unit effects"})
    group = f"(1|{unit})"
    if unit_effects == "exchangeable":
        return frame, [], group, {"unit_structure": f"exchangeable {group} (no unit means: "
                                         "level differences between units can leak into "
                                         "the effects)"}
    first = frame[FIRST].to_numpy(dtype=float)
    dummies = {f"{FIRST}_{int(g)}": (first == g).astype(float)
               for g in np.unique(first[first > 0])}
    means = unit_means(frame.assign(**dummies), unit, [*dummies, *effects, *covariates],
                       time=time)
    record = {"unit_structure": f"correlated: {group} around cohort dummies and unit means",
              **means.to_dict()}
    return pd.concat([frame, means.frame], axis=1), means.columns, group, record


def build_model(frame: pd.DataFrame, *, outcome: str, effects: list[str],
                covariates: tuple[str, ...], unit: str, time: str, family: str,
                spec: ModelSpec, level: str = "unit") -> tuple[bmb.Model, pd.DataFrame, dict]:
    """Bambi model ``outcome ~ effects + covariates + C(time) + unit terms`` (see
    :func:`unit_structure`), priors by role (``treatment`` for every effect term), built but
    not sampled. Returns the model, the frame it was built on and the unit-structure record."""
    for name in (outcome, unit, time, *effects, *covariates):
        if not name.isidentifier():
            raise SpecError(f"column name {name!r} is not a valid identifier; rename it in the "
                            "mapping file (e.g. to snake_case)")
    if spec.family != family:
        raise SpecError(f"spec {spec.name!r} is for family {spec.family!r} but the design "
                        f"asks for {family!r}")
    require_pooled(spec, "the extended TWFE or the event study")
    frame, level_terms, group, record = unit_structure(
        frame, unit=unit, time=time, effects=effects, covariates=covariates, level=level,
        unit_effects=spec.unit_effects)
    formula = f"{outcome} ~ " + " + ".join(
        [*effects, *covariates, f"C({time})", *level_terms, *([group] if group else [])])
    roles = {"intercept": ["Intercept"], "treatment": list(effects),
             "covariates": list(covariates), "time": [f"C({time})"],
             "unit_means": level_terms, "sigma": ["sigma"] if family == "gaussian" else []}
    priors = {}
    for role, prior in spec.priors.items():
        if prior == "default" or role not in (*roles, "unit_sd") or (role == "unit_sd"
                                                                      and not group):
            continue
        if role == "unit_sd":
            priors[f"1|{unit}"] = bmb.Prior("Normal", mu=0.0, sigma=_prior(prior))
        else:
            # roles of terms this model lacks (the DiD spec's unit_means, unit_time_sd) are skipped
            for term in roles.get(role, []):
                priors[term] = _prior(prior)
    nc, why = (_noncentered(frame, unit, spec.sampler.parameterization, outcome, family,
                            level_terms) if group else (False, ""))
    model = bmb.Model(formula, frame, family=bambi_family(family), priors=priors,
                      noncentered=nc)
    model.build()
    if group:
        record["parameterization"] = why
    if spec.unit_time:
        record["unit_time"] = "not fitted: the staggered models have no unit x time effect yet"
    return model, frame, record


def sample(model: bmb.Model, spec: ModelSpec, *, seed: int, unit: str,
           progressbar: bool = False):
    """NUTS with the spec's sampler settings (passed straight through to Bambi); unit
    intercepts around unit means are sampled through their levels
    (:mod:`bayes_pool.bayes.levels`). Returns the trace and what the manifest records about
    how it was sampled."""
    idata = sample_bambi(model, spec.sampler, seed=seed, progressbar=progressbar,
                         what="the extended TWFE model", unit_term=f"1|{unit}")
    attrs = idata["posterior"].attrs
    return idata, {"sampled_as": attrs.get("unit_levels", "Bambi's model as written"),
                   "mass_matrix": attrs.get("mass_matrix", spec.sampler.backend)}


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
    frame: pd.DataFrame
    structure: dict

    @property
    def divergences(self) -> int:
        return divergences(self.idata)

    def tidy(self, *, study: str, table: str = "staggered", column: str = "etwfe"
             ) -> pd.DataFrame:
        """Rows: overall ``att`` (column ``column``) and per cell (column ``g<g>_t<t>``)."""
        d = self.prepared.design
        note = (f"Bayesian ETWFE (Wooldridge 2023), Bambi {d.family}; "
                f"{control_note(self.control)}; {self.structure['level']}; "
                f"{self.structure['unit_structure']}; {self.spec.sampler.backend}")
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
              control: Control = DEFAULT_CONTROL, level: Level | None = None,
              progressbar: bool = False) -> BayesETWFEResult:
    """Sample the ETWFE posterior on the event sample and add the per-draw ATTs.

    ``level=None`` applies :func:`~bayes_pool.design.staggered.effect_level`, as the frequentist
    fit does, so both backends fit the same design."""
    d = prepared.design
    level, reason = resolve_level(prepared, level)
    frame = prepared.event_frame.copy()
    cells = cell_columns(frame, control=control)
    model, frame, structure = build_model(
        frame, outcome=d.outcome, effects=list(cells), covariates=d.covariates, unit=d.unit,
        time=d.time, family=d.family, spec=spec, level=level)
    idata, sampled = sample(model, spec, seed=seed, unit=d.unit, progressbar=progressbar)
    post = [c for c, i in cells.items() if i["post"]]
    targets = {"att_overall": (np.flatnonzero(frame[post].to_numpy().sum(axis=1) > 0), post)}
    for c, info in cells.items():
        targets[f"att_{info['label']}"] = (np.flatnonzero(frame[c].to_numpy() == 1), [c])
    add_switch_off_draws(model, idata, frame, d.family, targets)
    return BayesETWFEResult(prepared=prepared, spec=spec, model=model, idata=idata,
                            cells=cells, control=control, frame=frame,
                            structure={"level": reason, **structure, **sampled},
                            cell_n={i["label"]: int(frame[c].sum()) for c, i in cells.items()})
