"""Estimands: numerics both backends share, over arrays, with no model and no backend import.

:mod:`.mediation` (natural effects by g-computation), :mod:`.matching` (propensity-score
matching and its variances), :mod:`.balance` (covariate balance before and after matching);
the breakdown numbers of issue 17: :mod:`.rosenbaum` (Rosenbaum bounds), :mod:`.ovb` (robustness
value), :mod:`.evalue` (E-values), :mod:`.mediation_sensitivity` (ACME as a function of rho).
Each is tested without MCMC.
"""
