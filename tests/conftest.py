"""Shared fixtures. Sampling fixtures are session-scoped so each real fit is paid for once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bayes_pool import runs


def make_panel(seed: int = 7, n: int = 3000, units: int = 12, effect: float = 0.8,
               family: str = "bernoulli") -> tuple[pd.DataFrame, dict]:
    """A small staggered-adoption panel that is not one of the studies, with its true AME.

    Column names are deliberately not the studies' (``county``, ``wave``, ``y``, ``treated``),
    so the generic path is what gets exercised.
    """
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, units, n)
    wave = rng.choice([1, 2, 3], n)
    adopt = {u: (2 if u < 3 else 3 if u < 6 else 99) for u in range(units)}
    treated = np.array([int(w >= adopt[u]) for u, w in zip(unit, wave)])
    x1 = rng.normal(0, 1, n)
    x2 = rng.binomial(1, 0.4, n)
    u_eff = rng.normal(0, 0.7, units)
    eta = -0.2 + u_eff[unit] + 0.15 * (wave - 2) + 0.5 * x1 - 0.4 * x2
    truth = {"effect": effect}
    if family == "bernoulli":
        y = rng.binomial(1, expit(eta + effect * treated))
        truth["ame"] = float(np.mean(expit(eta + effect) - expit(eta)))
    else:
        y = eta + effect * treated + rng.normal(0, 1, n)
        truth["ame"] = effect
    frame = pd.DataFrame({"county": [f"c{u:02d}" for u in unit], "wave": wave, "treated": treated,
                          "x1": x1, "x2": x2, "y": y})
    return frame, truth


@pytest.fixture(scope="session")
def panel():
    return make_panel()


def point_outputs(mp: pytest.MonkeyPatch, folder: Path) -> Path:
    """Send every run folder to ``folder``: :data:`bayes_pool.runs.OUTPUTS_DIR` in this
    process and ``$BAYES_POOL_OUTPUTS`` for worker processes, undone with ``mp``."""
    mp.setattr(runs, "OUTPUTS_DIR", folder)
    mp.setenv("BAYES_POOL_OUTPUTS", str(folder))
    return folder


@pytest.fixture()
def outputs(tmp_path, monkeypatch) -> Path:
    """The commands' outputs/ folder, in a temporary place (not created)."""
    return point_outputs(monkeypatch, tmp_path / "outputs")
