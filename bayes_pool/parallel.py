"""Fan-out of many independent refits (placebo draws, prior grids) with ``dask.distributed``.

:func:`map_refits` runs ``func(task, shared)`` for every task and returns the results in task
order. Large inputs every task needs (a design matrix, the outcome) go in ``shared``: they are
sent to each worker once, not once per task. With ``workers=1`` everything runs in-process
(tests, debugging); otherwise on a :class:`distributed.LocalCluster` of worker processes sized
to the machine, or on an existing scheduler when ``scheduler=`` is passed or the environment
variable ``DASK_SCHEDULER_ADDRESS`` is set (its workers must have ``bayes_pool`` installed).

Each task runs with BLAS limited to ``blas_threads`` threads (default 1): the parallelism is
across tasks, and a multi-threaded BLAS on small matrices fighting for the same cores can be a
hundred times slower than a single thread.

Randomness is the caller's business: give each task its own seed (e.g. from
``numpy.random.SeedSequence(root).spawn(n)``) so results do not depend on how many workers
ran them or in which order.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
"""Environment variable naming an existing dask scheduler (``tcp://host:8786``)."""


def default_workers() -> int:
    """Number of worker processes for a local cluster: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def map_refits(func: Callable[[Any, Any], Any], tasks: Sequence, *, shared: Any = None,
               workers: int | None = None, scheduler: str | None = None,
               progress: Callable[[int, int], None] | None = None,
               blas_threads: int | None = 1) -> list:
    """Run ``func(task, shared)`` for every task; results in task order.

    Parameters
    ----------
    func
        A module-level (picklable) function of one task and the shared inputs.
    tasks
        Small per-task inputs (a seed, a prior setting ...).
    shared
        Inputs common to every task, sent to each worker once (``Client.scatter``).
    workers
        ``1`` runs in-process; ``None`` sizes a local cluster to the machine
        (:func:`default_workers`); ignored when a scheduler address is given.
    scheduler
        Address of an existing dask scheduler; defaults to ``$DASK_SCHEDULER_ADDRESS``.
    progress
        Called as ``progress(done, total)`` after each finished task (e.g. to advance a bar).
    blas_threads
        BLAS/OpenMP threads inside each task (``threadpoolctl``); ``None`` leaves them alone.

    Returns
    -------
    list
        ``[func(t, shared) for t in tasks]``, whatever ran it.
    """
    tasks = list(tasks)
    total = len(tasks)
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    call = functools.partial(_limited, func, blas_threads)
    if scheduler is None and (workers == 1 or total <= 1):
        out = []
        for i, task in enumerate(tasks, 1):
            out.append(call(task, shared))
            if progress:
                progress(i, total)
        return out
    return _map_dask(call, tasks, shared, workers=workers, scheduler=scheduler, progress=progress)


def _limited(func, blas_threads, task, shared):
    """``func(task, shared)`` with the BLAS thread pools capped."""
    if blas_threads is None:
        return func(task, shared)
    with threadpool_limits(limits=blas_threads):
        return func(task, shared)


def _map_dask(func, tasks, shared, *, workers, scheduler, progress) -> list:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        n = min(workers or default_workers(), len(tasks))
        log.info("starting a local dask cluster with %d worker processes", n)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        log.info("sending %d tasks to the dask scheduler at %s", len(tasks), scheduler)
        client = Client(scheduler)
    try:
        shared_f = client.scatter(shared, broadcast=True) if shared is not None else None
        futures = client.map(func, tasks, shared=shared_f, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        out: list = [None] * len(tasks)
        for done, fut in enumerate(as_completed(futures), 1):
            out[index[fut.key]] = fut.result()
            if progress:
                progress(done, len(tasks))
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
