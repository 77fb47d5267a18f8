"""The studies: each is configuration of the generic core (contract, generator, published
numbers, and a pipeline that says which analysis makes which table)."""

from __future__ import annotations

import importlib
from types import ModuleType

STUDIES: dict[str, str] = {
    "pooling-did": "bayes_pool.studies.pooling_did",
    "smi-psm": "bayes_pool.studies.smi_psm",
}


def get(study: str) -> ModuleType:
    """The study's package; unknown ids raise ``ValueError`` listing the valid ones."""
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; valid: {sorted(STUDIES)}")
    return importlib.import_module(STUDIES[study])
