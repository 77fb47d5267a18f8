r"""Bayesian propensity models for the ATT: two-step matching, IPW, doubly robust, regression.

Four estimators on a :class:`~bayes_pool.design.psm.PreparedPSM`, each summarised from its
draws with :func:`~bayes_pool.bayes.diagnostics.posterior_rows`; each row's note names what
its draws are:

*Bayesian propensity logit* (Bambi; priors and sampler from ``models/propensity_logit.toml``)

.. math:: \operatorname{logit} e_i = \alpha + X_i\gamma .

*Two-step matching* (``knn``, ``radius``, ``kernel`` and, when ``MatchSettings.exact`` names
covariates, ``knn_exact``). For each of a thinned set of draws of
:math:`(\alpha, \gamma)` the score is recomputed, the sample re-matched with the code and
settings of :mod:`bayes_pool.estimands.matching`, and the matching ATT :math:`\hat\tau_d` and its
Abadie-Imbens conditional variance :math:`\hat V_d` computed; the draw of the ATT is
:math:`\tau_d \sim N(\hat\tau_d, \hat V_d)`, so the posterior-predictive distribution mixes
propensity uncertainty with the sampling uncertainty of matching (Kaplan & Chen 2012's
two-step approach). The outcome does not feed back into the propensity model. This is a
two-step ("cut") plug-in, not the posterior of one model: it adds the score's posterior
variance to a variance that treats the score as known, which is not how estimating the score
changes a matching estimator's variance (Abadie & Imbens 2016 derive that adjustment; it is
the SE of the frequentist ``knn`` row, :func:`bayes_pool.estimands.matching.ai2016_variance`).

*IPW* (``bayes_ipw``) and *doubly robust* (``bayes_dr``): a Bayesian bootstrap of the whole
two-model procedure (the weighted likelihood bootstrap, Newton & Raftery 1994; Rubin 1981).
Each replicate draws Dirichlet(1, ..., 1) unit weights :math:`g_i` (scaled to mean 1),
refits the propensity logit by weighted maximum likelihood (statsmodels GLM,
``freq_weights = g``) and, for DR, the linear Y(0) model on the controls by weighted least
squares, and computes with the same weights

.. math:: \tau^{IPW} = \frac{\sum_T g_i Y_i}{\sum_T g_i}
          - \frac{\sum_C g_j w_j Y_j}{\sum_C g_j w_j}, \qquad w_j = \frac{\hat e_j}{1-\hat e_j},

and :math:`\tau^{DR}` the same with :math:`Y - \hat\mu_0(X)` in place of :math:`Y`. The score
is re-estimated in every replicate, so the draws are a (nonparametric) posterior of the
ATT functional, not a full-data score posterior crossed with resampled units.

*Regression* (``bayes_regression``): :math:`Y = \beta_0 + \tau T + X\beta + T X\delta +
\varepsilon`, ATT by g-computation over the treated,
:math:`\tau_d = \tau + \bar X_T \delta` (the mean of :math:`\mu_1 - \mu_0` over the treated).

Over 400 lines on purpose: the four Bayesian ATTs share the propensity posterior, its
thinned draws and the per-draw arithmetic, which a split would pass between modules.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace

import arviz_base as azb
import bambi as bmb
import numpy as np
import pandas as pd
import statsmodels.api as sm
import xarray as xr
from scipy.special import expit

from bayes_pool import estimates
from bayes_pool.bayes.diagnostics import divergences, posterior_rows
from bayes_pool.bayes.families import bambi_family
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.errors import SpecError
from bayes_pool.design.psm import PreparedPSM
from bayes_pool.estimands import matching as psm_matching
from bayes_pool.estimands.matching import MatchSettings
from bayes_pool.specs import ModelSpec, load_spec

log = logging.getLogger(__name__)

PROPENSITY_DRAWS = 1000
"""Default number of propensity draws that are re-matched (thinned evenly within chains);
with fewer, the R-hat of the thinned ATT draws is too noisy to meet 1.01."""

BOOTSTRAP_REPLICATES = 1000
"""Default Bayesian-bootstrap replicates of the IPW and DR ATTs (iid, so ESS near this)."""
BOOTSTRAP_CHAINS = 4
"""Pseudo-chains the iid replicates are split into, so R-hat and ESS are computed as for MCMC."""
BOOTSTRAP_COVERAGE = ("its 95% interval covered the true ATT in 38 of 40 synthetic worlds for "
                      "IPW and for DR (n = 2000, 400 replicates, heterogeneous effect; exact "
                      "binomial 95% CI of the coverage 83-99%; tests/test_psm_bootstrap.py, "
                      "slow)")
"""What the IPW / DR interval was shown to do, quoted in the rows' note."""


