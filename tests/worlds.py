"""Test worlds built to break the models: each says what it breaks and returns its truth.

Generic on purpose (column names are not the studies'), so the generic path is exercised.
Add a world here when a test needs one; keep the truth next to the data it belongs to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit


def confounded_panel(seed: int, *, n: int = 4000, units: int = 30, n_always: int = 3,
                     adoption: tuple[int, ...] = (2, 3, 3), level_shift: float = 0.8,
                     effect: float = 0.5, shock_sd: float = 0.0, unit_sd: float = 0.5,
                     family: str = "bernoulli", resid_sd: float = 1.0,
                     switcher_share: float = 0.5) -> tuple[pd.DataFrame, dict]:
    """Repeated cross-sections of ``units`` units over waves 1-3 in which unit levels are
    correlated with treatment, as in the provincial-pooling design.

    What it breaks: exchangeable unit intercepts. The first ``n_always`` units are treated in
    every wave and sit ``level_shift`` above the rest; the next ``len(adoption)`` units switch
    on at the given waves, sit ``level_shift / 2`` above the rest and have ``switcher_share``
    of an average unit's rows (few switchers, few rows each); the others are never treated.
    ``x`` is a time-varying covariate whose unit mean also tracks the level. ``shock_sd`` adds
    a unit x wave shock (Moulton / Bertrand-Duflo-Mullainathan), which the models do not see.

    Returns the frame (columns ``region``, ``wave``, ``d``, ``x``, ``y``) and the truth: the
    coefficient ``beta`` of ``d`` on the model's scale and, for a logit, the sample ``ame``
    (mean over rows of p(d=1) - p(d=0) at the true linear predictor, shocks included).
    """
    rng = np.random.default_rng(seed)
    n_switch = len(adoption)
    kind = np.array(["always"] * n_always + ["switcher"] * n_switch
                    + ["never"] * (units - n_always - n_switch))
    weight = np.where(kind == "switcher", switcher_share, 1.0)
    unit = rng.choice(units, size=n, p=weight / weight.sum())
    wave = rng.choice([1, 2, 3], size=n)
    adopt = np.full(units, 99)
    adopt[:n_always] = 0
    adopt[n_always:n_always + n_switch] = adoption
    d = (wave >= adopt[unit]).astype(int)
    shift = np.select([kind == "always", kind == "switcher"], [level_shift, level_shift / 2], 0.0)
    level = rng.normal(0.0, unit_sd, units) + shift
    shock = rng.normal(0.0, shock_sd, (units, 3)) if shock_sd > 0 else np.zeros((units, 3))
    x = 0.8 * level[unit] + rng.normal(0.0, 1.0, n)
    eta = -0.3 + level[unit] + 0.2 * (wave - 2) + 0.4 * x + shock[unit, wave - 1]
    truth = {"beta": effect, "switchers": [f"r{u:02d}" for u in range(n_always, n_always + n_switch)],
             "always_treated": [f"r{u:02d}" for u in range(n_always)]}
    if family == "bernoulli":
        y = rng.binomial(1, expit(eta + effect * d))
        truth["ame"] = float(np.mean(expit(eta + effect) - expit(eta)))
    else:
        y = eta + effect * d + rng.normal(0.0, resid_sd, n)
        truth["ame"] = effect
    frame = pd.DataFrame({"region": [f"r{u:02d}" for u in unit], "wave": wave, "d": d,
                          "x": x, "y": y})
    return frame, truth
