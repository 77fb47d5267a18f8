"""Calibrated synthetic CLDS extract for study ``pooling-did`` (Zhang & Chen 2024).

The real CLDS files are restricted, so the toolkit runs out of the box on data drawn from a
known world calibrated to the paper's published tables. The world (province sizes, GDP,
covariate distributions, effects) is fixed; ``seed`` only draws the sample, so recovery
checks over many seeds target one truth. Everything is drawn from
``numpy.random.default_rng(seed)`` in a fixed order that does not depend on ``policy_effect``,
so a null world and the default world with the same seed share all covariates and noise.

Provinces
    29 CLDS hukou provinces. The six adopters have fixed shares of respondents (Beijing 0.30%,
    Tianjin 0.30%, Chongqing 0.90%, Shanghai 1.08%, Ningxia 1.11%, Qinghai 1.11%), so with
    equal waves the expected treated share is 3.70% and 64.3% of the treated are western
    (Table 2: region 2.286). Beijing, Tianjin and Chongqing are treated in every wave;
    Ningxia, Qinghai and Shanghai switch on in 2016 and alone identify the effect within
    province. The other 23 share the rest: region totals solve the control group's region
    mean and SD (1.906, 0.916; northeast fixed at 6%), and within a region fixed weights make
    the big migrant-sending provinces (Henan, Guangdong, Shandong, Sichuan ...) larger.
Covariates
    A Gaussian copula (``COPULA_CORRELATION``: age-married, gender-smoke, education-income
    ...) with Table 2 marginals: adopters draw from the treatment-group column in every wave,
    the others from the control column (un-mixed for the switchers' 2014 rows), which is what
    separates Table 3 column (1) from column (2). Binary controls are thresholds, ordinal ones
    a rounded, clipped normal, age an integer beta on 15-64 (birth_year = year - age - B,
    B ~ Bernoulli(0.5) for a birthday still ahead), log income a two-normal mixture (bulk SD
    0.9, tail N(4.14, 1.5^2)) so that 20% earn <= 700 yuan a month (Table 6: 1264 of 6310).
    ``log_gdp_pc`` is an approximate 2016 provincial value plus a province-specific growth
    rate times (year - 2016), plus +0.041 for adopters and -0.009 for the others so that the
    group means are Table 2's.
Mediators (Tables 4 and 5)
    Latent objective and subjective integration F ~ N(alpha * policy, 1), independent of each
    other and of the controls. Each item is a rounded, clipped normal of
    lambda * F + sqrt(1 - lambda^2) * noise, located and scaled to the control mean and SD of
    Table 2; loadings 0.85 (neighbourhood assistance), 0.55 (social equity), 0.72 (life
    happiness), 0.85 (trust). *Index units*: a pair's index is the first principal component
    score of its two items z-scored on the control group, (z1 + z2) / sqrt(2) (SD about
    1.19 and 1.22). alpha (0.176 objective, 0.209 subjective) is solved so that policy moves
    the expected index by 0.165 and 0.206 index units; kappa = 0.165 / alpha (0.940, 0.986)
    index units per latent SD puts F on the index scale, and health depends on kappa * F with
    0.471 and 0.443 per index unit. The direct effect is the total minus 0.165 * 0.471 +
    0.206 * 0.443, i.e. 0.484 of the 0.653. The observed index measures kappa * F with error
    (reliability 0.63 and 0.67), so a logit on the observed index returns about 0.29, not the
    structural 0.471 / 0.443 (``b_observed_index`` in the truth).
Health
    Ordered logit: S* = eta + logistic noise, self_rated_health cut at (-3.5, -1.8, 0, 1.9),
    so healthy = 1[S* > 0] is exactly a logit in eta = intercept + province effect + year
    effect + Table 3 column (2) coefficients x controls + direct * policy + mediator terms.
    Given the mediators' noise, policy shifts eta by the total effect (0.653 by default, or
    ``policy_effect``; the direct and mediated paths scale with it, so 0 switches off both).
    Integrating the mediators' noise (SD 0.62 on eta) out attenuates the policy coefficient
    a logit without mediators targets to about 0.61 (``policy_coefficient_marginal``).
Calibration
    Year effects are chosen: 2012 +0.10, 2014 0, 2016 -0.15, 2018 +0.05. Province effects are
    ``PROVINCE_SPREAD`` * z + ``ADOPTER_SHIFT`` * adopter, z the normal score of a fixed rank
    (large provinces at the extremes, against separation in small ones). ``INTERCEPT``,
    ``PROVINCE_SPREAD`` and ``ADOPTER_SHIFT`` solve three equations on the generator's own
    expected probabilities in a 400,000-row draw (:func:`calibrate`): share healthy 0.598 in
    the control group and 0.671 in the treated group, and true AME of policy 0.096. Values:
    intercept -1.966, spread 1.062, adopter shift -0.391 (calibration MC error about 0.005).
    The true AME integrates the mediators' noise by 32-node Gauss-Hermite quadrature, which
    is exact to far below 0.001 because that noise is normal on the logit scale.
Province x year shocks (``shock_sd``)
    Optional: every province-year cell gets a shock ``shock_sd * z`` on the health logit,
    z ~ N(0, 1), shared by the cell's respondents and unseen by the TWFE model (Moulton 1990;
    Bertrand, Duflo & Mullainathan 2004). With three switching provinces the treatment varies
    at the province-year level, so such shocks are what makes model-based SEs over-reject.
    ``simulate`` keeps none by default (the calibrated world and every number derived from it
    unchanged); :data:`SHOCK_SD` is the value for a world with shocks (see its docstring).
Missingness
    MCAR in eight controls (log_income 8.1%, social_status 4.1%, siblings 2.7%, married and
    exercise 1.4%, education, smoke and drink 0.7%) so that about 6,310 of 7,719 rows are
    complete (Table 3 column (2)); 2012 rows lack married, exercise and siblings, as the 2012
    questionnaire did (Table 7), and then complete cases are counted over ``CONTROLS_2012``.

Over 400 lines on purpose: one study's calibrated world, whose constants, marginals and
generator are tuned together against the published tables.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from bayes_pool.published import published_table, published_value
from bayes_pool.studies.pooling_did import contract as c
from bayes_pool.synthetic import SyntheticData

DEFAULT_SEED = 2024

# Published calibration targets are read from the study's ledger (published.csv: table, column,
# term, quantity); see bayes_pool.published. Only the generator's own choices are typed in here.
N_PUBLISHED = int(published_value(c.STUDY_ID, "2", "treatment", "healthy", "mean", field="n_obs"))
"""Table 2: 7719 respondents."""

_table2_mean = published_table(c.STUDY_ID, "2", "mean")
_table2_sd = published_table(c.STUDY_ID, "2", "sd")
TABLE2: dict[str, tuple[float, float, float, float]] = {
    # policy is left out: its Table 2 cell (0.037, flagged) is the full-sample share, which the
    # generator meets through ADOPTER_SHARE instead
    term: (float(_table2_mean.at[term, "treatment"]), float(_table2_sd.at[term, "treatment"]),
           float(_table2_mean.at[term, "control"]), float(_table2_sd.at[term, "control"]))
    for term in _table2_mean.index if term != "policy"
}
"""Calibration targets: Table 2 treatment-group mean, SD, control-group mean, SD."""

_table3_beta = published_table(c.STUDY_ID, "3", "beta")["(2)"].dropna()
COEFFICIENTS: dict[str, float] = {term: float(v) for term, v in _table3_beta.items()}
"""True reduced-form coefficients (given the mediators' noise): Table 3 column (2), the logit
with controls, province and year effects."""

# The 0.096 is printed twice with different SEs (Table 3 column (2): 0.038, Table 5 benchmark:
# 0.037), so both rows are flagged; the estimate is the same and the generator documents Table 3.
AME_TARGET = published_value(c.STUDY_ID, "3", "(2)", "policy", "ame")
"""Table 3 column (2): average marginal effect of policy the calibration aims at."""
INDEX_SHIFT = {"objective": published_value(c.STUDY_ID, "4", "(1)", "policy", "beta"),
               "subjective": published_value(c.STUDY_ID, "4", "(2)", "policy", "beta")}
"""Table 4: effect of policy on each integration index (index units)."""
INDEX_EFFECT = {
    "objective": published_value(c.STUDY_ID, "5", "(1)", "objective_integration", "beta"),
    "subjective": published_value(c.STUDY_ID, "5", "(2)", "subjective_integration", "beta"),
}
"""Table 5: logit coefficient of each integration index on health (per index unit)."""
ITEMS = {"objective": c.ITEMS_OBJECTIVE, "subjective": c.ITEMS_SUBJECTIVE}
LOADINGS = {"neighbourhood_assistance": 0.85, "social_equity": 0.55,
            "life_happiness": 0.72, "trust": 0.85}
"""Loading of each item's underlying normal on its latent factor."""

INTERCEPT = -1.966
PROVINCE_SPREAD = 1.062
ADOPTER_SHIFT = -0.391
"""Calibrated by :func:`calibrate` (see the module docstring)."""
YEAR_EFFECTS = {2012: 0.10, 2014: 0.0, 2016: -0.15, 2018: 0.05}
SHOCK_SD = 0.2
"""SD of the province x year shocks on the health logit in the world with shocks.

Chosen a priori, not fitted to any published number: the intra-class correlation of a
province-year cell on the latent (logistic) scale is then 0.2^2 / (0.2^2 + pi^2 / 3) = 0.012,
inside the 0.01-0.05 range usual for area-level ICCs of self-rated health, and the shocks are
of the order of the calibrated common year effects (-0.15 to +0.10): moderate, not extreme.
At n = 7719 an average cell has 89 rows (design effect 1 + 88 * 0.012 = 2.1 for a cell mean);
a switcher's cell has about 28 (design effect 1.3)."""
SRH_CUTPOINTS = (-3.5, -1.8, 0.0, 1.9)
"""Cut points of the latent health scale between self-rated health 1|2, 2|3, 3|4, 4|5."""

MISSING_WEIGHTS = {"log_income": 6.0, "social_status": 3.0, "siblings": 2.0, "married": 1.0,
                   "exercise": 1.0, "education": 0.5, "smoke": 0.5, "drink": 0.5}
MISSING_SCALE = 0.013557
"""Missing rate of control j is MISSING_SCALE * MISSING_WEIGHTS[j]: 81.75% complete."""
NOT_ASKED_2012 = ("married", "exercise", "siblings")

ADOPTER_SHARE = {"Beijing": 0.003, "Tianjin": 0.003, "Chongqing": 0.009,
                 "Shanghai": 0.0108, "Ningxia": 0.0111, "Qinghai": 0.0111}
"""Share of respondents with hukou in each adopting province."""
NORTHEAST_SHARE = 0.06
"""Northeast share of the non-adopting provinces' respondents."""


def _province_table() -> dict[str, tuple[float, float, float, int]]:
    """``provinces.csv`` (next to this module) by province: weight within its region
    (adopters' weights are unused: :data:`ADOPTER_SHARE`), approx. ln GDP per capita 2016,
    annual log growth 2012-2018, rank of the province effect (1 = least healthy)."""
    with resources.files(__package__).joinpath("provinces.csv").open(encoding="utf-8") as fh:
        return {r["province"]: (float(r["weight"]), float(r["ln_gdp_pc_2016"]),
                                float(r["log_growth_2012_2018"]), int(r["effect_rank"]))
                for r in csv.DictReader(fh)}


PROVINCE_TABLE: dict[str, tuple[float, float, float, int]] = _province_table()
"""Province: (weight, ln GDP per capita 2016, log growth 2012-2018, effect rank), as
:func:`_province_table` reads them."""

COVARIATES = ["age", "gender", "married", "rural_hukou", "education", "social_status",
              "log_income", "smoke", "drink", "exercise", "siblings"]
"""Individual controls drawn from the copula (log_gdp_pc is province-level)."""
_BINARY = ("gender", "married", "rural_hukou", "smoke", "drink", "exercise")
_ORDINAL = {"education": (0, 5), "social_status": (1, 10), "siblings": (0, 12)}
COPULA_CORRELATION = {
    ("age", "married"): 0.45, ("age", "education"): -0.35, ("age", "siblings"): 0.45,
    ("age", "log_income"): -0.05, ("gender", "smoke"): 0.55, ("gender", "drink"): 0.45,
    ("smoke", "drink"): 0.35, ("gender", "log_income"): 0.15,
    ("education", "log_income"): 0.25, ("education", "social_status"): 0.15,
    ("log_income", "social_status"): 0.15, ("education", "rural_hukou"): -0.35,
    ("rural_hukou", "log_income"): -0.10, ("education", "exercise"): 0.20,
    ("education", "siblings"): -0.25, ("rural_hukou", "siblings"): 0.15,
}
"""Correlations of the copula's normal scores (all others 0)."""
LOW_INCOME_SHARE = 0.20
"""Share earning <= 700 yuan a month: a round choice near Table 6's 1264 of 6310 (0.2003)."""
LOW_INCOME_LOG = float(np.log(700 * 12))
_INCOME_BULK_SD, _INCOME_TAIL_SD = 0.9, 1.5
_QUADRATURE = np.polynomial.hermite_e.hermegauss(32)
_LOGISTIC_SCALE2 = (16 * np.sqrt(3) / (15 * np.pi)) ** 2


# ---------------------------------------------------------------------------- the world ---

SWITCHERS = tuple(p for p, year in c.ADOPTION_YEAR.items() if year > c.WAVES[0])
"""Adopters in the control group in 2014 and treated from 2016 (Ningxia, Qinghai, Shanghai)."""


def _early_switchers() -> dict[str, float]:
    """Expected share of all respondents who are switchers interviewed in 2014."""
    return {p: ADOPTER_SHARE[p] / len(c.WAVES) for p in SWITCHERS}


def _control_weight() -> float:
    """Fraction of the control group from adopting provinces (the switchers' 2014 rows)."""
    early = sum(_early_switchers().values())
    return early / (1 - sum(ADOPTER_SHARE.values()) + early)


@cache
def province_shares() -> pd.Series:
    """Expected share of respondents by hukou province (fixed; sums to 1)."""
    early = _early_switchers()
    control_mass = 1 - sum(ADOPTER_SHARE.values()) + sum(early.values())
    _, _, m, s = TABLE2["region"]
    codes = np.arange(1, 5)
    # unknown region totals of the non-adopters: sum, control mean and second moment, NE share
    lhs = np.vstack([np.ones(4), codes, codes**2, [0, 0, 0, 1]])
    rhs = np.array([
        1 - sum(ADOPTER_SHARE.values()),
        m * control_mass - sum(c.REGION[p] * w for p, w in early.items()),
        (s**2 + m**2) * control_mass - sum(c.REGION[p] ** 2 * w for p, w in early.items()),
        NORTHEAST_SHARE * (1 - sum(ADOPTER_SHARE.values())),
    ])
    totals = dict(zip(codes, np.linalg.solve(lhs, rhs)))
    weight = pd.Series({p: PROVINCE_TABLE[p][0] for p in c.PROVINCES})
    region = pd.Series(c.REGION)
    shares = weight / weight.groupby(region).transform("sum") * region.map(totals)
    shares.update(pd.Series(ADOPTER_SHARE))
    return shares.rename("share")


def _unmix(variable: str) -> tuple[float, float]:
    """Non-adopters' mean and SD that, mixed with the switchers' 2014 rows, give Table 2's."""
    mt, st, mc, sc = TABLE2[variable]
    w = _control_weight()
    mean = (mc - w * mt) / (1 - w)
    second = (sc**2 + mc**2 - w * (st**2 + mt**2)) / (1 - w)
    return mean, float(np.sqrt(second - mean**2))


@cache
def _gdp_offsets() -> tuple[float, float]:
    """Constants added to adopters' and others' ln GDP so that the group means are Table 2's."""
    shares = province_shares()
    rows = [(p, t, shares[p] / len(c.WAVES)) for p in c.PROVINCES for t in c.WAVES]
    frame = pd.DataFrame(rows, columns=["province", "year", "w"])
    frame["gdp"] = [_gdp(p, t, 0.0, 0.0) for p, t in zip(frame.province, frame.year)]
    frame["treated"] = c.policy_indicator(frame.province, frame.year).astype(bool)
    frame["adopter"] = frame.province.isin(list(ADOPTER_SHARE))
    # group mean after offsets (oa, on): sum w (gdp + oa*adopter + on*(1-adopter)) / sum w
    lhs, rhs = [], []
    for group, target in ((frame.treated, TABLE2["log_gdp_pc"][0]),
                          (~frame.treated, TABLE2["log_gdp_pc"][2])):
        g = frame[group]
        total = g.w.sum()
        lhs.append([(g.w * g.adopter).sum() / total, (g.w * ~g.adopter).sum() / total])
        rhs.append(target - (g.w * g.gdp).sum() / total)
    return tuple(np.linalg.solve(np.array(lhs), np.array(rhs)))


def _gdp(province: str, year: int, adopter_offset: float, other_offset: float) -> float:
    _, level, growth, _ = PROVINCE_TABLE[province]
    offset = adopter_offset if province in ADOPTER_SHARE else other_offset
    return level + offset + growth * (year - 2016)


def _ordinal_moments(m: float, s: float, lo: int, hi: int, shift: float = 0.0):
    """Mean and SD of clip(round(m + s * (Z + shift)), lo, hi) for standard normal Z."""
    inner = np.arange(lo, hi)
    cdf = np.append(stats.norm.cdf((inner + 0.5 - m) / s - shift), 1.0)
    prob = np.diff(cdf, prepend=0.0)
    values = np.arange(lo, hi + 1)
    mean = prob @ values
    return mean, float(np.sqrt(prob @ (values - mean) ** 2))


def _solve_ordinal(mean: float, sd: float, lo: int, hi: int) -> tuple[float, float]:
    """Location and scale of a rounded, clipped normal with the given mean and SD."""
    def gap(x):
        return np.subtract(_ordinal_moments(x[0], np.exp(x[1]), lo, hi), (mean, sd))
    x = optimize.fsolve(gap, [mean, np.log(sd)], xtol=1e-12)
    return float(x[0]), float(np.exp(x[1]))


def _mixture_moments(bulk: float, weight: float, tail: float):
    sb, st = _INCOME_BULK_SD, _INCOME_TAIL_SD
    mean = (1 - weight) * bulk + weight * tail
    second = (1 - weight) * (sb**2 + bulk**2) + weight * (st**2 + tail**2)
    low = ((1 - weight) * stats.norm.cdf((LOW_INCOME_LOG - bulk) / sb)
           + weight * stats.norm.cdf((LOW_INCOME_LOG - tail) / st))
    return mean, np.sqrt(second - mean**2), low


@cache
def marginals() -> dict[str, dict]:
    """Parameters of each covariate's marginal, for adopters ('adopter') and the others."""
    out: dict[str, dict] = {"adopter": {}, "other": {}}
    for var in COVARIATES:
        targets = {"adopter": TABLE2[var][:2], "other": _unmix(var)}
        for group, (mean, sd) in targets.items():
            if var in _BINARY:
                out[group][var] = {"p": mean}
            elif var in _ORDINAL:
                lo, hi = _ORDINAL[var]
                m, s = _solve_ordinal(mean, sd, lo, hi)
                out[group][var] = {"m": m, "s": s, "lo": lo, "hi": hi}
            elif var == "age":
                # integer part of 15 + 50 * Beta(a, b): mean - 0.5 and variance - 1/12 apart
                mu, var_b = (mean + 0.5 - 15) / 50, (sd**2 + 1 / 12) / 2500
                k = mu * (1 - mu) / var_b - 1
                out[group][var] = {"a": mu * k, "b": (1 - mu) * k}
    mean, sd = _unmix("log_income")
    bulk, weight, tail = optimize.fsolve(
        lambda x: np.subtract(_mixture_moments(*x), (mean, sd, LOW_INCOME_SHARE)),
        [10.4, 0.15, 4.5], xtol=1e-12)
    out["other"]["log_income"] = {"bulk": bulk, "weight": weight, "tail": tail}
    mean, sd = TABLE2["log_income"][:2]
    bulk_t, weight_t = optimize.fsolve(
        lambda x: np.subtract(_mixture_moments(x[0], x[1], tail)[:2], (mean, sd)),
        [10.6, 0.1], xtol=1e-12)
    out["adopter"]["log_income"] = {"bulk": bulk_t, "weight": weight_t, "tail": tail}
    return out


@cache
def item_cutpoints() -> dict[str, tuple[float, float, int, int]]:
    """(location, scale, lowest, highest code) of each mediator item, from its control column."""
    out = {}
    for item in [*c.ITEMS_OBJECTIVE, *c.ITEMS_SUBJECTIVE]:
        lo, hi = c.CODES[item][0], c.CODES[item][-1]
        out[item] = (*_solve_ordinal(*TABLE2[item][2:], lo, hi), lo, hi)
    return out


def _index_shift(dimension: str, alpha: float) -> float:
    """Expected change of a pair's PCA index when its latent factor moves by ``alpha``."""
    total = 0.0
    for item in ITEMS[dimension]:
        m, s, lo, hi = item_cutpoints()[item]
        mean0, sd0 = _ordinal_moments(m, s, lo, hi)
        mean1, _ = _ordinal_moments(m, s, lo, hi, shift=LOADINGS[item] * alpha)
        total += (mean1 - mean0) / sd0
    return total / np.sqrt(2)


def _index_measurement(dimension: str) -> dict[str, float]:
    """How well a pair's index measures its factor F (control group, quadrature over F).

    Items are independent given F, so every moment is a one-dimensional integral of the
    items' conditional means E[Y | F].
    """
    nodes, weights = _QUADRATURE
    weights = weights / np.sqrt(2 * np.pi)
    z_given_f = []
    for item in ITEMS[dimension]:
        m, s, lo, hi = item_cutpoints()[item]
        lam, tau = LOADINGS[item], (np.arange(lo + 1, hi + 1) - 0.5 - m) / s
        mean_y = lo + stats.norm.cdf(
            (lam * nodes[:, None] - tau[None, :]) / np.sqrt(1 - lam**2)).sum(axis=1)
        z_given_f.append((mean_y - TABLE2[item][2]) / TABLE2[item][3])
    means = [weights @ z for z in z_given_f]
    correlation = weights @ (z_given_f[0] * z_given_f[1]) - means[0] * means[1]
    index_given_f = (z_given_f[0] + z_given_f[1]) / np.sqrt(2)
    variance = 1 + correlation
    return {"item_correlation": float(correlation), "index_sd": float(np.sqrt(variance)),
            "reliability": float((weights @ index_given_f**2 - (weights @ index_given_f) ** 2)
                                 / variance),
            "slope_on_factor": float(weights @ (nodes * index_given_f))}


@cache
def mediator_paths() -> dict[str, dict]:
    """Latent paths of the two mediators at the default total effect (module docstring).

    ``b_observed_index`` is the linear-projection value of the health coefficient on the
    *observed* index, b * kappa * cov(F, I) / var(I): what Table 5's regression can recover
    (before the small logit attenuation), less than ``b`` because the index is noisy.
    """
    out = {}
    for dim in ITEMS:
        alpha = optimize.brentq(lambda a: _index_shift(dim, a) - INDEX_SHIFT[dim], 0.0, 2.0,
                                xtol=1e-14)
        kappa = INDEX_SHIFT[dim] / alpha
        measure = _index_measurement(dim)
        out[dim] = {"items": list(ITEMS[dim]), "loadings": [LOADINGS[i] for i in ITEMS[dim]],
                    "alpha": alpha, "kappa": kappa, "a": INDEX_SHIFT[dim],
                    "b": INDEX_EFFECT[dim], "indirect": INDEX_SHIFT[dim] * INDEX_EFFECT[dim],
                    **measure,
                    "b_observed_index": INDEX_EFFECT[dim] * kappa * measure["slope_on_factor"]
                    / measure["index_sd"] ** 2}
    return out


def _copula_cholesky() -> np.ndarray:
    corr = np.eye(len(COVARIATES))
    for (a, b), r in COPULA_CORRELATION.items():
        i, j = COVARIATES.index(a), COVARIATES.index(b)
        corr[i, j] = corr[j, i] = r
    return np.linalg.cholesky(corr)


def _income_quantile(u: np.ndarray, bulk: float, weight: float, tail: float) -> np.ndarray:
    grid = np.linspace(-6.0, 18.0, 24001)
    cdf = ((1 - weight) * stats.norm.cdf((grid - bulk) / _INCOME_BULK_SD)
           + weight * stats.norm.cdf((grid - tail) / _INCOME_TAIL_SD))
    return np.interp(u, cdf, grid)


def _transform(var: str, z: np.ndarray, spec: dict) -> np.ndarray:
    """Map copula normal scores to the covariate's marginal."""
    if var in _BINARY:
        return (z > stats.norm.ppf(1 - spec["p"])).astype(float)
    if "m" in spec:
        return np.clip(np.round(spec["m"] + spec["s"] * z), spec["lo"], spec["hi"])
    if var == "age":
        return np.floor(15 + 50 * stats.beta.ppf(stats.norm.cdf(z), spec["a"], spec["b"]))
    return np.maximum(_income_quantile(stats.norm.cdf(z), **spec), 0.0)


# --------------------------------------------------------------------------- the sample ---

def _sample(rng: np.random.Generator, n: int, waves: tuple[int, ...]) -> dict:
    """Draw everything that does not depend on the effect sizes, in a fixed order."""
    counts = np.full(len(waves), n // len(waves))
    counts[: n % len(waves)] += 1
    year = np.repeat(np.asarray(waves, dtype="int64"), counts)
    shares = province_shares()
    province = np.asarray(c.PROVINCES, dtype=object)[
        rng.choice(len(shares), size=n, p=shares.reindex(c.PROVINCES).to_numpy())]
    adopter = np.isin(province, list(ADOPTER_SHARE))

    scores = rng.standard_normal((n, len(COVARIATES))) @ _copula_cholesky().T
    covariates = {}
    for j, var in enumerate(COVARIATES):
        x = np.empty(n)
        for group, mask in (("adopter", adopter), ("other", ~adopter)):
            x[mask] = _transform(var, scores[mask, j], marginals()[group][var])
        covariates[var] = x
    birthday_ahead = rng.integers(0, 2, size=n)
    offsets = _gdp_offsets()
    gdp = {(p, t): _gdp(p, t, *offsets) for p in c.PROVINCES for t in waves}
    covariates["log_gdp_pc"] = np.array([gdp[p, t] for p, t in zip(province, year)])

    latent = {dim: rng.standard_normal(n) for dim in ITEMS}
    item_noise = {item: rng.standard_normal(n) for item in LOADINGS}
    health_noise = rng.logistic(size=n)
    missing = {var: rng.random(n) < MISSING_SCALE * w for var, w in MISSING_WEIGHTS.items()}
    for var in NOT_ASKED_2012:
        missing[var] |= year == 2012
    return dict(n=n, year=year, province=province, adopter=adopter,
                policy=c.policy_indicator(pd.Series(province), pd.Series(year)).to_numpy(),
                covariates=covariates, birthday_ahead=birthday_ahead, latent=latent,
                item_noise=item_noise, health_noise=health_noise, missing=missing)


def _province_z() -> pd.Series:
    rank = pd.Series({p: PROVINCE_TABLE[p][3] for p in c.PROVINCES})
    return pd.Series(stats.norm.ppf((rank - 0.5) / len(rank)), index=rank.index)


def province_effects(spread: float = PROVINCE_SPREAD,
                     adopter_shift: float = ADOPTER_SHIFT) -> pd.Series:
    """Province effects on the health logit: spread * z + adopter_shift * adopter."""
    z = _province_z()
    return spread * z + adopter_shift * z.index.isin(list(ADOPTER_SHARE))


def _base_predictor(sample: dict, intercept: float, effects: pd.Series) -> np.ndarray:
    """Health logit without policy and mediator terms (true covariates, nothing masked)."""
    eta = intercept + pd.Series(sample["province"]).map(effects).to_numpy()
    eta = eta + pd.Series(sample["year"]).map(YEAR_EFFECTS).to_numpy()
    for var in c.CONTROLS:
        eta = eta + COEFFICIENTS[var] * sample["covariates"][var]
    return eta


def _mediator_sd() -> float:
    """SD of the mediators' noise on the health logit: sqrt(sum (b * kappa)^2)."""
    return float(np.sqrt(sum((p["b"] * p["kappa"]) ** 2 for p in mediator_paths().values())))


def _expected_p(eta: np.ndarray, sd: float) -> np.ndarray:
    """E[expit(eta + u)], u ~ N(0, sd^2), by Gauss-Hermite quadrature (error << 1e-6)."""
    nodes, weights = _QUADRATURE
    return special.expit(eta[:, None] + sd * nodes[None, :]) @ weights / np.sqrt(2 * np.pi)


def _ame(eta0: np.ndarray, total: float) -> np.ndarray:
    """Per-row effect of switching policy on: E p(eta0 + total + u) - E p(eta0 + u)."""
    sd = _mediator_sd()
    return _expected_p(eta0 + total, sd) - _expected_p(eta0, sd)


def calibrate(n: int = 400_000, seed: int = 0) -> dict[str, float]:
    """Solve intercept, province spread and adopter shift on a large draw of this generator.

    Targets: expected share healthy 0.598 (control) and 0.671 (treated), and expected AME of
    policy 0.096 (Tables 2 and 3). Returns the three values (the constants above are these,
    rounded to 3 decimals, at the defaults).
    """
    sample = _sample(np.random.default_rng(seed), n, c.WAVES)
    z = pd.Series(sample["province"]).map(_province_z()).to_numpy()
    rest = _base_predictor(sample, 0.0, province_effects(0.0, 0.0))
    treated = sample["policy"] == 1
    total, sd = COEFFICIENTS["policy"], _mediator_sd()

    def gap(x):
        eta0 = rest + x[0] + x[1] * z + x[2] * sample["adopter"]
        p = _expected_p(eta0 + total * treated, sd)
        return [p[~treated].mean() - TABLE2["healthy"][2],
                p[treated].mean() - TABLE2["healthy"][0],
                _ame(eta0, total).mean() - AME_TARGET]

    x = optimize.fsolve(gap, [INTERCEPT, PROVINCE_SPREAD, ADOPTER_SHIFT], xtol=1e-10)
    return {"intercept": float(x[0]), "province_spread": float(x[1]),
            "adopter_shift": float(x[2])}


# ---------------------------------------------------------------------------- simulate ---

def _plain(value):
    """Deep copy with numpy scalars as Python numbers, so the truth is plain JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def simulate(seed: int = DEFAULT_SEED, n: int = N_PUBLISHED, *,
             policy_effect: float | None = None,
             waves: tuple[int, ...] = c.WAVES,
             effect_growth: float = 0.0, shock_sd: float = 0.0) -> SyntheticData:
    """Draw a synthetic CLDS extract for ``pooling-did`` with its truth.

    Parameters
    ----------
    seed
        Seed of ``numpy.random.default_rng``; same seed, same frame.
    n
        Number of respondents, split evenly over ``waves``.
    policy_effect
        Total effect of policy on the health logit (default Table 3's 0.653). The direct and
        the mediated paths are scaled with it, so 0 gives a world with no effect at all.
    waves
        Survey years; add 2012 for the Table 7 robustness check.
    effect_growth
        Growth of the policy effect on the health logit per period since adoption (a world
        where the effect builds up, for staggered-robust DiD). A treated row in year t of a
        province adopting in year a gets ``effect_growth * min(floor((t - a) / 2),
        GROWTH_CAP)`` added directly to its health logit (not through the mediators): 0 in
        the first two years, growing by one step per 2-year wave, capped at
        :data:`GROWTH_CAP` periods, so the always-treated provinces (Beijing: capped,
        Chongqing and Tianjin: 1, 2, 3 in 2014, 2016, 2018) follow the same law as the
        switchers (0 in 2016, 1 in 2018). With a non-zero growth the truth also holds the true
        ATT on the probability scale (complete cases): ``att_policy`` over all treated rows,
        ``att_policy_switchers`` over the switchers' treated rows and ``att_cells`` per
        ``g<first treated wave>_t<year>`` cell of the switchers, with ``n_cells``. The
        default 0 leaves frame and truth exactly as without this option.
    shock_sd
        SD of province x year shocks on the health logit (0: none, the default; :data:`SHOCK_SD`
        for the world with shocks). The shocks are drawn after everything else, so a world
        with shocks shares covariates and noise with the same seed's world without; the truth
        then holds them (``province_year_shocks``, "<province>:<year>") and the true AMEs are
        conditional on them.

    Returns
    -------
    SyntheticData
        Canonical frame (``frame.attrs["synthetic"] = True``) and the JSON-serialisable truth:
        coefficients, province and year effects, intercept, mediator paths, the true AME of
        policy over complete cases and over all rows, treated share, complete-case count.
    """
    waves = tuple(int(w) for w in waves)
    unknown = set(waves) - set(c.CODES["year"])
    if unknown:
        raise ValueError(f"waves must be among {c.CODES['year']}, got {sorted(unknown)}")
    total = COEFFICIENTS["policy"] if policy_effect is None else float(policy_effect)
    scale = total / COEFFICIENTS["policy"]
    rng = np.random.default_rng(seed)
    s = _sample(rng, n, waves)
    policy = s["policy"]
    cov = s["covariates"]

    paths = mediator_paths()
    frame = {"respondent_id": np.arange(1, n + 1, dtype="int64"), "province": s["province"],
             "year": s["year"], "birth_year": s["year"] - cov["age"] - s["birthday_ahead"],
             "policy": policy}
    items, eta_mediators = {}, np.zeros(n)
    for dim, p in paths.items():
        factor = p["alpha"] * scale * policy + s["latent"][dim]
        eta_mediators += p["b"] * p["kappa"] * factor
        for item in p["items"]:
            m, sc, lo, hi = item_cutpoints()[item]
            lam = LOADINGS[item]
            star = lam * factor + np.sqrt(1 - lam**2) * s["item_noise"][item]
            items[item] = np.clip(np.round(m + sc * star), lo, hi)
    direct = scale * (COEFFICIENTS["policy"] - sum(p["indirect"] for p in paths.values()))
    effects = province_effects()
    eta0 = _base_predictor(s, INTERCEPT, effects)
    shocks = None
    if shock_sd:
        shocks = _province_year_shocks(rng, waves, float(shock_sd))
        eta0 = eta0 + np.array([shocks[p, t] for p, t in zip(s["province"], s["year"])])
    growth = np.zeros(n)
    if effect_growth:
        growth = float(effect_growth) * _periods_since_adoption(s["province"], s["year"])
    latent_health = eta0 + direct * policy + eta_mediators + s["health_noise"]
    if effect_growth:
        latent_health = latent_health + growth
    srh = 1.0 + (latent_health[:, None] > np.asarray(SRH_CUTPOINTS)[None, :]).sum(axis=1)
    frame["healthy"] = (srh >= 4).astype("int64")
    frame["self_rated_health"] = srh
    frame.update(items)
    frame.update({var: cov[var].copy() for var in c.CONTROLS})
    for var, mask in s["missing"].items():
        frame[var][mask] = np.nan
    frame["monthly_income"] = np.exp(frame["log_income"]) / 12
    frame["region"] = pd.Series(s["province"]).map(c.REGION).to_numpy(dtype=float)
    df = pd.DataFrame(frame)[c.COLUMNS].astype(c.DTYPES)
    df.attrs["synthetic"] = True

    controls = c.CONTROLS_2012 if 2012 in waves else c.CONTROLS
    complete = df[controls].notna().all(axis=1).to_numpy()
    ame_rows = _ame(eta0, total)
    coefficients = dict(COEFFICIENTS, policy=total)
    truth = {
        "coefficients": coefficients,
        "intercept": INTERCEPT,
        "province_effects": {p: float(v) for p, v in effects.items()},
        "year_effects": {str(t): YEAR_EFFECTS[t] for t in waves},
        "srh_cutpoints": list(SRH_CUTPOINTS),
        "mediator_paths": {
            **{dim: dict(p, alpha=p["alpha"] * scale, a=p["a"] * scale,
                         indirect=p["indirect"] * scale) for dim, p in paths.items()},
            "direct": direct, "total": total, "latent_correlation": 0.0,
            "index": "first principal component score of the z-scored item pair, "
                     "(z1 + z2) / sqrt(2); health depends on kappa * F per index unit",
        },
        "mediator_noise_sd": _mediator_sd(),
        # logit-normal approximation: what a logit without the mediators estimates
        "policy_coefficient_marginal": total / np.sqrt(1 + _LOGISTIC_SCALE2 * _mediator_sd()**2),
        "ame_policy": float(ame_rows[complete].mean()),
        "ame_policy_all_rows": float(ame_rows.mean()),
        "share_treated": float(policy.mean()),
        "n_complete": int(complete.sum()),
        "complete_case_controls": list(controls),
        "n": int(n),
    }
    options = {"n": n, "policy_effect": policy_effect, "waves": list(waves)}
    if shocks is not None:
        truth["shock_sd"] = float(shock_sd)
        truth["province_year_shocks"] = {f"{p}:{t}": v for (p, t), v in shocks.items()}
        options["shock_sd"] = float(shock_sd)
    if effect_growth:
        truth.update(_att_truth(eta0, total, growth, s, complete))
        truth["effect_growth"] = float(effect_growth)
        truth["growth_cap_periods"] = GROWTH_CAP
        options["effect_growth"] = float(effect_growth)
    return SyntheticData(study=c.STUDY_ID, frame=df, truth=_plain(truth), seed=seed,
                         options=options)


def _province_year_shocks(rng: np.random.Generator, waves: tuple[int, ...],
                          sd: float) -> dict[tuple[str, int], float]:
    """One N(0, sd^2) shock per (province, wave), in the order of c.PROVINCES x waves."""
    if sd < 0:
        raise ValueError(f"shock_sd must be >= 0, got {sd}")
    z = rng.standard_normal((len(c.PROVINCES), len(waves)))
    return {(p, t): float(sd * z[i, j]) for i, p in enumerate(c.PROVINCES)
            for j, t in enumerate(waves)}


GROWTH_CAP = 4
"""Periods since adoption after which a growing effect stops growing (the event window's +4)."""


def _periods_since_adoption(province: np.ndarray, year: np.ndarray) -> np.ndarray:
    """min(floor((year - adoption) / 2), GROWTH_CAP) for treated rows, 0 for untreated ones."""
    adopted = pd.Series(province).map(c.ADOPTION_YEAR).to_numpy(dtype=float)
    periods = np.floor((np.asarray(year, dtype=float) - adopted) / 2)
    periods = np.where(np.isnan(periods) | (periods < 0), 0.0, periods)
    return np.minimum(periods, GROWTH_CAP)


def _att_truth(eta0: np.ndarray, total: float, growth: np.ndarray, sample: dict,
               complete: np.ndarray) -> dict:
    """True ATT on the probability scale over treated complete cases, overall and per cell.

    Per row: E p(eta0 + total + growth + u) - E p(eta0 + u), u the mediators' noise. A cell is
    a switching province's first treated wave g (the first wave at or after adoption) and a
    treated year t; always-treated provinces are in ``att_policy`` but in no cell.
    """
    sd = _mediator_sd()
    effect = _expected_p(eta0 + total + growth, sd) - _expected_p(eta0, sd)
    treated = (sample["policy"] == 1) & complete
    year = sample["year"]
    waves = np.unique(year)
    adopted = pd.Series(sample["province"]).map(c.ADOPTION_YEAR).to_numpy(dtype=float)
    switcher = np.isin(sample["province"], list(SWITCHERS)) & treated
    cells, counts = {}, {}
    for a in sorted(set(adopted[switcher])):
        g = int(waves[waves >= a].min())
        for t in waves[waves >= g]:
            mask = switcher & (adopted == a) & (year == t)
            key = f"g{g}_t{int(t)}"
            prev = counts.get(key, 0)
            total_n = prev + int(mask.sum())
            if total_n:
                cells[key] = (cells.get(key, 0.0) * prev + float(effect[mask].sum())) / total_n
            counts[key] = total_n
    return {"att_policy": float(effect[treated].mean()),
            "att_policy_switchers": float(effect[switcher].mean()),
            "att_cells": cells, "n_cells": counts}
