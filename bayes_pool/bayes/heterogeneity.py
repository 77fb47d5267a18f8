r"""Bayesian heterogeneity of a DiD effect: separate subgroup fits and one partially pooled model.

Separate subgroup fits
    The hierarchical DiD logit of :mod:`bayes_pool.bayes.did` on each subgroup's rows, with the
    per-draw AME, as Table 6 of Zhang & Chen (2024) does with TWFE logits (the frequentist twin
    is :mod:`bayes_pool.freq.heterogeneity`).

One pooled model
    The policy coefficient varies by subgroup around a common value, with partial pooling, and
    (default, ``unit_effects = "correlated"``) the unit intercepts are partially pooled around
    the unit means of the regressors (:mod:`bayes_pool.mundlak`), so that, like the fixed
    effects of the frequentist fits, they absorb level differences between units that go with
    treatment:

    .. math::

        \operatorname{logit} P(y_{it}=1) = \alpha + (\beta + \delta_{g(i)}) D_{it}
            + X_{it}\gamma + \lambda_t + \kappa_{g(i)} + \bar w_{k(i)}\xi + u_{k(i)},
        \quad \delta_g \sim N(0, \tau^2),\ u_k \sim N(0, \sigma_u^2)

    with :math:`\bar w_k` the unit means of the treatment, the covariates, the high-subgroup
    indicator, treatment x high subgroup and the period dummies (means constant across units
    or collinear are dropped). Bambi: ``y ~ D + X + C(time) + C(subgroup) + mean_... +
    (1|unit) + (0 + D|subgroup)``; ``unit_effects = "exchangeable"`` leaves the means out
    (the model before issue 14). Each subgroup's AME is computed within every posterior draw
    over that subgroup's rows, holding the unit means fixed (they are unit-level covariates),
    then the difference AME(high) - AME(low) and the posterior probability that it is positive.

Rows: ``ame`` of the treatment in each subgroup column from the separate fits (e.g.
``low_income``), ``ame`` in ``<label>_pooled`` columns from the pooled model, and
``ame_difference`` / ``prob_positive`` in ``<split>_difference`` (pooled model) and
``<split>_difference_separate`` (separate fits). :mod:`bayes_pool.heterogeneity_workflow`
runs both backends for a set of splits.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import bambi as bmb
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from bayes_pool import estimates
from bayes_pool.bayes import did as bayes_did
from bayes_pool.bayes.diagnostics import posterior_rows
from bayes_pool.bayes.families import bambi_family
from bayes_pool.bayes.predictor import LinearPredictor, flat
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.design import DiDDesign
from bayes_pool.errors import InputError, SpecError
from bayes_pool.mundlak import UnitMeans, with_unit_means
from bayes_pool.specs import MODELS_DIR, ModelSpec, require_pooled, spec_from_dict
from bayes_pool.subgroups import GROUP, Split

__all__ = ["GROUP", "BayesSplit", "HeterogeneitySpec", "Split", "fit_pooled", "fit_split",
           "load_heterogeneity_spec", "pooled_formula"]

HIGH = "high_subgroup"
"""0/1 column of the pooled model: the row is in the split's ``high`` subgroup."""


@dataclass(frozen=True)
class HeterogeneitySpec:
    """The DiD spec plus the priors of the pooled model's subgroup terms."""

    spec: ModelSpec
    effect_sd: dict
    baseline: dict

    def with_sampler(self, **changes) -> HeterogeneitySpec:
        """A copy with some sampler settings changed (e.g. fewer draws in a quick run)."""
        return replace(self, spec=self.spec.with_sampler(**changes))


def load_heterogeneity_spec(name_or_path: str | Path = "heterogeneity") -> HeterogeneitySpec:
    """Load ``models/heterogeneity.toml``: an ordinary spec plus its ``[subgroup]`` table."""
    path = Path(name_or_path)
    if not path.suffix:
        path = MODELS_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise SpecError(f"heterogeneity spec {str(path)!r} not found")
    raw = tomllib.loads(path.read_text())
    sub = raw.pop("subgroup", {})
    for key in ("effect_sd", "baseline"):
        if not (isinstance(sub.get(key), dict) and "dist" in sub[key]):
            raise SpecError(f"{path}: [subgroup] needs {key} = {{ dist = ..., ... }}; got "
                            f"{sub.get(key)!r}")
    unknown = set(sub) - {"effect_sd", "baseline"}
    if unknown:
        raise SpecError(f"{path}: unknown key(s) {sorted(unknown)} in [subgroup]; valid: "
                        "['baseline', 'effect_sd']")
    return HeterogeneitySpec(spec=spec_from_dict(raw, path=str(path)),
                             effect_sd=sub["effect_sd"], baseline=sub["baseline"])


