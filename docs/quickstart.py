# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # bayes_pool from Python: a quickstart
#
# Three analyses on generated data: a difference-in-differences (DiD), a propensity-score
# matching (PSM) and a mediation analysis. Each call takes a pandas DataFrame and column names
# and returns a result with
#
# - `.summary()`: a printable table (estimate, SE or posterior SD, 95% interval, and for
#   posterior rows R-hat, ESS, divergences and whether the fit converged);
# - `.tidy()`: the estimates table, the rows `bayes-pool` writes to `estimates.csv`;
# - `.plot()`: `(fig, ax)`, drawn, not written (call `fig.savefig(...)` to keep it);
# - `.diagnostics()`: R-hat, ESS and divergences of every posterior row, with the verdict;
# - `.idata`: the posterior (ArviZ), or `None` when no model was sampled.
#
# The data are **synthetic** (generated below, the true effects beside them). The sampler is
# cut to 2 chains x 200 draws so the whole script runs in well under a minute; chains this
# short often miss the convergence thresholds (R-hat <= 1.01, bulk and tail ESS >= 400, no
# divergences) and the summary then says NOT CONVERGED. Leave out `draws`, `tune` and
# `chains` in real work to get the specs' 4 chains x 1000 draws.
#
# Run it as a script (`python docs/quickstart.py`) or open it as a notebook with jupytext.

# %%
import numpy as np
import pandas as pd
from scipy.special import expit

import bayes_pool as bp

QUICK = dict(draws=200, tune=200, chains=2)
rng = np.random.default_rng(2024)

# %% [markdown]
# ## 1. Difference-in-differences
#
# Repeated cross-sections of 24 regions in three survey years; 6 regions adopt a policy in
# 2016, 6 in 2018, the rest never. The outcome is binary (good self-rated health) and the
# policy raises its log-odds by `TRUE_BETA`; `sector` is a text covariate, entered as 0/1
# indicators with `farm` as the reference level.

# %%
TRUE_BETA = 0.5
regions = np.array([f"r{i:02d}" for i in range(24)])
adoption = np.r_[np.full(6, 2016), np.full(6, 2018), np.full(12, 9999)]
level = rng.normal(0.0, 0.5, len(regions))
n = 1500
which = rng.integers(0, len(regions), n)
year = rng.choice([2014, 2016, 2018], n)
pooled = (year >= adoption[which]).astype(int)
age = rng.normal(40, 10, n)
sector = rng.choice(["farm", "factory", "service"], n)
eta = (-0.2 + level[which] + 0.1 * (year - 2016) / 2 + 0.02 * (age - 40)
       + 0.3 * (sector == "service") + TRUE_BETA * pooled)
did_data = pd.DataFrame({"region": regions[which], "year": year, "pooled": pooled,
                         "age": age, "sector": sector,
                         "good_health": rng.binomial(1, expit(eta))})

did = bp.did(did_data, outcome="good_health", treatment="pooled", unit="region", time="year",
             covariates=["age", "sector"], reference={"sector": "farm"}, seed=1, **QUICK)
print(did.summary())

# %% [markdown]
# Frequentist: the two-way fixed-effects logit with SEs clustered by region, and the average
# marginal effect (AME) by the delta method. Bayesian: region intercepts partially pooled
# around the region means of the regressors, year effects; the AME is computed in every draw.
# `.tidy()` holds every row, covariates included:

# %%
did_table = did.tidy()
print(did_table[["term", "quantity", "source", "estimate", "se", "ci_low", "ci_high"]])

# %%
fig, ax = did.plot()  # the policy's beta and AME, frequentist and Bayesian
did_diagnostics = did.diagnostics()
print(did_diagnostics)
print(did.diagnostics(min_ess_bulk=100, min_ess_tail=100))  # re-judged, as --min-ess does

# %% [markdown]
# ## 2. Propensity-score matching
#
# One cross-section: the treatment is more likely for older, male and better educated people;
# it raises the outcome by `TRUE_ATT`. `backends=("frequentist",)` keeps this quick: k-NN,
# radius and kernel matching with their balance table. Leave it out to add the Bayesian
# propensity, IPW, doubly robust and regression ATTs.

# %%
TRUE_ATT = 0.5
m = 600
age = rng.normal(60, 6, m)
education = rng.choice(["none", "primary", "secondary"], m, p=[0.3, 0.5, 0.2])
male = rng.binomial(1, 0.5, m)
insured = rng.binomial(1, expit(-0.5 + 0.05 * (age - 60) + 0.4 * male
                                + 0.5 * (education == "secondary")))
mediator = 0.6 * insured + rng.normal(0, 1, m)
psm_data = pd.DataFrame({"insured": insured, "age": age, "education": education,
                         "male": male, "integration": mediator,
                         "wellbeing": TRUE_ATT * insured + 0.02 * age + 0.3 * male
                         + rng.normal(0, 1, m)})

psm = bp.psm(psm_data, treatment="insured", outcome="wellbeing",
             covariates=["age", "education", "male"], bootstrap=50, seed=2,
             backends=("frequentist",))
print(psm.summary())
print(psm.summary(table="psm_balance", quantity="std_bias_pct"))  # balance before and after

# %%
fig, ax = psm.plot()
psm_table = psm.tidy()

# %% [markdown]
# ## 3. Mediation
#
# Does insurance act through social integration? Here it moves the mediator by 0.6 and the
# mediator moves the outcome by 0.5, so the natural indirect effect is 0.3 and the direct
# effect `TRUE_DIRECT`. Frequentist: the stepwise regressions with a bootstrap; Bayesian: the
# joint model.

# %%
TRUE_DIRECT = 0.3
psm_data["outcome"] = (TRUE_DIRECT * psm_data["insured"] + 0.5 * psm_data["integration"]
                       + rng.normal(0, 1, m))
mediation = bp.mediate(psm_data, treatment="insured", mediator="integration",
                       outcome="outcome", covariates=["age", "education"], family="gaussian",
                       bootstrap=50, seed=3, **QUICK)
print(mediation.summary())
fig, ax = mediation.plot()
mediation_table = mediation.tidy()

# %% [markdown]
# ## Next
#
# - `bp.event_study(...)` and `bp.staggered(...)` take the same arguments plus `cohort` (each
#   unit's first treated period) for staggered adoption; `.plot()` of an event study draws the
#   effect against event time.
# - `bp.study("pooling-did").run(parts=("table3",))` re-analyses a published study on its
#   calibrated synthetic data, published numbers included.
# - The same analyses from the shell: `bayes-pool did|psm|mediate --data FILE ...`.
