"""The design and estimands layers on their own: no sampler, no backend, known answers.

Natural effects against their closed form for a linear outcome, matching and balance on toy
samples whose matches can be written down by hand, and a fresh interpreter that imports
every design and estimand module without loading a backend or a PPL.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_pool.design.psm import PSMDesign
from bayes_pool.estimands.balance import balance
from bayes_pool.estimands.matching import MatchSettings, match
from bayes_pool.estimands.mediation import natural_effects

ROOT = Path(__file__).resolve().parents[1]


def test_linear_natural_effects_are_the_product_and_the_direct_coefficient():
    """Identity link: NIE = a b and NDE = d for every draw, whatever the rows and sigma."""
    rng = np.random.default_rng(0)
    a, b, d = np.array([0.5, -1.0, 2.0]), np.array([0.8, 0.3, -0.1]), np.array([0.4, 0.0, 1.5])
    base, mu0 = rng.normal(size=(3, 50)), rng.normal(size=(3, 50))
    eff = natural_effects(base, mu0, a, b, d, np.array([1.0, 0.2, 3.0]), family="gaussian")
    np.testing.assert_allclose(eff["indirect"], a * b, atol=1e-12)
    np.testing.assert_allclose(eff["direct"], d, atol=1e-12)
    np.testing.assert_allclose(eff["total"], a * b + d, atol=1e-12)
    np.testing.assert_allclose(eff["proportion_mediated"], a * b / (a * b + d), atol=1e-12)


def test_logit_natural_effects_vanish_without_the_mediator_path():
    rng = np.random.default_rng(1)
    base, mu0 = rng.normal(size=(2, 40)), rng.normal(size=(2, 40))
    eff = natural_effects(base, mu0, np.array([0.7, 0.7]), np.array([0.0, 0.9]),
                          np.array([0.5, 0.5]), np.array([1.0, 1.0]), family="bernoulli")
    assert eff["indirect"][0] == pytest.approx(0.0, abs=1e-15)
    assert eff["indirect"][1] > 0.05  # a b > 0 moves the probability


def test_knn_and_radius_match_the_hand_written_pairs():
    """Treated at 0.30 and 0.60; controls at 0.28, 0.31, 0.59, 0.90. k = 1 takes the nearest
    control (0.31 and 0.59); radius 0.025 takes both 0.28 and 0.31 for the first."""
    ps = np.array([0.30, 0.60, 0.28, 0.31, 0.59, 0.90])
    t = np.array([1, 1, 0, 0, 0, 0])
    y = np.array([5.0, 7.0, 1.0, 2.0, 3.0, 100.0])
    knn = match(ps, t, "knn", MatchSettings(k=1, knn_caliper=0.05))
    assert knn.att(y) == pytest.approx(((5 - 2) + (7 - 3)) / 2)
    radius = match(ps, t, "radius", MatchSettings(radius_caliper=0.025))
    assert radius.att(y) == pytest.approx(((5 - 1.5) + (7 - 3)) / 2)
    far = match(ps, t, "knn", MatchSettings(k=1, knn_caliper=0.005))
    assert far.n_off_support == 2 and np.isnan(far.att(y))


def test_balance_after_matching_on_an_exact_copy_is_perfect():
    """Each treated unit has a control with the same covariate value and score: after
    matching the means agree and the standardized bias is 0, before it is not."""
    x = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 9.0, 8.0])
    t = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    frame = pd.DataFrame({"d": t, "y": np.arange(8.0), "x": x})
    prepared = PSMDesign(treatment="d", outcome="y", covariates=("x",)).prepare(frame)
    table = balance(prepared, match(x / 10, t, "knn", MatchSettings(k=1, knn_caliper=0.01)))
    row = table.loc["x"]
    assert row["mean_treated_after"] == pytest.approx(row["mean_control_after"])
    assert row["std_bias_pct_after"] == pytest.approx(0.0, abs=1e-12)
    assert row["std_bias_pct_before"] < -50


def test_design_and_estimands_load_no_backend():
    modules = ["bayes_pool.design", "bayes_pool.design.staggered", "bayes_pool.design.mediation",
               "bayes_pool.design.psm", "bayes_pool.estimands.matching",
               "bayes_pool.estimands.balance", "bayes_pool.estimands.mediation"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in ('pymc', 'bambi', 'pytensor', 'arviz', 'matplotlib',"
            " 'bayes_pool.freq', 'bayes_pool.bayes') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
