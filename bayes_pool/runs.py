"""Run folders and manifests.

A run writes into ``outputs/<study>/.<run-id>.partial/`` and is renamed to
``outputs/<study>/<run-id>/`` only when everything is written, so an interrupted run never
looks complete and a run never overwrites another.

``outputs/`` is under the current directory (or ``$BAYES_POOL_OUTPUTS``), decided when a run
starts, never inside the installed package: see :func:`outputs_dir`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import signal
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

OUTPUTS_DIR: Path | None = None
"""A fixed outputs folder for this process (tests set it); None: :func:`outputs_dir` decides."""
PACKAGES = ["bayes_pool", "pymc", "pytensor", "bambi", "arviz", "arviz-base", "arviz-stats",
            "nutpie", "numpy", "pandas", "scipy", "statsmodels", "scikit-learn", "pandera",
            "pyreadstat", "matplotlib", "xarray"]


def outputs_dir() -> Path:
    """Where run folders go: :data:`OUTPUTS_DIR` if set, else ``$BAYES_POOL_OUTPUTS``, else
    ``./outputs`` under the current directory; absolute, read at each call."""
    folder = OUTPUTS_DIR or os.environ.get("BAYES_POOL_OUTPUTS") or Path.cwd() / "outputs"
    return Path(folder).absolute()


def new_run_id(seed: int | None = None) -> str:
    """A sortable, unique run id: UTC time, the seed, and a random suffix."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-seed{seed if seed is not None else 'none'}-{uuid.uuid4().hex[:6]}"


class RunInterrupted(BaseException):
    """SIGINT or SIGTERM arrived while a run was writing.

    Not a KeyboardInterrupt on purpose: nutpie answers a KeyboardInterrupt by returning the
    draws it has so far, and the run would then finish on a truncated posterior.
    """


@contextmanager
def _signals_raise(partial: Path):
    """While a run writes: Ctrl-C (SIGINT) raises :class:`RunInterrupted`, whose handler
    removes the partial folder; SIGTERM removes it at once and exits with 143, since an
    exception raised inside compiled code (numba, PyTensor, nutpie) can be swallowed there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise RunInterrupted(f"interrupted by signal {signum}")

    def terminate(signum, frame):
        shutil.rmtree(partial, ignore_errors=True)
        os.write(2, b"terminated: the unfinished run folder was removed\n")
        os._exit(128 + signum)

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, interrupt),
                signal.SIGTERM: signal.signal(signal.SIGTERM, terminate)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def run_folder(study: str, *, out: str | Path | None = None, seed: int | None = None):
    """Yield a fresh partial folder; on success move it to its final name, on failure (an error,
    Ctrl-C or SIGTERM) remove it. A run killed outright (SIGKILL) leaves only the hidden
    ``.<run-id>.partial`` folder, which never looks like a finished run.

    With ``out`` given, the run is written to exactly that folder, which must not exist yet
    or be empty.
    """
    if out is not None:
        final = Path(out)
        if final.exists() and any(final.iterdir()):
            raise FileExistsError(f"{final} exists and is not empty; runs never overwrite")
    else:
        final = outputs_dir() / study / new_run_id(seed)
    partial = final.parent / f".{final.name}.partial"
    try:
        partial.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise FileExistsError(f"another run is writing to {final} now ({partial} exists); "
                              "choose another --out, or remove the .partial folder if that "
                              "run was killed") from None
    try:
        with _signals_raise(partial):
            yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if final.exists():
        final.rmdir()
    partial.rename(final)
    _LAST[study] = final


_LAST: dict[str, Path] = {}


def last_run(study: str) -> Path | None:
    """The folder the latest successful run of ``study`` in this process was moved to."""
    return _LAST.get(study)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_manifest(folder: Path, manifest: dict) -> Path:
    """Write ``manifest.json`` with the package versions and machine added."""
    body = dict(manifest)
    body.setdefault("versions", package_versions())
    body.setdefault("machine", {"platform": platform.platform(), "cpus": os.cpu_count()})
    path = Path(folder) / "manifest.json"
    path.write_text(json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
    return path