@dataclass
class BayesSplit:
    """Bayesian fits for one split: separate per-subgroup DiDs and the pooled model."""

    name: str
    split: Split
    spec: HeterogeneitySpec
    separate: dict = field(default_factory=dict)
    pooled: object = None
    pooled_n_obs: int = 0
    unit_means: UnitMeans | None = None

    @property
    def posteriors(self) -> dict:
        """InferenceData by name: ``heterogeneity_<label>``, ``heterogeneity_<split>_pooled``."""
        out = {f"heterogeneity_{label}": fit.idata for label, fit in self.separate.items()}
        if self.pooled is not None:
            out[f"heterogeneity_{self.name}_pooled"] = self.pooled
        return out

    def tidy(self, *, study: str, table: str, term: str) -> pd.DataFrame:
        """Rows of the estimates table (see the module docstring)."""
        conv, s = self.spec.spec.convergence, self.split
        parts = []
        for label, fit in self.separate.items():
            rows = fit.tidy(study=study, table=table, column=label)
            parts.append(rows[(rows["term"] == term) & (rows["quantity"] == "ame")])
        if len(self.separate) == 2:
            parts.append(self._separate_difference(study=study, table=table, term=term))
        if self.pooled is not None:
            note = (f"pooled model: (0 + {term} | {GROUP}) partial pooling, split {self.name}; "
                    f"unit effects {self.spec.spec.unit_effects}")
            for label in (s.low, s.high):
                parts.append(posterior_rows(
                    self.pooled, {f"ame_{label}": (term, "ame")}, thresholds=conv, study=study,
                    table=table, column=f"{label}_pooled", n_obs=self.pooled_n_obs, note=note))
            parts.append(posterior_rows(
                self.pooled, {"ame_difference": (term, "ame_difference"),
                              "difference_positive": (term, "prob_positive")},
                thresholds=conv, study=study, table=table, column=f"{self.name}_difference",
                n_obs=self.pooled_n_obs,
                note=note + f"; {s.high} minus {s.low}; prob_positive = posterior "
                            "P(difference > 0)"))
        return estimates.concat(*parts)

    def _separate_difference(self, *, study: str, table: str, term: str) -> pd.DataFrame:
        """Difference of the separate fits' AME draws (independent posteriors)."""
        lo_fit, hi_fit = self.separate[self.split.low], self.separate[self.split.high]
        lo, hi = (f.idata["posterior"][f"ame_{term}"] for f in (lo_fit, hi_fit))
        if lo.shape != hi.shape:
            return estimates.frame([])
        diff = np.asarray(hi) - np.asarray(lo)
        post = hi_fit.idata.copy()
        coords = {"chain": hi["chain"], "draw": hi["draw"]}
        post["posterior"] = xr.Dataset({
            "ame_difference": xr.DataArray(diff, dims=("chain", "draw"), coords=coords),
            "difference_positive": xr.DataArray((diff > 0).astype(float),
                                                dims=("chain", "draw"), coords=coords)})
        return posterior_rows(
            post, {"ame_difference": (term, "ame_difference"),
                   "difference_positive": (term, "prob_positive")},
            thresholds=self.spec.spec.convergence, study=study, table=table,
            column=f"{self.name}_difference_separate",
            n_obs=lo_fit.prepared.n_obs + hi_fit.prepared.n_obs,
            note=f"{self.split.high} minus {self.split.low}; separate Bayesian fits, draws "
                 "paired by index (independent posteriors)")


def fit_split(frame: pd.DataFrame, design: DiDDesign, name: str, split: Split,
              spec: HeterogeneitySpec, *, seeds, separate: bool = True, pooled: bool = True,
              progressbar: bool = False, say=None) -> BayesSplit:
    """The separate Bayesian DiD of each subgroup and/or the pooled model for one split.

    ``seeds`` is an iterator of integer seeds, one taken per fit.
    """
    say = say or (lambda message: None)
    out = BayesSplit(name=name, split=split, spec=spec)
    if separate:
        labels = split.labels(frame)
        for label in (split.low, split.high):
            sub = frame[labels == label]
            if sub.empty:
                raise InputError(f"split {name!r}: no rows with label {label!r}")
            prepared = design.prepare(sub)
            say(f"{name}: Bayesian DiD on {label} ({prepared.n_obs} rows)")
            out.separate[label] = bayes_did.fit_did(prepared, spec.spec, seed=int(next(seeds)),
                                                    progressbar=progressbar)
    if pooled:
        say(f"{name}: pooled model with subgroup-specific effects")
        out.pooled, out.pooled_n_obs, out.unit_means = fit_pooled(
            frame, design, split, spec, seed=int(next(seeds)), progressbar=progressbar)
    return out


def pooled_formula(design: DiDDesign, means: tuple[str, ...] = ()) -> str:
    """Bambi formula of the pooled model (``means``: the unit-mean columns, if correlated)."""
    d = design
    rhs = [d.treatment, *d.covariates, f"C({d.time})", f"C({GROUP})", *means, f"(1|{d.unit})",
           f"(0 + {d.treatment}|{GROUP})"]
    return f"{d.outcome} ~ " + " + ".join(rhs)