# --------------------------------------------------------------------------- models

def _check_names(prepared: PreparedPSM) -> None:
    d = prepared.design
    for name in [d.treatment, d.outcome, *prepared.exog.columns]:
        if not name.isidentifier():
            raise SpecError(f"column name {name!r} is not a valid identifier; rename it "
                            "(e.g. to snake_case) before the Bayesian propensity models")


def _prior(spec: dict) -> bmb.Prior:
    return bmb.Prior(spec["dist"], **{k: v for k, v in spec.items() if k != "dist"})


def _priors(spec: ModelSpec, roles: dict[str, list[str]]) -> dict:
    out = {}
    for role, prior in spec.priors.items():
        if prior == "default":
            continue
        if role not in roles:
            raise SpecError(f"spec {spec.name!r}: prior role {role!r} has no term in this "
                            f"model; roles used: {sorted(roles)}")
        for term in roles[role]:
            out[term] = _prior(prior)
    return out


def _model_frame(prepared: PreparedPSM) -> pd.DataFrame:
    d = prepared.design
    mf = prepared.exog.copy()
    mf[d.treatment] = prepared.t
    mf[d.outcome] = prepared.y
    return mf


def propensity_model(prepared: PreparedPSM, spec: ModelSpec) -> bmb.Model:
    """Bambi logit of the treatment on the propensity design (built, not sampled)."""
    _check_names(prepared)
    d, cov = prepared.design, list(prepared.exog.columns)
    f = f"{d.treatment} ~ " + " + ".join(cov)
    model = bmb.Model(f, _model_frame(prepared), family=bambi_family("bernoulli"),
                      priors=_priors(spec, {"intercept": ["Intercept"], "covariates": cov}))
    model.build()
    return model


def outcome_model(prepared: PreparedPSM, spec: ModelSpec) -> bmb.Model:
    """Bambi linear outcome model on everyone with treatment x covariate interactions (the
    regression ATT by g-computation)."""
    _check_names(prepared)
    d, cov = prepared.design, list(prepared.exog.columns)
    rhs = [d.treatment, *cov, *(f"{d.treatment}:{c}" for c in cov)]
    roles = {"intercept": ["Intercept"], "covariates": cov, "sigma": ["sigma"],
             "treatment": [d.treatment]}
    model = bmb.Model(f"{d.outcome} ~ " + " + ".join(rhs), _model_frame(prepared),
                      family="gaussian", priors=_priors(spec, roles))
    model.build()
    return model


def _sample(model: bmb.Model, spec: ModelSpec, seed: int, progressbar: bool):
    return sample_bambi(model, spec.sampler, seed=seed, progressbar=progressbar,
                        what=f"model {spec.name!r}")


# --------------------------------------------------------------------------- per-draw maths

def _draws(idata, name: str) -> np.ndarray:
    """A scalar posterior variable as a (chain, draw) array."""
    return np.asarray(idata["posterior"][name].transpose("chain", "draw"))


def linear_predictor(idata, exog: pd.DataFrame, terms: list[str] | None = None) -> np.ndarray:
    """Intercept + sum of coefficient x column, as a (chain, draw, n) array."""
    terms = list(exog.columns) if terms is None else terms
    eta = _draws(idata, "Intercept")[..., None].copy()
    for t in terms:
        eta = eta + _draws(idata, t)[..., None] * exog[t].to_numpy(dtype=float)
    return eta


def thinned_index(n_chains: int, n_draws: int, total: int) -> np.ndarray:
    """Evenly spaced draw positions kept within each chain (``total`` draws in all)."""
    per_chain = max(1, min(n_draws, int(np.ceil(total / n_chains))))
    return np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))


