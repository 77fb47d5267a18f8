"""One way to run NUTS for every model: the spec's sampler settings, under a wall-clock limit.

Bambi models go through :func:`sample_bambi`, hand-built PyMC models through
:func:`sample_pymc`; both pass the :class:`~bayes_pool.specs.SamplerSettings` straight through
(backend, chains, draws, tuning, ``target_accept``, nutpie's mass-matrix adaptation) and stop a
fit that runs longer than ``sampler.time_limit`` seconds with :class:`FitTimeout`, whose message
says what to try. The limit exists because Bambi + nutpie has stalled on a single seed for many
minutes while other seeds took seconds; a run should say so instead of hanging. Refits that
call nutpie on a compiled model (simulation-based calibration, on dask workers) go through
:func:`sample_nutpie`, whose limit works in any thread.
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


SPEC_LIMIT = "sampler.time_limit in the model spec"


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

    Uses SIGALRM, so it only acts in the main thread (refits on dask workers run without it);
    ``None`` or 0 means no limit. nutpie cancels its chains when an exception reaches it.
    Limits nest: inside another limit, whichever ends first stops the block with its own
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
                 what: str = "the model"):
    """``model.fit`` of a built Bambi model with the sampler settings ``s``."""
    with time_limit(s.time_limit, what):
        return model.fit(inference_method=s.backend, **_common(s, seed, progressbar))


def sample_pymc(model: pm.Model, s: SamplerSettings, *, seed: int, progressbar: bool = False,
                what: str = "the model"):
    """``pm.sample`` of a PyMC model with the sampler settings ``s``."""
    with model, time_limit(s.time_limit, what):
        return pm.sample(nuts_sampler=s.backend, **_common(s, seed, progressbar))


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
