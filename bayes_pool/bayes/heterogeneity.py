r"""Heterogeneity of a DiD effect across subgroups: separate fits and one partially pooled model.

Two readings of "is the effect larger for group B than for group A?":

Separate subgroup fits
    The DiD of :mod:`bayes_pool.freq.did` (TWFE logit, clustered SE, delta-method AME) and of
    :mod:`bayes_pool.bayes.did` (hierarchical logit, per-draw AME) on each subgroup's rows,
    as Table 6 of Zhang & Chen (2024) does. The frequentist difference of the two AMEs is
    tested with the SE of a difference of independent estimates, which the paper never does.

One pooled model
    The policy coefficient varies by subgroup around a common value, with partial pooling:

    .. math::

        \operatorname{logit} P(y_{it}=1) = \alpha + (\beta + \delta_{g(i)}) D_{it}
            + X_{it}\gamma + \lambda_t + \kappa_{g(i)} + u_{k(i)},
        \quad \delta_g \sim N(0, \tau^2),\ u_k \sim N(0, \sigma_u^2)

    (Bambi: ``y ~ D + X + C(time) + C(subgroup) + (1|unit) + (0 + D|subgroup)``). Each
    subgroup's AME is computed within every posterior draw over that subgroup's rows, then the
    difference AME(high) - AME(low) and the posterior probability that it is positive.

Rows (table ``"6"`` by default): ``ame`` of the treatment in each subgroup column (frequentist
and Bayesian separate fits, e.g. ``low_income``), ``ame`` in ``<label>_pooled`` columns from the
pooled model, and ``ame_difference`` / ``prob_positive`` in ``<split>_difference`` (pooled
model and frequentist) and ``<split>_difference_separate`` (separate Bayesian fits).

Examples
--------
The subgroup definitions of Zhang & Chen (2024), Table 6, belong in the study folder; there
they would read::

    def table6_splits() -> dict[str, Split]:
        return {
            "income": Split(lambda f: np.where(f["monthly_income"].isna(), None,
                                               np.where(f["monthly_income"] <= 700,
                                                        "low_income", "high_income")),
                            low="low_income", high="high_income"),
            "generation": Split(lambda f: np.where(f["birth_year"].isna(), None,
                                                   np.where(f["birth_year"] < 1980,
                                                            "old_generation", "new_generation")),
                                low="old_generation", high="new_generation"),
            "education": Split(lambda f: np.where(f["education"].isna(), None,
                                                  np.where(f["education"] <= 2,
                                                           "low_education", "high_education")),
                               low="low_education", high="high_education"),
        }

    result = heterogeneity(frame, table3_design("(2)"), table6_splits(),
                           spec=load_heterogeneity_spec(), seed=seed)
    rows = result.tidy(study="pooling-did", table="6")
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import bambi as bmb
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.special import expit

from bayes_pool import estimates
from bayes_pool.bayes import did as bayes_did
from bayes_pool.bayes.diagnostics import posterior_rows
from bayes_pool.bayes.families import bambi_family
from bayes_pool.bayes.predictor import LinearPredictor, flat
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.design import DiDDesign
from bayes_pool.errors import InputError, SpecError
from bayes_pool.freq import did as freq_did
from bayes_pool.specs import MODELS_DIR, ModelSpec, spec_from_dict

log = logging.getLogger(__name__)

GROUP = "subgroup"
"""Name of the subgroup column added to the frame of the pooled model."""


@dataclass(frozen=True)
class Split:
    """A two-way split of the sample.

    Parameters
    ----------
    by
        A column holding the subgroup labels, or a function of the frame returning one label
        per row (None/NaN where the row belongs to neither group).
    low, high
        The two labels; differences are ``high - low``.
    """

    by: str | Callable[[pd.DataFrame], object]
    low: str
    high: str

    def labels(self, frame: pd.DataFrame) -> pd.Series:
        """The label of every row (NaN outside both groups); unknown labels raise."""
        if isinstance(self.by, str):
            if self.by not in frame.columns:
                raise InputError(f"split column {self.by!r} not in the data; columns: "
                                 f"{sorted(map(str, frame.columns))}")
            lab = frame[self.by]
        else:
            lab = pd.Series(np.asarray(self.by(frame), dtype=object), index=frame.index)
        lab = lab.astype(object).where(lab.notna(), None)
        bad = sorted(set(lab.dropna().astype(str)) - {self.low, self.high})
        if bad:
            raise InputError(f"split labels must be {self.low!r} or {self.high!r}; found {bad} "
                             f"in {int(lab.isin(bad).sum())} rows")
        return lab


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
class SplitResult:
    """Fits for one split: frequentist and Bayesian per subgroup, and the pooled model."""

    name: str
    split: Split
    freq: dict = field(default_factory=dict)
    bayes: dict = field(default_factory=dict)
    pooled: object = None
    pooled_n_obs: int = 0


@dataclass
class HeterogeneityResult:
    """All splits; :meth:`tidy` gives the estimates rows, :attr:`posteriors` the InferenceData."""

    design: DiDDesign
    spec: HeterogeneitySpec
    splits: dict[str, SplitResult]

    @property
    def posteriors(self) -> dict:
        out = {}
        for name, r in self.splits.items():
            for label, fit in r.bayes.items():
                out[f"heterogeneity_{label}"] = fit.idata
            if r.pooled is not None:
                out[f"heterogeneity_{name}_pooled"] = r.pooled
        return out

    def tidy(self, *, study: str, table: str = "6") -> pd.DataFrame:
        """Rows of the estimates table for every split (see the module docstring)."""
        t = self.design.treatment
        conv = self.spec.spec.convergence
        parts = []
        for name, r in self.splits.items():
            s = r.split
            for label, fit in r.freq.items():
                rows = fit.tidy(study=study, table=table, column=label)
                parts.append(rows[(rows["term"] == t) & (rows["quantity"] == "ame")])
            if len(r.freq) == 2:
                parts.append(_freq_difference(r, study=study, table=table, term=t))
            for label, fit in r.bayes.items():
                rows = fit.tidy(study=study, table=table, column=label)
                parts.append(rows[(rows["term"] == t) & (rows["quantity"] == "ame")])
            if len(r.bayes) == 2:
                parts.append(_separate_difference(r, study=study, table=table, term=t,
                                                  thresholds=conv))
            if r.pooled is not None:
                note = f"pooled model: (0 + {t} | {GROUP}) partial pooling, split {name}"
                for label in (s.low, s.high):
                    parts.append(posterior_rows(
                        r.pooled, {f"ame_{label}": (t, "ame")}, thresholds=conv, study=study,
                        table=table, column=f"{label}_pooled", n_obs=r.pooled_n_obs, note=note))
                parts.append(posterior_rows(
                    r.pooled, {"ame_difference": (t, "ame_difference"),
                               "difference_positive": (t, "prob_positive")},
                    thresholds=conv, study=study, table=table, column=f"{name}_difference",
                    n_obs=r.pooled_n_obs,
                    note=note + f"; {s.high} minus {s.low}; prob_positive = posterior "
                                "P(difference > 0)"))
        return estimates.concat(*parts)


def heterogeneity(frame: pd.DataFrame, design: DiDDesign, groups: dict[str, Split | str],
                  *, spec: HeterogeneitySpec, seed: int, frequentist: bool = True,
                  separate: bool = True, pooled: bool = True,
                  progressbar: bool = False, progress=None) -> HeterogeneityResult:
    """Subgroup DiD fits and the partially pooled model for each split.

    Parameters
    ----------
    frame
        The data (all rows; each split keeps the rows with a label, then complete cases).
    design
        The DiD design (family ``bernoulli``).
    groups
        Split name (``"income"``) -> :class:`Split`, or a column name whose two values (in
        sorted order: low, high) are the labels.
    spec
        :func:`load_heterogeneity_spec` (the subgroup fits use its ordinary spec part).
    seed
        Root seed; each Bayesian fit gets a child seed (``SeedSequence(seed).spawn``).
    frequentist, separate, pooled
        Which fits to run: frequentist subgroup logits, separate Bayesian subgroup fits, the
        pooled model.
    progressbar
        PyMC/nutpie progress bars (off by default).
    progress
        Optional ``progress(message)`` callback before each fit.
    """
    if design.family != "bernoulli":
        raise SpecError(f"heterogeneity() fits logits; design family is {design.family!r}")
    seeds = iter(np.random.SeedSequence(seed).generate_state(4 * len(groups) + 1))
    out = {}
    for name, split in groups.items():
        split = _as_split(frame, split)
        labels = split.labels(frame)
        res = SplitResult(name=name, split=split)
        for label in (split.low, split.high):
            sub = frame[labels == label]
            if sub.empty:
                raise InputError(f"split {name!r}: no rows with label {label!r}")
            prepared = design.prepare(sub)
            if frequentist:
                _say(progress, f"{name}: frequentist DiD on {label} ({prepared.n_obs} rows)")
                res.freq[label] = freq_did.fit_did(prepared)
            if separate:
                _say(progress, f"{name}: Bayesian DiD on {label} ({prepared.n_obs} rows)")
                res.bayes[label] = bayes_did.fit_did(prepared, spec.spec, seed=int(next(seeds)),
                                                     progressbar=progressbar)
        if pooled:
            _say(progress, f"{name}: pooled model with subgroup-specific effects")
            res.pooled, res.pooled_n_obs = fit_pooled(frame, design, split, spec,
                                                      seed=int(next(seeds)),
                                                      progressbar=progressbar)
        out[name] = res
    return HeterogeneityResult(design=design, spec=spec, splits=out)


def pooled_formula(design: DiDDesign) -> str:
    """Bambi formula of the pooled model."""
    d = design
    rhs = [d.treatment, *d.covariates, f"C({d.time})", f"C({GROUP})", f"(1|{d.unit})",
           f"(0 + {d.treatment}|{GROUP})"]
    return f"{d.outcome} ~ " + " + ".join(rhs)


def fit_pooled(frame: pd.DataFrame, design: DiDDesign, split: Split, spec: HeterogeneitySpec,
               *, seed: int, progressbar: bool = False):
    """Sample the pooled model; return the InferenceData (with subgroup AME draws) and n_obs.

    Added (chain, draw) variables: ``ame_<low>``, ``ame_<high>``, ``ame_difference``
    (high - low) and ``difference_positive`` (its indicator, whose mean is the posterior
    probability that the difference is positive).
    """
    if GROUP in design.columns:
        raise InputError(f"column name {GROUP!r} is reserved for the subgroup label")
    labels = split.labels(frame)
    keep = labels.notna()
    sub = frame.loc[keep].copy()
    sub[GROUP] = labels[keep].astype(str)
    data = _with_group(sub, design)
    prepared = design.prepare(data[design.columns])
    s = spec.spec
    priors = bayes_did.priors(prepared, s)
    priors[f"C({GROUP})"] = _prior(spec.baseline)
    priors[f"{design.treatment}|{GROUP}"] = bmb.Prior("Normal", mu=0.0,
                                                      sigma=_prior(spec.effect_sd))
    model = bmb.Model(pooled_formula(design), data, family=bambi_family("bernoulli"),
                      priors=priors)
    model.build()
    idata = sample_bambi(model, s.sampler, seed=seed, progressbar=progressbar,
                         what=f"the pooled {split.low}/{split.high} subgroup model")
    add_subgroup_ame_draws(model, idata, data, design, split)
    return idata, len(data)


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


def _as_split(frame: pd.DataFrame, split: Split | str) -> Split:
    if isinstance(split, Split):
        return split
    if isinstance(split, str) and split in frame.columns:
        values = sorted(frame[split].dropna().astype(str).unique())
        if len(values) != 2:
            raise InputError(f"split column {split!r} must have exactly 2 values, has "
                             f"{len(values)}: {values[:10]}")
        lab = frame[split].astype(str).where(frame[split].notna(), None)
        return Split(by=lambda f, lab=lab: lab.reindex(f.index), low=values[0], high=values[1])
    raise InputError(f"a split must be a Split or a column of the data; got {split!r}")


def _freq_difference(r: SplitResult, *, study: str, table: str, term: str) -> pd.DataFrame:
    """AME(high) - AME(low) from the two subgroup logits, independent samples."""
    lo, hi = (r.freq[r.split.low].margeff.loc[term], r.freq[r.split.high].margeff.loc[term])
    est = float(hi["ame"] - lo["ame"])
    se = float(np.hypot(hi["se"], lo["se"]))
    z = stats.norm.ppf(0.5 + estimates.CI_PROB / 2)
    n = r.freq[r.split.low].n_obs + r.freq[r.split.high].n_obs
    return estimates.frame([estimates.row(
        study=study, table=table, column=f"{r.name}_difference", term=term,
        quantity="ame_difference", source="frequentist", estimate=est, se=se,
        ci_low=est - z * se, ci_high=est + z * se, p_value=float(2 * stats.norm.sf(abs(est / se))),
        n_obs=n, note=f"{r.split.high} minus {r.split.low}; separate TWFE logits, "
                      "SE of a difference of independent estimates")])


def _separate_difference(r: SplitResult, *, study: str, table: str, term: str,
                         thresholds) -> pd.DataFrame:
    """Difference of the separate Bayesian fits' AME draws (independent posteriors)."""
    lo = r.bayes[r.split.low].idata["posterior"][f"ame_{term}"]
    hi = r.bayes[r.split.high].idata["posterior"][f"ame_{term}"]
    if lo.shape != hi.shape:
        return estimates.frame([])
    diff = np.asarray(hi) - np.asarray(lo)
    post = r.bayes[r.split.high].idata.copy()
    coords = {"chain": hi["chain"], "draw": hi["draw"]}
    post["posterior"] = xr.Dataset({
        "ame_difference": xr.DataArray(diff, dims=("chain", "draw"), coords=coords),
        "difference_positive": xr.DataArray((diff > 0).astype(float), dims=("chain", "draw"),
                                            coords=coords)})
    n = r.bayes[r.split.low].prepared.n_obs + r.bayes[r.split.high].prepared.n_obs
    return posterior_rows(post, {"ame_difference": (term, "ame_difference"),
                                 "difference_positive": (term, "prob_positive")},
                          thresholds=thresholds, study=study, table=table,
                          column=f"{r.name}_difference_separate", n_obs=n,
                          note=f"{r.split.high} minus {r.split.low}; separate Bayesian fits, "
                               "draws paired by index (independent posteriors)")


def _say(progress, message: str) -> None:
    log.info(message)
    if progress:
        progress(message)