def matching_draws(eta: np.ndarray, prepared: PreparedPSM, settings: MatchSettings,
                   methods: tuple[str, ...], rng: np.random.Generator
                   ) -> dict[str, np.ndarray]:
    """For each (chain, draw) score: re-match, ATT and AI variance, and one normal ATT draw.

    Returns ``att_<method>`` (the posterior-predictive draw), ``att_<method>_matched`` (the
    matching ATT of the draw's score alone) and ``off_support_<method>``, each (chain, draw).
    """
    t, y = prepared.t, prepared.y
    cells = prepared.cells(settings.exact) if psm_matching.EXACT_METHOD in methods else None
    shape = eta.shape[:2]
    out = {}
    for meth in methods:
        out[f"att_{meth}"] = np.empty(shape)
        out[f"att_{meth}_matched"] = np.empty(shape)
        out[f"off_support_{meth}"] = np.empty(shape)
    z = rng.standard_normal((len(methods), *shape))
    for c in range(shape[0]):
        for d in range(shape[1]):
            ps = expit(eta[c, d])
            sigma2 = {}  # score-only, and within the exact cells for knn_exact
            for k, meth in enumerate(methods):
                m = psm_matching.match(ps, t, meth, settings, cells)
                within = meth == psm_matching.EXACT_METHOD
                if within not in sigma2:
                    sigma2[within] = psm_matching.control_variance(
                        ps, y, m.controls, cells=cells if within else None)
                tau = m.att(y)
                v = psm_matching.matching_variance(m, y, sigma2[within])
                out[f"att_{meth}_matched"][c, d] = tau
                out[f"att_{meth}"][c, d] = tau + np.sqrt(v) * z[k, c, d]
                out[f"off_support_{meth}"][c, d] = m.n_off_support
    return out


def _hajek_att(v: np.ndarray, t: np.ndarray, g: np.ndarray, odds: np.ndarray) -> float:
    """Weighted treated mean of ``v`` minus the odds-weighted control mean (ATT weights)."""
    return float(np.average(v[t], weights=g[t]) - np.average(v[~t], weights=g[~t] * odds[~t]))


def weighted_atts(X: np.ndarray, t: np.ndarray, y: np.ndarray, g: np.ndarray,
                  start: np.ndarray | None = None) -> tuple[float, float]:
    """IPW and DR ATT with unit weights ``g``: the logit (``X`` has the constant) and the
    controls' linear Y(0) model both refitted with ``g``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-separation warnings of single replicates
        gamma = sm.GLM(t.astype(float), X, family=sm.families.Binomial(),
                       freq_weights=g).fit(start_params=start).params
    odds = np.exp(X @ gamma)
    beta = sm.WLS(y[~t], X[~t], weights=g[~t]).fit().params
    return _hajek_att(y, t, g, odds), _hajek_att(y - X @ beta, t, g, odds)


def _ml_logit(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Maximum-likelihood logit coefficients (``X`` has the constant): the weighted refits'
    starting values, the fit the frequentist matching scores with."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.asarray(sm.Logit(t, X).fit(disp=0, maxiter=200).params)


def bootstrap_draws(prepared: PreparedPSM, *, replicates: int, chains: int, seed: int
                    ) -> dict[str, np.ndarray]:
    """Bayesian-bootstrap draws of the IPW and DR ATTs, ``att_ipw`` and ``att_dr``, each
    (chains, replicates / chains); replicate ``r`` uses the ``r``-th child of ``seed``."""
    t = prepared.t.astype(bool)
    X = sm.add_constant(prepared.exog, has_constant="add").to_numpy(dtype=float)
    start = _ml_logit(X, prepared.t)
    per = int(np.ceil(replicates / chains))
    out = np.empty((2, chains * per))
    for r, child in enumerate(np.random.SeedSequence(seed).spawn(chains * per)):
        g = np.random.default_rng(child).dirichlet(np.ones(len(t))) * len(t)
        out[:, r] = weighted_atts(X, t, prepared.y, g, start)
    return {"att_ipw": out[0].reshape(chains, per), "att_dr": out[1].reshape(chains, per)}


def _coords(idata) -> dict:
    post = idata["posterior"]
    return {"chain": post["chain"].values, "draw": post["draw"].values}


def _with_posterior(idata, new: dict[str, np.ndarray]):
    """The same DataTree with (chain, draw) variables added to its posterior."""
    co = _coords(idata)
    arrays = {k: xr.DataArray(v, dims=("chain", "draw"), coords=co) for k, v in new.items()}
    idata["posterior"] = idata["posterior"].to_dataset().assign(arrays)
    return idata


def _derived_tree(new: dict[str, np.ndarray], diverging: np.ndarray, *, chain, draw,
                  attrs: dict):
    """A DataTree holding derived (chain, draw) variables and the fits' divergence flags."""
    tree = azb.from_dict({"posterior": new},
                         coords={"chain": np.asarray(chain), "draw": np.asarray(draw)},
                         dims={k: [] for k in new})
    tree.attrs.update(attrs)
    tree["sample_stats"] = xr.Dataset({"diverging": (("chain", "draw_fit"), diverging)})
    return tree


# --------------------------------------------------------------------------- result

