"""The shared NUTS entry point: a fit that runs past ``sampler.time_limit`` stops with a clear
FitTimeout instead of hanging (issue 6: Bambi + nutpie once stalled for 8 minutes on one seed)."""

from __future__ import annotations

import time

import numpy as np
import pymc as pm
import pytest

from bayes_pool.bayes.sampling import FitTimeout, sample_bambi, sample_pymc, time_limit
from bayes_pool.errors import BayesPoolError, SpecError
from bayes_pool.specs import SamplerSettings, load_spec


def test_time_limit_stops_a_long_block_and_restores_the_alarm():
    start = time.monotonic()
    with pytest.raises(FitTimeout, match="did not finish within 0.5 s"):
        with time_limit(0.5, "a busy loop"):
            while time.monotonic() - start < 30:
                pass
    assert time.monotonic() - start < 5
    with time_limit(0.5, "a quick block"):  # finishes in time: nothing raised, alarm cleared
        pass
    time.sleep(0.7)


def _busy(seconds):
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        pass


def test_time_limits_nest_and_the_one_that_ends_first_stops_the_block():
    with pytest.raises(FitTimeout, match="the inner fit did not finish within 0.3 s"):
        with time_limit(5, "the outer run"):
            with time_limit(0.3, "the inner fit"):
                _busy(10)
    # an inner limit that finishes in time leaves the outer one running
    start = time.monotonic()
    with pytest.raises(FitTimeout, match="the outer run did not finish within 0.6 s"):
        with time_limit(0.6, "the outer run"):
            with time_limit(0.2, "a quick fit"):
                pass
            _busy(10)
    assert 0.5 < time.monotonic() - start < 3
    # a longer inner limit does not extend the outer one
    with pytest.raises(FitTimeout, match="the outer run did not finish within 0.3 s"):
        with time_limit(0.3, "the outer run"):
            with time_limit(60, "a long fit"):
                _busy(10)
    time.sleep(0.4)  # no alarm left behind


def test_a_stalled_nutpie_fit_is_stopped_with_a_clear_message():
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=3)
    s = SamplerSettings(chains=2, draws=50_000_000, tune=100, time_limit=5)
    start = time.monotonic()
    with pytest.raises(FitTimeout) as info:
        sample_pymc(model, s, seed=1, what="a toy model")
    elapsed = time.monotonic() - start
    assert elapsed < 45, elapsed  # stopped near the limit, not after 50 million draws
    assert isinstance(info.value, BayesPoolError)
    assert "a toy model" in str(info.value) and "sampler.time_limit" in str(info.value)


def test_a_fit_within_its_limit_returns_draws():
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    s = SamplerSettings(chains=2, draws=200, tune=200, time_limit=300)
    idata = sample_pymc(model, s, seed=1)
    x = np.asarray(idata["posterior"]["x"])
    assert x.shape == (2, 200) and abs(x.mean()) < 0.3


def test_time_limit_is_validated_and_in_every_spec():
    with pytest.raises(SpecError, match="time_limit"):
        SamplerSettings(time_limit=-1)
    assert load_spec("did_logit").sampler.time_limit > 0


def test_cores_setting_sets_how_many_chains_run_at_once():
    from bayes_pool.bayes.sampling import _common
    assert _common(SamplerSettings(chains=4, cores=1), seed=1, progressbar=False)["cores"] == 1
    assert _common(SamplerSettings(chains=4), seed=1, progressbar=False)["cores"] == 2
    assert _common(SamplerSettings(chains=1, cores=2), seed=1, progressbar=False)["cores"] == 1
    with pytest.raises(SpecError, match="cores"):
        SamplerSettings(cores=0)


def test_a_stalled_nutpie_refit_off_the_main_thread_is_stopped():
    # SBC refits call nutpie on a compiled model on dask worker threads, where SIGALRM cannot
    # act; sample_nutpie polls nutpie's background sampler and cancels it instead.
    import nutpie

    from bayes_pool.bayes.sampling import sample_nutpie
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=3)
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    error, elapsed = _timeout_off_the_main_thread(
        lambda: sample_nutpie(compiled, time_limit=3, what="a refit", draws=50_000_000,
                              tune=100, chains=1, cores=1, seed=1, progress_bar=False))
    assert elapsed < 20 and "a refit" in str(error)
    quick = sample_nutpie(compiled, time_limit=60, draws=100, tune=100, chains=1, cores=1,
                          seed=2, progress_bar=False)
    assert np.asarray(quick["posterior"]["x"]).shape == (1, 100, 3)


