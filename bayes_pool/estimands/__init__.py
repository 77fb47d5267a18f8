"""Estimands: numerics both backends share, over arrays, with no model and no backend import.

:mod:`.mediation` (natural effects by g-computation), :mod:`.matching` (propensity-score
matching and its variances), :mod:`.balance` (covariate balance before and after matching);
the breakdown numbers of issue 17: :mod:`.rosenbaum` (Rosenbaum bounds), :mod:`.ovb` (robustness
value), :mod:`.evalue` (E-values), :mod:`.mediation_sensitivity` and
:mod:`.mediation_sensitivity_binary` (ACME as a function of rho, linear and probit outcome).
:mod:`.mediation_sensitivity_fit` is the one module here that fits regressions (the OLS and
probit steps those closed forms take, on arrays): :mod:`bayes_pool.robustness`, below the
backends, needs them.
Each is tested without MCMC.
"""
