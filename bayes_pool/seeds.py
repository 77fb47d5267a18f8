"""Child seeds: one independent random stream per named part of a run.

A run has one root seed; each part (a table, a fit, a bootstrap) draws from
``numpy.random.SeedSequence(root)`` spawned by the part's name, so adding, removing or
reordering parts never shifts another part's stream (as ``seed + 40`` offsets did, which also
let two parts of nearby roots share a stream).
"""

from __future__ import annotations

import zlib

import numpy as np


def child_seed(seed: int, name: str) -> int:
    """The seed of part ``name`` under the root ``seed``: a 32-bit integer, the same on every
    machine and Python process (the name is keyed by its CRC-32, not by ``hash``)."""
    key = zlib.crc32(name.encode("utf-8"))
    return int(np.random.SeedSequence(int(seed), spawn_key=(key,)).generate_state(1)[0])