def _toy_bambi(n=200):
    import bambi as bmb
    import pandas as pd
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": rng.integers(0, 4, n)})
    frame["y"] = rng.binomial(1, 1 / (1 + np.exp(-(0.5 * frame["x"] + 0.3 * frame["g"]))))
    model = bmb.Model("y ~ x + (1|g)", frame, family="bernoulli")
    model.build()
    return model


def test_nutpie_fits_give_the_same_draws_as_bambi_and_pymc_themselves():
    """sample_bambi/sample_pymc run nutpie themselves (for the time limit in any thread); the
    trace must be the one Bambi's fit and pm.sample give: same variables, groups and draws."""
    s = SamplerSettings(chains=2, draws=100, tune=100, target_accept=0.9)
    ours = sample_bambi(_toy_bambi(), s, seed=11)
    # a toy model is far below LOW_RANK_MAX_DIM: "auto" is nutpie's low-rank adaptation
    low_rank = s.nuts_options() | {"adaptation": "low_rank"}
    assert ours["posterior"].attrs["mass_matrix"].startswith("low_rank (auto; ")
    theirs = _toy_bambi().fit(inference_method="nutpie", draws=100, tune=100, chains=2, cores=2,
                              random_seed=11, progressbar=False, nuts=low_rank)
    assert sorted(ours.children) == sorted(theirs.children)
    post, ref = ours["posterior"], theirs["posterior"]
    assert sorted(post.data_vars) == sorted(ref.data_vars)
    for name in ref.data_vars:
        np.testing.assert_array_equal(post[name].values, ref[name].values, err_msg=name)
    np.testing.assert_array_equal(ours["sample_stats"]["diverging"].values,
                                  theirs["sample_stats"]["diverging"].values)

    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 1.0)
        pm.Deterministic("twice", 2 * mu)
        pm.Normal("y", mu, 1.0, observed=[0.3, -0.2, 0.8])
    ours = sample_pymc(model, s, seed=5)
    with model:
        theirs = pm.sample(nuts_sampler="nutpie", draws=100, tune=100, chains=2, cores=2,
                           random_seed=5, progressbar=False, nuts=low_rank)
    for name in ("mu", "twice"):
        np.testing.assert_array_equal(ours["posterior"][name].values,
                                      theirs["posterior"][name].values)


def test_a_stalled_bambi_fit_on_a_worker_thread_is_stopped():
    # prior-set refits run Bambi fits on dask worker threads, where SIGALRM cannot act
    model = _toy_bambi()
    s = SamplerSettings(chains=1, draws=50_000_000, tune=100, time_limit=3)
    error, elapsed = _timeout_off_the_main_thread(
        lambda: sample_bambi(model, s, seed=1, what="a prior-set refit"))
    assert elapsed < 45 and "a prior-set refit" in str(error)


def _timeout_off_the_main_thread(fit):
    """Run ``fit`` in another thread (as a dask worker does); its FitTimeout and how long the
    fit ran before it."""
    import threading
    caught = {}

    def run():
        start = time.monotonic()
        try:
            fit()
        except FitTimeout as exc:
            caught["error"], caught["elapsed"] = exc, time.monotonic() - start

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive() and "error" in caught, "the fit was not stopped"
    return caught["error"], caught["elapsed"]


def test_auto_adaptation_is_low_rank_for_small_models_and_diagonal_for_large_ones():
    """nutpie's low-rank adaptation cost ~100x a diagonal step on a 413-parameter county
    model (and diverged); "auto" switches to the diagonal above LOW_RANK_MAX_DIM, an explicit
    choice is kept, and the posterior records what was used."""
    from bayes_pool.bayes.sampling import LOW_RANK_MAX_DIM, mass_matrix
    assert mass_matrix("auto", LOW_RANK_MAX_DIM) == "low_rank"
    assert mass_matrix("auto", LOW_RANK_MAX_DIM + 1) == "diag"
    assert mass_matrix("low_rank", 10_000) == "low_rank" and mass_matrix("diag", 3) == "diag"
    with pytest.raises(SpecError, match="adaptation"):
        SamplerSettings(adaptation="dense")
    dim = LOW_RANK_MAX_DIM + 50
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=dim)
    idata = sample_pymc(model, SamplerSettings(chains=2, draws=100, tune=100), seed=3)
    assert idata["posterior"].attrs["mass_matrix"] == f"diag (auto; {dim} parameters)"
    assert int(idata["sample_stats"]["diverging"].sum()) == 0
