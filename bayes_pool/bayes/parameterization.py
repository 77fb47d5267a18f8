"""Centred or non-centred unit intercepts: the same posterior, written two ways for NUTS.

Non-centred (``u_k = sigma * z_k``, Bambi's default) suits units with little data each, where
the posterior of ``u_k`` is close to its prior and a centred ``u_k ~ N(0, sigma)`` makes a
funnel. Centred suits units with much data each, where the likelihood pins ``u_k`` down and the
non-centred ``z_k`` become tied to ``sigma`` instead. The DiD models here have provinces as
units and hundreds of respondents in each: on the benchmark logit (29 provinces, median 165
rows), centred took 20% fewer leapfrog steps and gave 4x the smallest bulk ESS (3,200 vs 500-900)
of non-centred, with 0 divergences (2026-12-04, 4 x 1000 draws). ``"auto"`` therefore centres
when the median unit has at least :data:`CENTRED_MIN_MEDIAN_ROWS` rows (a panel of people,
with a few rows each, stays non-centred); the convergence gate still checks every fit.
"""

from __future__ import annotations

import pandas as pd

CENTRED_MIN_MEDIAN_ROWS = 100


def noncentered(frame: pd.DataFrame, unit: str, setting: str = "auto") -> bool:
    """Bambi's ``noncentered`` flag for the unit intercepts of a fit on ``frame``."""
    if setting != "auto":
        return setting == "noncentered"
    return float(frame[unit].value_counts().median()) < CENTRED_MIN_MEDIAN_ROWS
