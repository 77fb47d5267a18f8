"""One way to run NUTS for every model: the spec's sampler settings, under a wall-clock limit.

Bambi models go through :func:`sample_bambi`, hand-built PyMC models through
:func:`sample_pymc`; both pass the :class:`~bayes_pool.specs.SamplerSettings` straight through
(backend, chains, draws, tuning, ``target_accept``, nutpie's mass-matrix adaptation) and stop a
fit that runs longer than ``sampler.time_limit`` seconds with :class:`FitTimeout`, whose message
says what to try. The limit exists because Bambi + nutpie has stalled on a single seed for many
minutes while other seeds took seconds; a run should say so instead of hanging.

With nutpie (the default backend) a fit is what ``model.fit``/``pm.sample`` would do -- the same
traced variables, per-chain seed and post-processing, hence the same draws (tested) -- but
sampled through :func:`sample_nutpie`: nutpie runs in its own threads and this one waits with
a timeout, so the limit holds in any thread, including refits on dask workers (prior sets,
SBC). PyMC's own sampler can only be stopped by SIGALRM, in the main thread.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

import numpy as np
import pymc as pm

from bayes_pool.bayes.levels import level_vehicle
from bayes_pool.errors import BayesPoolError
from bayes_pool.specs import SamplerSettings


class FitTimeout(BayesPoolError):
    """A Bayesian fit ran past its spec's ``sampler.time_limit``."""


SPEC_LIMIT = "sampler.time_limit in the model spec"


def exact_numerics() -> None:
    """Compile PyTensor's numba functions without fast-math, so a fit repeats bit for bit.

    With PyTensor's default fast-math (reassociation, fused multiply-add contraction) the
    logp compiled fresh in a process and the same logp loaded from PyTensor's numba cache in
    the next differ in the last bits (inlining boundaries differ, so LLVM reorders different
    sums); NUTS amplifies that into different draws. So the first run of a command on a new
    model and every later one gave different estimates (did --family gaussian 1.7262 vs
    1.7736 on the same data and seed, bernoulli likewise), while reruns in one warm cache
    agreed. Without fast-math, fresh and cached code agree (tested:
    ``tests/test_rerun_numerics.py``). It costs about 3% a gradient on the benchmark logit
    (240 vs 233 µs exchangeable, 271 vs 263 µs correlated; best of 40 x 20 calls, 2026-12-06).
    Called at import, before any model is compiled.
    """
    import pytensor
    pytensor.config.numba__fastmath = False


exact_numerics()


def _timeout(what: str, seconds: float, elapsed: float, setting: str = SPEC_LIMIT
             ) -> FitTimeout:
    return FitTimeout(
        f"the Bayesian fit of {what} did not finish within {seconds:g} s (it was stopped "
        f"after {elapsed:.0f} s). NUTS has been seen to stall on one seed while others take "
        "seconds: try another --seed, or fewer --draws/--tune for a first look; raise or "
        f"switch off the limit with {setting} (0 = none)")


@contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise :class:`FitTimeout` inside the block once ``seconds`` of wall time have passed.

    Used for PyMC's own sampler, which offers no other way to stop (nutpie fits wait with a
    timeout instead, see :func:`sample_nutpie`). Uses SIGALRM, so it only acts in the main
    thread; ``None`` or 0 means no limit. Limits nest: inside another limit, whichever ends first stops the block with its own
    message, and the outer limit keeps running afterwards.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    start = time.monotonic()
    outer_left = signal.getitimer(signal.ITIMER_REAL)[0]  # 0.0: no enclosing limit
    outer_first = 0 < outer_left < seconds

    def expire(signum, frame):
        if outer_first and callable(previous):
            previous(signum, frame)  # the enclosing limit ran out first: its error
        raise _timeout(what, seconds, time.monotonic() - start)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, outer_left if outer_first else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL,
                             max(outer_left - (time.monotonic() - start), 1e-3))


def _common(s: SamplerSettings, seed: int, progressbar: bool) -> dict:
    return dict(draws=s.draws, tune=s.tune, chains=s.chains, cores=min(s.chains, s.cores),
                random_seed=seed, progressbar=progressbar, nuts=s.nuts_options())


def sample_bambi(model, s: SamplerSettings, *, seed: int, progressbar: bool = False,
                 what: str = "the model", unit_term: str | None = None):
    """``model.fit`` of a Bambi model with the sampler settings ``s``.

    With ``unit_term`` (e.g. ``"1|province"``) a model whose centred unit intercepts sit
    around unit-level terms (correlated random effects) is sampled through its unit levels
    (:mod:`bayes_pool.bayes.levels`): the same posterior, returned in Bambi's variables; the
    posterior's ``unit_levels`` attribute says which form was used."""
    if not model.built:
        model.build()
    vehicle = level_vehicle(model, unit_term) if unit_term else None
    if vehicle is not None:
        idata = sample_pymc(vehicle.model, s, seed=seed, progressbar=progressbar, what=what,
                            var_names=traced_names(vehicle.model, model))
        idata = vehicle.complete(idata)
    elif s.backend != "nutpie":
        with time_limit(s.time_limit, what):
            return model.fit(inference_method=s.backend, **_common(s, seed, progressbar))
    else:
        idata = _sample_with_nutpie(model.backend.model, s, seed=seed, progressbar=progressbar,
                                    what=what, var_names=bambi_traced_names(model))
    # Bambi's own clean-up of a trace, as model.fit(omit_offsets=True) does
    idata = model.backend._clean_results(idata, omit_offsets=True,
                                         include_response_params=False)
    model.backend.fit = True
    if vehicle is not None:
        idata["posterior"].attrs["unit_levels"] = vehicle.form
    return idata


