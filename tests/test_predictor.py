"""The design-based linear predictor gives Bambi's own fitted probabilities."""

import bambi as bmb
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import expit

from bayes_pool.bayes.predictor import LinearPredictor, total_log_likelihood


@pytest.mark.parametrize("formula", ["y ~ d + x + C(t) + (1|g)", "y ~ d + x + (1|g) + (d|h)"])
def test_eta_matches_bambi_predict(formula):
    rng = np.random.default_rng(3)
    n = 300
    data = pd.DataFrame({"y": rng.integers(0, 2, n), "d": rng.integers(0, 2, n),
                         "x": rng.normal(size=n), "t": rng.integers(0, 3, n),
                         "g": rng.choice(list("abcde"), n), "h": rng.choice(["lo", "hi"], n)})
    model = bmb.Model(formula, data, family="bernoulli")
    model.build()
    prior = model.prior_predictive(draws=50, random_seed=1)["prior"].to_dataset()
    tree = xr.DataTree.from_dict({"posterior": prior})
    p = model.predict(tree, kind="response_params", inplace=False)["posterior"]["p"]
    expected = np.asarray(p.transpose("chain", "draw", "__obs__")).reshape(-1, n)
    lp = LinearPredictor(model, tree["posterior"])
    got = np.concatenate([eta for _, eta in lp.chunks(size=17)])
    assert got.shape == expected.shape and got.std() > 0.5
    np.testing.assert_allclose(expit(got), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("family", ["bernoulli", "gaussian"])
def test_total_log_likelihood_matches_bambi(family):
    rng = np.random.default_rng(4)
    n = 200
    data = pd.DataFrame({"d": rng.integers(0, 2, n), "x": rng.normal(size=n),
                         "g": rng.choice(list("abcd"), n)})
    data["y"] = rng.integers(0, 2, n) if family == "bernoulli" else rng.normal(size=n)
    model = bmb.Model("y ~ d + x + (1|g)", data, family=family)
    model.build()
    prior = model.prior_predictive(draws=40, random_seed=2)["prior"].to_dataset()
    tree = xr.DataTree.from_dict({"posterior": prior})
    ll = model.compute_log_likelihood(tree, inplace=False)["log_likelihood"]["y"]
    expected = np.asarray(ll.sum("__obs__").transpose("chain", "draw"))
    got = np.asarray(total_log_likelihood(model, tree["posterior"]))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
