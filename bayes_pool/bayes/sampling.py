"""One way to run NUTS for every model: the spec's sampler settings, under a wall-clock limit.

Bambi models go through :func:`sample_bambi`, hand-built PyMC models through
:func:`sample_pymc`; both pass the :class:`~bayes_pool.specs.SamplerSettings` straight through
(backend, chains, draws, tuning, ``target_accept``, nutpie's mass-matrix adaptation) and stop a
fit that runs longer than ``sampler.time_limit`` seconds with :class:`FitTimeout`, whose message
says what to try. The limit exists because Bambi + nutpie has stalled on a single seed for many
minutes while other seeds took seconds; a run should say so instead of hanging.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

import pymc as pm

from bayes_pool.errors import BayesPoolError
from bayes_pool.specs import SamplerSettings


class FitTimeout(BayesPoolError):
    """A Bayesian fit ran past its spec's ``sampler.time_limit``."""


@contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise :class:`FitTimeout` inside the block once ``seconds`` of wall time have passed.

    Uses SIGALRM, so it only acts in the main thread (refits on dask workers run without it);
    ``None`` or 0 means no limit. nutpie cancels its chains when an exception reaches it.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    start = time.monotonic()

    def expire(signum, frame):
        raise FitTimeout(
            f"the Bayesian fit of {what} did not finish within {seconds:g} s (it was stopped "
            f"after {time.monotonic() - start:.0f} s). NUTS has been seen to stall on one seed "
            "while others take seconds: try another --seed, or fewer --draws/--tune for a "
            "first look; raise or switch off the limit with sampler.time_limit in the model "
            "spec (0 = none)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _common(s: SamplerSettings, seed: int, progressbar: bool) -> dict:
    return dict(draws=s.draws, tune=s.tune, chains=s.chains, cores=min(s.chains, s.cores),
                random_seed=seed, progressbar=progressbar, nuts=s.nuts_options())


def sample_bambi(model, s: SamplerSettings, *, seed: int, progressbar: bool = False,
                 what: str = "the model"):
    """``model.fit`` of a built Bambi model with the sampler settings ``s``."""
    with time_limit(s.time_limit, what):
        return model.fit(inference_method=s.backend, **_common(s, seed, progressbar))


def sample_pymc(model: pm.Model, s: SamplerSettings, *, seed: int, progressbar: bool = False,
                what: str = "the model"):
    """``pm.sample`` of a PyMC model with the sampler settings ``s``."""
    with model, time_limit(s.time_limit, what):
        return pm.sample(nuts_sampler=s.backend, **_common(s, seed, progressbar))