def sample_pymc(model: pm.Model, s: SamplerSettings, *, seed: int, progressbar: bool = False,
                what: str = "the model", var_names: list[str] | None = None):
    """``pm.sample`` of a PyMC model with the sampler settings ``s`` (tracing ``var_names``,
    default all)."""
    if s.backend == "nutpie":
        return _sample_with_nutpie(model, s, seed=seed, progressbar=progressbar, what=what,
                                   var_names=var_names)
    with model, time_limit(s.time_limit, what):
        return pm.sample(nuts_sampler=s.backend, var_names=var_names,
                         **_common(s, seed, progressbar))


def traced_names(pm_model: pm.Model, model) -> list[str]:
    """The variables of ``pm_model`` a fit of the Bambi ``model`` traces: every unobserved
    variable except the likelihood's parameters (per-row deterministics that would fill
    memory)."""
    from pymc.util import get_default_varnames
    params = model.family.likelihood.params
    names = get_default_varnames(pm_model.unobserved_value_vars, include_transformed=False)
    return [v.name for v in names
            if not (v.name in params and pm_model[v.name] in pm_model.deterministics)]


def bambi_traced_names(model) -> list[str]:
    """The variables Bambi's ``fit`` traces (:func:`traced_names` of its own PyMC model)."""
    return traced_names(model.backend.model, model)


def chain_seed(seed: int, chains: int) -> int:
    """The seed ``pm.sample(random_seed=seed, nuts_sampler="nutpie")`` hands nutpie: the first
    of the per-chain seeds PyMC spawns from ``seed``."""
    return int(np.random.default_rng(seed).spawn(chains)[0].integers(2**30))


LOW_RANK_MAX_DIM = 200
"""Largest model (sampled parameters) for which ``adaptation = "auto"`` takes nutpie's
low-rank mass matrix. Measured (2026-12-06, ``docs/unit_effects.md``): on the benchmark logit
(45 parameters through the unit levels) low rank needed 0.68x the leapfrog steps of the
diagonal; on a county panel's extended TWFE (413 parameters: 400 unit levels) a low-rank step
cost ~100x a diagonal one and the fit diverged, while the diagonal one took 16 s with none.
Every model of the two studies (29 provinces) is far below the bound."""


def mass_matrix(adaptation: str, n_dim: int) -> str:
    """nutpie's ``adaptation`` for a model of ``n_dim`` parameters: ``"auto"`` resolved by
    :data:`LOW_RANK_MAX_DIM`, an explicit choice kept."""
    if adaptation != "auto":
        return adaptation
    return "low_rank" if n_dim <= LOW_RANK_MAX_DIM else "diag"


def nutpie_options(s: SamplerSettings, n_dim: int) -> dict:
    """``s.nuts_options()`` with the adaptation resolved for a compiled model of ``n_dim``
    parameters (what ``nutpie.sample`` takes)."""
    options = s.nuts_options()
    options["adaptation"] = mass_matrix(options["adaptation"], n_dim)
    return options


def _sample_with_nutpie(pm_model: pm.Model, s: SamplerSettings, *, seed: int,
                        progressbar: bool, what: str, var_names: list[str] | None = None):
    """``pm.sample(nuts_sampler="nutpie")`` step by step (compile, sample, PyMC's labelling of
    the trace), with the wall-clock limit of :func:`sample_nutpie`. The posterior's
    ``mass_matrix`` attribute records the adaptation used."""
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata
    compiled = nutpie.compile_pymc_model(pm_model, var_names=var_names, backend="numba")
    options = nutpie_options(s, compiled.n_dim)
    start = time.time()
    idata = sample_nutpie(compiled, time_limit=s.time_limit, what=what, draws=s.draws,
                          tune=s.tune, chains=s.chains, cores=min(s.chains, s.cores),
                          seed=chain_seed(seed, s.chains), progress_bar=progressbar,
                          save_warmup=False, store_unconstrained=False, **options)
    patch_nutpie_idata(idata, pm_model, sampling_time=time.time() - start)
    idata["posterior"].attrs["mass_matrix"] = (
        f"{options['adaptation']} ({s.adaptation}; {compiled.n_dim} parameters)")
    return idata


def sample_nutpie(compiled, *, time_limit: float | None, what: str = "the model",
                  setting: str = SPEC_LIMIT, **options):
    """``nutpie.sample(compiled, **options)`` stopped with :class:`FitTimeout` after
    ``time_limit`` seconds (``None``/0: no limit; ``setting`` names where to change it).
    nutpie samples in its own threads and this one waits with a timeout, so the limit holds
    off the main thread too (dask workers), unlike SIGALRM."""
    import nutpie
    if not time_limit:
        return nutpie.sample(compiled, **options)
    start = time.monotonic()
    sampler = nutpie.sample(compiled, blocking=False, **options)
    try:
        return sampler.wait(timeout=time_limit)
    except TimeoutError:  # nutpie's wait raises it when the timeout passes first
        sampler.cancel()
        raise _timeout(what, time_limit, time.monotonic() - start, setting) from None