def pooled_data(frame: pd.DataFrame, design: DiDDesign, split: Split, spec: ModelSpec
                ) -> tuple[pd.DataFrame, UnitMeans | None]:
    """The pooled model's sample (rows in either subgroup, complete cases) with the subgroup
    label and, for ``unit_effects = "correlated"``, the unit means appended."""
    if GROUP in design.columns:
        raise InputError(f"column name {GROUP!r} is reserved for the subgroup label")
    require_pooled(spec, "the pooled heterogeneity model")
    labels = split.labels(frame)
    keep = labels.notna()
    sub = frame.loc[keep].copy()
    sub[GROUP] = labels[keep].astype(str)
    data = _with_group(sub, design)
    if spec.unit_effects != "correlated":
        return data, None
    d = design
    high = (data[GROUP] == split.high).astype(float)
    data[HIGH] = high
    data[f"{d.treatment}_x_{HIGH}"] = high * data[d.treatment]
    regressors = [d.treatment, *d.covariates, HIGH, f"{d.treatment}_x_{HIGH}"]
    data, means = with_unit_means(data, d.unit, regressors, time=d.time)
    return data.drop(columns=[HIGH, f"{d.treatment}_x_{HIGH}"]), means


def fit_pooled(frame: pd.DataFrame, design: DiDDesign, split: Split, spec: HeterogeneitySpec,
               *, seed: int, progressbar: bool = False):
    """Sample the pooled model; return the InferenceData (with subgroup AME draws), n_obs and
    the unit means used (None with exchangeable unit effects).

    Added (chain, draw) variables: ``ame_<low>``, ``ame_<high>``, ``ame_difference``
    (high - low) and ``difference_positive`` (its indicator, whose mean is the posterior
    probability that the difference is positive).
    """
    s = spec.spec
    if s.unit_time:
        raise SpecError(f"spec {s.name!r}: unit_time = true is not implemented in the pooled "
                        "heterogeneity model; set it to false")
    data, means = pooled_data(frame, design, split, s)
    prepared = design.prepare(data[design.columns])
    model = bmb.Model(pooled_formula(design, tuple(means.columns) if means else ()), data,
                      family=bambi_family("bernoulli"), priors=_pooled_priors(prepared, spec,
                                                                              means))
    model.build()
    idata = sample_bambi(model, s.sampler, seed=seed, progressbar=progressbar,
                         what=f"the pooled {split.low}/{split.high} subgroup model")
    add_subgroup_ame_draws(model, idata, data, design, split)
    return idata, len(data), means


def _pooled_priors(prepared, spec: HeterogeneitySpec, means: UnitMeans | None) -> dict:
    """The DiD's priors by role, plus the subgroup terms' and the unit means' priors."""
    s = spec.spec
    own = {"unit_means", "unit_time_sd"}
    priors = bayes_did.priors(prepared, replace(s, priors={k: v for k, v in s.priors.items()
                                                           if k not in own}))
    priors[f"C({GROUP})"] = _prior(spec.baseline)
    priors[f"{prepared.design.treatment}|{GROUP}"] = bmb.Prior("Normal", mu=0.0,
                                                               sigma=_prior(spec.effect_sd))
    role = s.priors.get("unit_means", "default")
    if means is not None and role != "default":
        priors.update({name: _prior(role) for name in means.columns})
    return priors


def add_subgroup_ame_draws(model, idata, data: pd.DataFrame, design: DiDDesign,
                           split: Split) -> None:
    """Per-draw AME of the treatment within each subgroup, their difference and its sign."""
    post = idata["posterior"]
    lp = LinearPredictor(model, post)
    beta = flat(post[design.treatment])
    dev = post[f"{design.treatment}|{GROUP}"]
    level_dim = [dim for dim in dev.dims if dim not in ("chain", "draw")][0]
    D = data[design.treatment].to_numpy(dtype=float)
    group = data[GROUP].to_numpy()
    labels = (split.low, split.high)
    slopes = {lab: beta + flat(dev.sel({level_dim: lab})) for lab in labels}
    ame = {lab: np.empty(lp.n_draws) for lab in labels}
    for rows, eta in lp.chunks():
        for lab in labels:
            keep = group == lab
            b, e, x = slopes[lab][rows, None], eta[:, keep], D[keep][None, :]
            ame[lab][rows] = (expit(e + b * (1 - x)) - expit(e - b * x)).mean(axis=1)
    new = {f"ame_{lab}": lp.draws(ame[lab]) for lab in labels}
    diff = new[f"ame_{split.high}"] - new[f"ame_{split.low}"]
    new["ame_difference"] = diff
    new["difference_positive"] = (diff > 0).astype(float)
    idata["posterior"] = idata["posterior"].to_dataset().assign(new)


def _with_group(sub: pd.DataFrame, design: DiDDesign) -> pd.DataFrame:
    """The design's complete-case sample of ``sub`` with the subgroup label kept."""
    cols = [*design.columns, GROUP]
    data = sub[cols].dropna().reset_index(drop=True)
    prepared = design.prepare(data)
    frame = prepared.frame.copy()
    frame[GROUP] = data[GROUP].to_numpy()
    return frame


def _prior(spec: dict) -> bmb.Prior:
    return bmb.Prior(spec["dist"], **{k: v for k, v in spec.items() if k != "dist"})