@dataclass
class BayesPropensityResult:
    """The sampled propensity and regression models, the two-step matching draws and the
    Bayesian-bootstrap IPW / DR draws."""

    prepared: PreparedPSM
    spec: ModelSpec
    outcome_spec: ModelSpec
    settings: MatchSettings
    propensity: object
    regression: object
    matching: object
    weighting: object
    methods: tuple[str, ...]
    n_thinned: int
    replicates: int

    @property
    def posteriors(self) -> dict:
        """InferenceData by name, for the run's NetCDF."""
        return {"propensity": self.propensity, "outcome_regression": self.regression,
                "matching_att": self.matching, "bootstrap_att": self.weighting}

    @property
    def divergences(self) -> dict[str, int]:
        return {"propensity": divergences(self.propensity),
                "outcome_regression": divergences(self.regression)}

    def thinned_thresholds(self):
        """The spec's thresholds with the ESS minima scaled to the thinned share of draws."""
        conv = self.spec.convergence
        s = self.spec.sampler
        frac = min(1.0, self.n_thinned / (s.chains * s.draws))
        return replace(conv, min_ess_bulk=conv.min_ess_bulk * frac,
                       min_ess_tail=conv.min_ess_tail * frac)

    def tidy(self, *, study: str, table: str, column: str | None = None,
             exact_note: str = "") -> pd.DataFrame:
        """ATT rows (columns ``knn``/``radius``/``kernel``, and ``knn_exact`` when run, for the
        two-step matching, ``bayes_ipw``, ``bayes_dr``, ``bayes_regression``; or only
        ``column``) and the propensity coefficients (column ``propensity_logit``, quantity
        ``beta``). ``exact_note`` is appended to the ``knn_exact`` note."""
        d = self.prepared.design
        n = self.prepared.n_obs
        tr = d.treatment
        conv = self.spec.convergence
        rows = []
        thin = self.thinned_thresholds()
        for meth in self.methods:
            off = float(np.asarray(self.matching["posterior"][f"off_support_{meth}"]).mean())
            note = (f"TWO-STEP ('cut') PLUG-IN, not the posterior of one model: "
                    f"{self.settings.describe(meth)}; {self.n_thinned} thinned draws of the "
                    "Bambi propensity posterior each re-matched, ATT ~ N(matching ATT, "
                    "Abadie-Imbens 2006 known-score variance) per draw, so the interval adds "
                    "the score's posterior spread to the known-score sampling variance; that "
                    "is not the Abadie-Imbens 2016 estimated-score variance (the frequentist "
                    "knn row's SE) and its coverage is not shown; outcome does not feed back; "
                    f"mean {off:.1f} treated off support; ESS thresholds scaled to the "
                    "thinned draws")
            if meth == psm_matching.EXACT_METHOD and exact_note:
                note = f"{note}; {exact_note}"
            rows.append(posterior_rows(self.matching, {f"att_{meth}": (tr, "att")},
                                       thresholds=thin, study=study, table=table,
                                       column=meth, n_obs=n, note=note))
        boot = (f"Bayesian bootstrap (weighted likelihood bootstrap): {self.replicates} "
                "replicates, each with Dirichlet(1,...,1) unit weights, the propensity logit "
                "refitted by weighted ML (statsmodels GLM) and the ATT computed with the same "
                "weights; iid replicates split into pseudo-chains for R-hat/ESS (no MCMC, no "
                f"divergences); {BOOTSTRAP_COVERAGE}")
        rows.append(posterior_rows(
            self.weighting, {"att_ipw": (tr, "att")}, thresholds=conv, study=study,
            table=table, column="bayes_ipw", n_obs=n,
            note=f"IPW ATT (Hajek-normalised e/(1-e) control weights); {boot}"))
        rows.append(posterior_rows(
            self.weighting, {"att_dr": (tr, "att")}, thresholds=conv, study=study,
            table=table, column="bayes_dr", n_obs=n,
            note=f"doubly robust ATT (linear Y(0) model on the controls, refitted by weighted "
                 f"least squares in each replicate, + IPW residual correction); {boot}"))
        rows.append(posterior_rows(
            self.regression, {"att_regression": (tr, "att")},
            thresholds=self.outcome_spec.convergence, study=study, table=table,
            column="bayes_regression", n_obs=n,
            note="Bayesian linear regression with treatment x covariate interactions; ATT by "
                 "g-computation over the treated"))
        coefs = {c: (c, "beta") for c in ["Intercept", *self.prepared.exog.columns]}
        rows.append(posterior_rows(self.propensity, coefs, thresholds=conv, study=study,
                                   table=table, column="propensity_logit", n_obs=n,
                                   note=f"Bambi propensity logit of {tr}"))
        out = estimates.concat(*rows)
        if column is not None:
            out = out[out["column"] == column].reset_index(drop=True)
        return out


