"""Estimands: numerics both backends share, over arrays, with no model and no backend import.

:mod:`.mediation` (natural effects by g-computation), :mod:`.matching` (propensity-score
matching and its variances), :mod:`.balance` (covariate balance before and after matching).
Each is tested without MCMC.
"""
