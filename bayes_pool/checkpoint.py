"""Finished refits on disk, so a long refit loop that is interrupted resumes where it stopped.

A :class:`Checkpoint` is a folder holding one small JSON file per finished task
(``task-000123.json``), written atomically (temporary file, then ``os.replace``) the moment the
task's result reaches the client. A restarted loop reads what is there and runs only the
missing tasks, so it ends with exactly one result per task and redoes none.

The folder is keyed (:func:`key`) by everything that decides the results: a fingerprint of the
data, the root seed, the settings, the name and *source code* of the function computing a task
and the package version. A changed input or a changed algorithm gives a new key, never a stale
result. Keep the folder outside a run's ``.partial`` folder, which an interrupted run deletes:
:func:`refits_dir` gives ``outputs/<study>/.refits/``.

Results must be JSON values (dicts of numbers, strings, booleans, ``None``); NumPy scalars are
converted. JSON writes floats by their shortest round-tripping repr, so a result read back is
bit-identical to the one written.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
"""Bump when the file layout changes; part of every key."""


def refits_dir(study: str, outputs: str | Path | None = None) -> Path:
    """``<outputs>/<study>/.refits``: where a study's refit checkpoints live (default outputs
    folder: :func:`bayes_pool.runs.outputs_dir`, read at call time)."""
    if outputs is None:
        from bayes_pool import runs
        outputs = runs.outputs_dir()
    return Path(outputs) / study / ".refits"


def fingerprint_arrays(*arrays) -> str:
    """sha256 of arrays' dtypes, shapes and bytes (object arrays by their string values)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        if a.dtype == object:
            a = np.asarray([str(v) for v in a.ravel()], dtype=str).reshape(a.shape)
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def key(func: Callable, *, data: str, seed: int, settings: dict) -> str:
    """Checkpoint key: sha256 (first 16 hex) of data fingerprint, seed, settings, the task
    function's qualified name and module source, and the package version."""
    from bayes_pool.version import __version__
    module = inspect.getmodule(func)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        source = ""
    body = json.dumps({"format": FORMAT, "data": data, "seed": seed, "settings": settings,
                       "func": f"{func.__module__}.{func.__qualname__}",
                       "source": hashlib.sha256(source.encode()).hexdigest(),
                       "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class Checkpoint:
    """One folder of finished task results, by task index."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, index: int) -> Path:
        return self.folder / f"task-{int(index):06d}.json"

    def done(self) -> dict[int, Any]:
        """Finished results by task index (unreadable files, e.g. from a crash mid-write of a
        foreign tool, are ignored and recomputed)."""
        out = {}
        for path in sorted(self.folder.glob("task-*.json")):
            try:
                out[int(path.stem.split("-")[1])] = json.loads(path.read_text())
            except (ValueError, OSError):
                continue
        return out

    def save(self, index: int, result: Any) -> Any:
        """Write one result atomically; return it as it will be read back."""
        text = json.dumps(_plain(result), allow_nan=True)  # key order kept
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, self._path(index))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return json.loads(text)

    def __len__(self) -> int:
        return len(list(self.folder.glob("task-*.json")))


def _plain(value):
    """NumPy scalars and arrays to JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