def fit_propensity_models(prepared: PreparedPSM, *, seed: int, spec: ModelSpec | None = None,
                          outcome_spec: ModelSpec | None = None,
                          propensity_draws: int = PROPENSITY_DRAWS,
                          methods: tuple[str, ...] | None = None,
                          settings: MatchSettings = MatchSettings(),
                          replicates: int = BOOTSTRAP_REPLICATES,
                          progressbar: bool = False) -> BayesPropensityResult:
    """Sample the two Bambi models, derive the matching ATTs per draw and bootstrap IPW / DR.

    Parameters
    ----------
    prepared
        From :meth:`bayes_pool.design.psm.PSMDesign.prepare`.
    seed
        Root seed; the fits, the matching noise and the Bayesian bootstrap get child seeds.
    spec, outcome_spec
        Default ``propensity_logit`` and ``outcome_linear`` (the regression model; without
        ``outcome_spec`` it uses the propensity spec's sampler).
    propensity_draws
        How many propensity draws are re-matched (thinned evenly within chains).
    methods
        Matching methods to propagate (default ``settings.methods``: ``knn``, ``radius``,
        ``kernel``, and ``knn_exact`` when ``settings.exact`` names covariates).
    replicates
        Bayesian-bootstrap replicates of the IPW and DR ATTs.
    """
    spec = load_spec("propensity_logit") if spec is None else spec
    if outcome_spec is None:
        outcome_spec = replace(load_spec("outcome_linear"), sampler=spec.sampler)
    if spec.family != "bernoulli" or outcome_spec.family != "gaussian":
        raise SpecError(f"propensity spec must be bernoulli and outcome spec gaussian; got "
                        f"{spec.name!r} ({spec.family}) and {outcome_spec.name!r} "
                        f"({outcome_spec.family})")
    methods = settings.methods if methods is None else tuple(methods)
    unknown = set(methods) - set(psm_matching.ALL_METHODS)
    if unknown:
        raise ValueError(f"unknown matching methods {sorted(unknown)}; valid: "
                         f"{sorted(psm_matching.ALL_METHODS)}")
    if psm_matching.EXACT_METHOD in methods and not settings.exact:
        raise ValueError("knn_exact needs settings.exact: the covariates to match exactly on")
    children = np.random.SeedSequence(seed).spawn(6)
    ints = [int(c.generate_state(1)[0]) for c in children[:5]]
    d = prepared.design
    cov = list(prepared.exog.columns)

    prop = _sample(propensity_model(prepared, spec), spec, ints[0], progressbar)
    reg = _sample(outcome_model(prepared, outcome_spec), outcome_spec, ints[2], progressbar)

    eta = linear_predictor(prop, prepared.exog)
    C, D = eta.shape[:2]
    keep = thinned_index(C, D, propensity_draws)
    match = matching_draws(eta[:, keep], prepared, settings, tuple(methods),
                           np.random.default_rng(children[3]))
    attrs = {"seed": str(seed), "derived_from": "propensity", "thinned_draws": keep.tolist()}
    matching = _derived_tree(match, np.asarray(prop["sample_stats"]["diverging"]),
                             chain=prop["posterior"]["chain"].values,
                             draw=prop["posterior"]["draw"].values[keep], attrs=attrs)

    boot = bootstrap_draws(prepared, replicates=replicates, chains=BOOTSTRAP_CHAINS,
                           seed=ints[4])
    per = boot["att_ipw"].shape[1]
    weighting = _derived_tree(boot, np.zeros((BOOTSTRAP_CHAINS, per), dtype=bool),
                              chain=np.arange(BOOTSTRAP_CHAINS), draw=np.arange(per),
                              attrs={"seed": str(ints[4]), "derived_from":
                                     "Bayesian bootstrap (weighted likelihood bootstrap)"})

    xbar = prepared.exog[prepared.t == 1].mean()
    att_reg = _draws(reg, d.treatment) + sum(_draws(reg, f"{d.treatment}:{c}") * xbar[c]
                                             for c in cov)
    _with_posterior(reg, {"att_regression": att_reg})
    for tree in (prop, reg):
        tree.attrs.update(seed=str(seed))
    return BayesPropensityResult(prepared=prepared, spec=spec, outcome_spec=outcome_spec,
                                 settings=settings, propensity=prop, regression=reg,
                                 matching=matching, weighting=weighting,
                                 methods=tuple(methods), n_thinned=int(C * len(keep)),
                                 replicates=int(BOOTSTRAP_CHAINS * per))
