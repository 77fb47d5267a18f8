"""Calibrated synthetic data for study ``smi-psm`` (Ma et al. 2023, CMDS 2017).

The CMDS microdata are restricted, so the toolkit runs on a generated stand-in whose
published summaries match the paper. Every published number used below is read from the
study's ledger (``published.csv``, via :mod:`bayes_pool.published`); none is obtained by running
an analysis on generated data.

Treatment and characteristics
    Exactly ``round(n * 606 / 3333)`` respondents get host-city insurance (18.2%). The 14
    characteristics of Table 1 are then drawn *by group*, independently of one another
    given the group, with each group's category shares reproduced exactly up to rounding
    (fixed margins, random arrangement). Binary codes take the group mean of Table 1;
    codes with 3 to 5 categories take the distribution closest (minimum Kullback-Leibler
    divergence) to Table 3's whole-sample shares that has the group's Table 1 mean and SD.
    Because characteristics are independent given the group, the true propensity score is
    exactly a logit that is additive in category dummies, with coefficients
    ``log P(x | host) - log P(x | hometown)`` (stored in ``truth["propensity"]``); the
    before-matching imbalance of Table 5 (standardised bias -16, -25, -30, -31, -19, +49,
    +11) follows from the Table 1 moments. Two published SDs cannot be met: Table 1 gives
    ``labour_contract`` and ``employment_identity`` (1/2 codes) means of 1.76-1.78 and
    1.43-1.44 with SDs of 0.20-0.33, impossible for two-valued codes; their means are kept.
    ``unemployment_reason`` follows Table 1's mean (2.74), not Table 3's shares (2.85).

Outcome
    ``Y(0) = alpha + beta' X`` plus noise, linear in the codes of the seven PSM covariates
    (the other characteristics describe the sample but do not affect integration, so the
    PSM covariates suffice for unconfoundedness). ``Y(1) = Y(0) + tau(X)``. ``beta`` is set so
    that the *population* least-squares projection of Table 4's Model 8 returns Table 4's
    covariate coefficients exactly; ``alpha`` gives the index mean 0; the noise SD gives the
    index Table 1's SD of 33.22.

Effect heterogeneity (the calibration choice)
    The paper's Model 8 coefficient (3.916) and its matched ATT (6.47) differ. For a linear
    ``Y(0)``, the OLS coefficient equals ``ATT - pi * Delta' S_w^-1 Cov(X, tau | treated)``
    (``Delta`` the treated-minus-control covariate means, ``S_w`` the pooled within-group
    covariance), so only heterogeneity that co-varies with the covariates separates the
    two. Closing the full gap of 2.55 needs an effect SD among the treated of at least 19
    (an effect linear in the propensity logit: SD 21.5, effects from -73 to +66, 38% of the
    treated harmed), which would make the treated group's index variance exceed the
    hometown group's by about 540, where Table 1 shows 106 (34.383^2 - 32.799^2, sampling
    SE about 75). We judge that unjustifiable and use a
    moderate, one-signed heterogeneity instead, selection on gains: the effect is
    proportional to the true propensity score on the PSM covariates,
    ``tau(X) = ATT * e(X) / E[e(X) | treated]``, so it is largest for the covariate profiles
    over-represented among the host-city insured. With ``ATT = 6.47`` (Table 6, k-NN) this
    gives effects from 0.35 to 18.3 (10th-90th percentile among the treated 2.3-11.7), a
    population ATE of 4.4, a treated-minus-hometown variance gap of about 42, and a
    population Model 8 coefficient of about 6.07 rather than 3.916 (about one published SE
    away). The group means of the index come out near Table 1 (about 8.3 and -1.8 against
    6.469 and -1.441). ``att=`` rescales ``tau``; ``att=0`` is a null world with no effect
    for anyone.

Integration index and indicators
    Four independent standard-normal factors F1-F4 (Table 2) are each shifted by the same
    structural mean ``m = Y(T)`` (on the index scale divided by ``kappa``), and the index
    is ``kappa * sum_j w_j F_j`` with ``w`` the normalised variance contributions
    45.42/19.61/20.61/20.61. Each of the 17 indicators is a discretised
    ``loading * F_own + sqrt(1 - loading^2) * noise``; the F4 items load negatively (agreeing
    that hometown customs matter or that one's habits differ means less assimilation).

``truth["ols_location_coefficient"]`` and ``truth["ols_model8"]`` are computed analytically:
the covariates take finitely many values, so the population least-squares projection is an
exact weighted regression over all 2 x 2160 (group, covariate profile) cells.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from bayes_pool.published import published_table, published_value
from bayes_pool.studies.smi_psm import contract
from bayes_pool.synthetic import SyntheticData

DEFAULT_SEED = 2023

# Published calibration targets, read from the study's ledger (published.csv: table, column,
# term, quantity); see bayes_pool.published. Only the generator's own choices are typed in here.
_STUDY = contract.STUDY_ID
N_PUBLISHED = int(published_value(_STUDY, "1", "total", "integration_index", "mean",
                                  field="n_obs"))  # Table 1: 3333 respondents
N_TREATED_PUBLISHED = int(published_value(_STUDY, "3", "SMI of host city", "host_city_smi",
                                          "n"))  # Table 3: 606 with host-city SMI
# Table 6, k-nearest-neighbour matching (k=4, caliper 0.02): 6.47. The row is flagged because its
# printed SD / z disagree with the text's SE / t; the ATT itself is 6.47 in Table 6 and the text.
ATT_PUBLISHED = published_value(_STUDY, "6", "knn", "host_city_smi", "att")
INDEX_SD = published_value(_STUDY, "1", "total", "integration_index", "sd")  # Table 1: 33.220

_CHARACTERISTICS = [c for c in contract.CHARACTERISTICS if c != contract.TREATMENT]

# Table 1: column -> (host-city mean, SD, hometown mean, SD), columns "SMI of host city" and
# "SMI of hometown". The labour_contract and employment_identity cells are impossible for 1/2
# codes (see the module docstring); they are kept as printed and only their means are used.
_table1_mean = published_table(_STUDY, "1", "mean")
_table1_sd = published_table(_STUDY, "1", "sd")
_TABLE1 = {
    c: (float(_table1_mean.at[c, "host_city"]), float(_table1_sd.at[c, "host_city"]),
        float(_table1_mean.at[c, "hometown"]), float(_table1_sd.at[c, "hometown"]))
    for c in _CHARACTERISTICS
}

# Table 3: whole-sample category shares (%) of the codes with three or more categories, in code
# order, the shape that each group's distribution is tilted from. Levels nobody is in ("cross
# border" of migrant_range, printed 0) are left out. unemployment_reason's shares are flagged in
# the ledger (they imply mean 2.854, Table 1 prints 2.74): the generator uses them only as the
# shape and matches Table 1's mean (module docstring).
_table3_pct = published_table(_STUDY, "3", "pct")
_TABLE3_SHARES = {
    c: tuple(float(v) for v in _table3_pct.loc[c].dropna() if v > 0)
    for c in _CHARACTERISTICS if len(contract.CODES[c]) >= 3
}

# Table 4, Model 8: unstandardised coefficients of the covariates.
_table4_beta = published_table(_STUDY, "4", "beta")["model_8"]
_TABLE4 = {c: float(_table4_beta.at[c]) for c in contract.COVARIATES}

# Table 2: variance contribution (%) of each factor, used as its weight in the index. The four
# printed shares are flagged in the ledger (they sum to 106.25%); the generator uses them as
# printed and normalises them to sum to 1. Each factor's share is printed in its own column.
_table2_share = published_table(_STUDY, "2", "variance_share")
_VARIANCE_SHARE = {f: float(_table2_share.loc[f].dropna().item()) for f in contract.FACTORS}

# indicator -> (loading on its own factor, category shares in code order). Shares are
# assumptions (participation is rare among elderly migrants, attitudes mostly agreeing);
# the paper reports none.
_INDICATOR_SPEC = {
    "si_labour_union": (0.70, (0.93, 0.07)),
    "si_volunteer_association": (0.75, (0.90, 0.10)),
    "si_classmates_association": (0.70, (0.88, 0.12)),
    "si_hometown_association": (0.80, (0.82, 0.18)),
    "si_hometown_chamber": (0.70, (0.94, 0.06)),
    "si_residence_permit": (0.65, (0.62, 0.38)),
    "si_social_security_card": (0.60, (0.55, 0.45)),
    "si_management_advice": (0.75, (0.78, 0.12, 0.07, 0.03)),
    "si_policy_suggestion": (0.70, (0.85, 0.09, 0.04, 0.02)),
    "si_online_governance": (0.65, (0.84, 0.09, 0.05, 0.02)),
    "si_volunteer_activity": (0.70, (0.72, 0.15, 0.09, 0.04)),
    "si_party_activity": (0.65, (0.86, 0.08, 0.04, 0.02)),
    "si_like_city": (0.80, (0.02, 0.08, 0.55, 0.35)),
    "si_city_concern": (0.75, (0.03, 0.15, 0.55, 0.27)),
    "si_local_acceptance": (0.75, (0.03, 0.12, 0.58, 0.27)),
    "si_hometown_customs": (-0.75, (0.10, 0.35, 0.40, 0.15)),
    "si_hygiene_difference": (-0.70, (0.25, 0.50, 0.20, 0.05)),
}

_FACTORS = list(contract.FACTORS)


def _tilt(shares: tuple[float, ...], mean: float, sd: float) -> np.ndarray:
    """Distribution over codes 1..K closest in KL to ``shares`` with the given mean and SD."""
    x = np.arange(1, len(shares) + 1, dtype=float)
    q = np.asarray(shares, dtype=float) / sum(shares)

    def dist(ab: np.ndarray) -> np.ndarray:
        w = q * np.exp(ab[0] * (x - mean) + ab[1] * ((x - mean) ** 2 - sd**2))
        return w / w.sum()

    def moments(ab: np.ndarray) -> list[float]:
        p = dist(ab)
        return [p @ x - mean, p @ (x - mean) ** 2 - sd**2]

    solution = optimize.root(moments, np.zeros(2))
    if not solution.success:
        raise RuntimeError(f"no distribution with mean {mean} and SD {sd} near {shares}")
    return dist(solution.x)


def _group_distributions() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Column -> (host-city, hometown) probabilities of codes 1..K."""
    out = {}
    for column, (m1, s1, m0, s0) in _TABLE1.items():
        if column in _TABLE3_SHARES:
            shares = _TABLE3_SHARES[column]
            out[column] = (_tilt(shares, m1, s1), _tilt(shares, m0, s0))
        else:
            out[column] = (np.array([2.0 - m1, m1 - 1.0]), np.array([2.0 - m0, m0 - 1.0]))
    return out


