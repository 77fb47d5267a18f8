"""The studies, registered in one place: each package declares its record
(:class:`bayes_pool.study_record.Study`) as ``STUDY`` and is listed here; everything else
reads the record from :data:`STUDIES` or :func:`get`. A study that is configuration only
ships a study file (:mod:`bayes_pool.study_file`) listed in :data:`STUDY_FILES`."""

from __future__ import annotations

from importlib import resources

from bayes_pool.errors import SpecError
from bayes_pool.study_record import Study
from bayes_pool.studies.pooling_did import STUDY as _POOLING_DID
from bayes_pool.studies.smi_psm import STUDY as _SMI_PSM

STUDIES: dict[str, Study] = {s.id: s for s in (_POOLING_DID, _SMI_PSM)}
"""Every built-in study by id, in the order the documentation lists them."""

STUDY_FILES = {"meyer-injury": resources.files(__name__).joinpath("meyer_injury", "study.toml")}
"""Shipped study files by id: ``bayes-pool run meyer-injury`` runs the file."""


def get(study: str) -> Study:
    """The record of study ``study``; an unknown id raises :class:`SpecError` listing the
    valid ones."""
    try:
        return STUDIES[study]
    except (KeyError, TypeError):
        raise SpecError(f"unknown study {study!r}; valid: {sorted(STUDIES)}") from None


__all__ = ["STUDIES", "STUDY_FILES", "Study", "get"]
