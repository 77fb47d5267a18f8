"""Fan-out of many independent refits (placebo draws, prior grids) with ``dask.distributed``.

:func:`map_refits` runs ``func(task, shared)`` for every task and returns the results in task
order. Large inputs every task needs (a design matrix, the outcome) go in ``shared``: they are
sent to each worker once, not once per task. With ``workers=1`` everything runs in-process
(tests, debugging); otherwise on a :class:`distributed.LocalCluster` of worker processes sized
to the machine (:func:`default_workers`), or on an existing scheduler when ``scheduler=`` is
passed or the environment variable ``DASK_SCHEDULER_ADDRESS`` is set (its workers must have
``bayes_pool`` installed).

Long loops survive interruption: with a :class:`~bayes_pool.checkpoint.Checkpoint`, every
result is written to disk the moment it arrives, and a restarted loop runs only the tasks not
yet there. A worker process that dies (killed, out of memory) loses nothing either: the dask
scheduler re-runs the tasks it held on the surviving or restarted workers (up to
``distributed.scheduler.allowed-failures`` times per task), and each task's result is kept
once, by its index.

Each task runs with BLAS limited to ``blas_threads`` threads (default 1): the parallelism is
across tasks, and a multi-threaded BLAS on small matrices fighting for the same cores can be a
hundred times slower than a single thread (and can change the last bits of a result).

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

from threadpoolctl import ThreadpoolController

from bayes_pool.checkpoint import Checkpoint

log = logging.getLogger(__name__)

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
"""Environment variable naming an existing dask scheduler (``tcp://host:8786``)."""

CLOSE_TIMEOUT = 60
"""Seconds to wait for the dask client and a local cluster to shut down."""

_CONTROLLER: ThreadpoolController | None = None
"""One per process: building it scans the loaded libraries (milliseconds), limiting is cheap."""


def default_workers() -> int:
    """Number of worker processes for a local cluster: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_scheduler(scheduler: str | None) -> str | None:
    """The scheduler address to use: ``scheduler``, else ``$DASK_SCHEDULER_ADDRESS``, else None."""
    return scheduler or os.environ.get(SCHEDULER_ENV) or None


def map_refits(func: Callable[[Any, Any], Any], tasks: Sequence, *, shared: Any = None,
               workers: int | None = None, scheduler: str | None = None,
               progress: Callable[[int, int], None] | None = None,
               blas_threads: int | None = 1, checkpoint: Checkpoint | None = None) -> list:
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
        Called as ``progress(done, total)`` after each finished task (e.g. to advance a bar);
        tasks read back from the checkpoint count as done.
    blas_threads
        BLAS/OpenMP threads inside each task (``threadpoolctl``); ``None`` leaves them alone.
    checkpoint
        Where finished results are written as they arrive and read back on a restart; the
        task at position ``i`` is stored under index ``i``, so the task list of a restarted
        loop must be the same (results must be JSON values, see :mod:`bayes_pool.checkpoint`).

    Returns
    -------
    list
        ``[func(t, shared) for t in tasks]``, whatever ran it.
    """
    tasks = list(tasks)
    total = len(tasks)
    scheduler = resolve_scheduler(scheduler)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    out: list = [None] * total
    done = {i: r for i, r in checkpoint.done().items() if i < total} if checkpoint else {}
    for i, r in done.items():
        out[i] = r
    todo = [i for i in range(total) if i not in done]
    if done:
        log.info("resuming: %d of %d tasks read from %s", len(done), total, checkpoint.folder)
        if progress:
            progress(len(done), total)
    if not todo:
        return out

    def finish(i, result, count):
        if checkpoint is not None:
            # what a resumed loop would read back, so resumed and fresh runs agree exactly
            result = checkpoint.save(i, result)
        out[i] = result
        if progress:
            progress(count, total)

    call = functools.partial(_limited, func, blas_threads)
    if scheduler is None and (workers == 1 or len(todo) <= 1):
        for count, i in enumerate(todo, len(done) + 1):
            finish(i, call(tasks[i], shared), count)
        return out
    _map_dask(call, tasks, todo, shared, workers=workers, scheduler=scheduler,
              finish=lambda i, r, count: finish(i, r, len(done) + count))
    return out


def _limited(func, blas_threads, task, shared):
    """``func(task, shared)`` with the BLAS thread pools capped."""
    global _CONTROLLER
    if blas_threads is None:
        return func(task, shared)
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=blas_threads):
        return func(task, shared)


def _worker_environ() -> dict:
    """Environment of local worker processes: dask's defaults (one BLAS thread) but without
    ``MALLOC_TRIM_THRESHOLD_``, which turns off glibc's adaptive mmap threshold so every
    temporary array of a refit (a few MB) is mmap-ed and page-faulted anew: twice the CPU."""
    import dask
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def _map_dask(func, tasks, todo, shared, *, workers, scheduler, finish) -> None:
    import dask
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        n = min(workers or default_workers(), len(todo))
        log.info("starting a local dask cluster with %d worker processes", n)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
    else:
        log.info("sending %d tasks to the dask scheduler at %s", len(todo), scheduler)
        client = Client(scheduler)
    try:
        shared_f = client.scatter(shared, broadcast=True) if shared is not None else None
        futures = client.map(func, [tasks[i] for i in todo], shared=shared_f, pure=False)
        index = {f.key: i for f, i in zip(futures, todo)}
        for count, fut in enumerate(as_completed(futures), 1):
            finish(index[fut.key], fut.result(), count)
            fut.release()
    finally:
        _close(client, cluster)


def _close(client, cluster) -> None:
    """Shut the client and a local cluster down; a slow shutdown (a loaded machine) is logged,
    never allowed to lose results that have already arrived."""
    for thing in (client, cluster):
        if thing is None:
            continue
        try:
            thing.close(timeout=CLOSE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 -- results are in; shutdown is best effort
            log.warning("closing the dask %s failed (%s: %s); its processes exit with this one",
                        type(thing).__name__, type(exc).__name__, exc)