@dataclass(frozen=True)
class _Calibration:
    """Generator parameters derived from the published tables (see the module docstring)."""

    share_treated: float
    dist: dict[str, tuple[np.ndarray, np.ndarray]]
    log_ratio: dict[str, np.ndarray]  # column -> log P(code | host) - log P(code | hometown)
    mean_e_treated: float  # E[e(X) | treated], e the propensity on the PSM covariates
    projection: np.ndarray  # population OLS: (const, T, covariates) of T * (g(X) - 1)
    projection_table: np.ndarray  # population covariate means: (treated, control) x covariate
    mean_g_control: float
    beta: np.ndarray
    alpha: float
    noise_sd: float
    kappa: float
    weights: np.ndarray


def _propensity(log_ratio: dict[str, np.ndarray], columns: list[str], codes: dict,
                share: float) -> np.ndarray:
    """True propensity score given the codes of ``columns`` (arrays of equal length)."""
    index = special.logit(share) + sum(log_ratio[c][np.asarray(codes[c]) - 1] for c in columns)
    return special.expit(index)


@functools.cache
def _calibration() -> _Calibration:
    share = N_TREATED_PUBLISHED / N_PUBLISHED
    dist = _group_distributions()
    log_ratio = {c: np.log(p1) - np.log(p0) for c, (p1, p0) in dist.items()}
    covariates = contract.COVARIATES

    # Every covariate profile with its probability in each group.
    cells = np.array(list(itertools.product(
        *[range(1, len(dist[c][0]) + 1) for c in covariates])))
    prob = [np.prod([dist[c][g][cells[:, j] - 1] for j, c in enumerate(covariates)], axis=0)
            for g in (0, 1)]
    p1, p0 = prob
    profile = {c: cells[:, j] for j, c in enumerate(covariates)}
    e = _propensity(log_ratio, covariates, profile, share)
    mean_e1 = float(p1 @ e)
    g = e / mean_e1

    ones = np.ones(len(cells))
    design = np.vstack([np.column_stack([ones, ones, cells]),
                        np.column_stack([ones, 0 * ones, cells])]).astype(float)
    weight = np.concatenate([share * p1, (1 - share) * p0])
    gram = design.T @ (weight[:, None] * design)
    heterogeneity = np.concatenate([g - 1.0, 0 * ones])
    projection = np.linalg.solve(gram, design.T @ (weight * heterogeneity))

    beta = np.array([_TABLE4[c] for c in covariates]) - ATT_PUBLISHED * projection[2:]
    mu1, mu0 = cells @ beta + ATT_PUBLISHED * g, cells @ beta
    mean_m = share * (p1 @ mu1) + (1 - share) * (p0 @ mu0)
    var_m = share * (p1 @ mu1**2) + (1 - share) * (p0 @ mu0**2) - mean_m**2
    noise_sd = float(np.sqrt(INDEX_SD**2 - var_m))

    contributions = np.array([_VARIANCE_SHARE[f] for f in _FACTORS])
    weights = contributions / contributions.sum()
    return _Calibration(
        share_treated=share,
        dist=dist,
        log_ratio=log_ratio,
        mean_e_treated=mean_e1,
        projection=projection,
        projection_table=np.vstack([p1 @ cells, p0 @ cells]),
        mean_g_control=float(p0 @ g),
        beta=beta,
        alpha=float(-mean_m),
        noise_sd=noise_sd,
        kappa=float(noise_sd / np.sqrt(weights @ weights)),
        weights=weights,
    )


def _fixed_margin_draw(rng: np.random.Generator, n: int, probs: np.ndarray) -> np.ndarray:
    """``n`` codes 1..K with counts ``n * probs`` rounded by largest remainder, shuffled."""
    exact = n * probs
    counts = np.floor(exact).astype(int)
    short = n - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return rng.permutation(np.repeat(np.arange(1, len(probs) + 1), counts))


def _generate(seed: int, n: int, att: float) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Frame plus the potential outcomes ``Y(0)``, ``Y(1)`` of every respondent."""
    cal = _calibration()
    n_treated = round(n * cal.share_treated)
    if not 0 < n_treated < n:
        raise ValueError(f"n={n} leaves no treated or no control respondents; use n >= 6.")
    rng = np.random.default_rng(seed)

    treated = rng.permutation(np.repeat([1, 0], [n_treated, n - n_treated]))
    groups = (treated == 1, treated == 0)
    frame = pd.DataFrame({contract.ID: np.arange(1, n + 1), contract.TREATMENT: treated})
    for column in _CHARACTERISTICS:
        values = np.empty(n, dtype=np.int64)
        for members, probs in zip(groups, cal.dist[column], strict=True):
            values[members] = _fixed_margin_draw(rng, int(members.sum()), probs)
        frame[column] = values

    covariates = frame[contract.COVARIATES].to_numpy(dtype=float)
    e = _propensity(cal.log_ratio, contract.COVARIATES, frame, cal.share_treated)
    tau = att * e / cal.mean_e_treated
    m0 = cal.alpha + covariates @ cal.beta
    factors0 = m0[:, None] / cal.kappa + rng.standard_normal((n, len(_FACTORS)))
    y0 = cal.kappa * factors0 @ cal.weights
    y1 = y0 + tau
    factors = factors0 + (treated * tau / cal.kappa)[:, None]
    frame.insert(1, contract.OUTCOME, np.where(treated == 1, y1, y0))

    noise = rng.standard_normal((n, len(_INDICATOR_SPEC)))
    for i, (name, (loading, shares)) in enumerate(_INDICATOR_SPEC.items()):
        own = factors[:, _FACTORS.index(contract.INDICATOR_FACTOR[name])]
        latent = loading * own + np.sqrt(1 - loading**2) * noise[:, i]
        cuts = stats.norm.ppf(np.cumsum(shares)[:-1])
        frame[name] = np.array(list(contract.CODES[name]))[np.searchsorted(cuts, latent)]
    return frame, y0, y1


def potential_outcomes(seed: int = DEFAULT_SEED, n: int = N_PUBLISHED, *,
                       att: float | None = None) -> pd.DataFrame:
    """Both potential outcomes of every respondent of ``simulate(seed, n, att=att)``.

    Returns
    -------
    pandas.DataFrame
        ``respondent_id``, ``host_city_smi``, ``y0`` and ``y1``; the observed
        ``integration_index`` is ``y1`` for the host-city insured and ``y0`` otherwise.
    """
    frame, y0, y1 = _generate(seed, n, ATT_PUBLISHED if att is None else float(att))
    return pd.DataFrame({contract.ID: frame[contract.ID],
                         contract.TREATMENT: frame[contract.TREATMENT], "y0": y0, "y1": y1})


def _propensity_truth(columns: list[str]) -> dict:
    """Logit coefficients of the true propensity score: dummies against code 1."""
    cal = _calibration()
    intercept = special.logit(cal.share_treated) + sum(cal.log_ratio[c][0] for c in columns)
    coefficients = {
        f"{c}[{code}]": float(cal.log_ratio[c][code - 1] - cal.log_ratio[c][0])
        for c in columns for code in range(2, len(cal.log_ratio[c]) + 1)
    }
    return {"intercept": float(intercept), "coefficients": coefficients}


def _population_truth(att: float) -> dict:
    """Population quantities of the generator with population ATT ``att`` (exact)."""
    cal = _calibration()
    ols = np.concatenate([[cal.alpha, 0.0], cal.beta])
    ols += att * (np.eye(len(ols))[1] + cal.projection)
    names = ["const", contract.TREATMENT, *contract.COVARIATES]
    model8 = {term: float(ols[names.index(term)]) for term in ["const", *contract.MODEL8_TERMS]}
    imbalance = cal.projection_table[0] - cal.projection_table[1]
    return {
        "att_population": float(att),
        "ate_population": float(att * (cal.share_treated
                                       + (1 - cal.share_treated) * cal.mean_g_control)),
        "ols_location_coefficient": model8[contract.TREATMENT],
        "ols_model8": model8,
        "naive_difference": float(att + imbalance @ cal.beta),
    }


def simulate(seed: int = DEFAULT_SEED, n: int = N_PUBLISHED, *,
             att: float | None = None) -> SyntheticData:
    """Generate a synthetic ``smi-psm`` sample calibrated to Ma et al. (2023).

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same frame.
    n : int
        Sample size; ``round(n * 606 / 3333)`` respondents are host-city insured.
    att : float, optional
        Population ATT of host-city insurance; default 6.47 (Table 6). ``0`` is a null
        world in which nobody's integration depends on where they are insured.

    Returns
    -------
    SyntheticData
        The frame (contract columns, ``attrs["synthetic"] = True``) and its truth: the
        sample ``att`` and ``ate`` from the potential outcomes, their population values,
        the population Model 8 projection, the structural and propensity coefficients,
        and the factor model of the indicators.
    """
    att = ATT_PUBLISHED if att is None else float(att)
    cal = _calibration()
    frame, y0, y1 = _generate(seed, n, att)
    frame.attrs["synthetic"] = True
    treated = frame[contract.TREATMENT].to_numpy() == 1

    truth = {
        "att": float(np.mean((y1 - y0)[treated])),
        "ate": float(np.mean(y1 - y0)),
        **_population_truth(att),
        "n_treated": int(treated.sum()),
        "structural": {
            "intercept": cal.alpha,
            "beta": dict(zip(contract.COVARIATES, map(float, cal.beta), strict=True)),
            "effect": "tau(X) = att * e(X) / E[e(X) | host_city_smi = 1], e the true "
                      "propensity score on the PSM covariates",
            "mean_propensity_treated": cal.mean_e_treated,
            "noise_sd": cal.noise_sd,
        },
        "propensity": _propensity_truth(_CHARACTERISTICS),
        "propensity_covariates": _propensity_truth(contract.COVARIATES),
        "factor_weights": dict(zip(_FACTORS, map(float, cal.weights), strict=True)),
        "index_scale": cal.kappa,
        "factor_loadings": {name: spec[0] for name, spec in _INDICATOR_SPEC.items()},
        "indicator_factor": dict(contract.INDICATOR_FACTOR),
    }
    return SyntheticData(study=contract.STUDY_ID, frame=frame, truth=truth, seed=seed,
                         options={"n": n, "att": att})
