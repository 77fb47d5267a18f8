"""The study record: everything the CLI, the API, sensitivity and the report need to know
about a published study, declared once by the study's own package.

Each package under ``bayes_pool/studies/`` declares ``STUDY = Study(...)`` in its
``__init__`` and :mod:`bayes_pool.studies` lists them; generic code reads the record's fields
and never tests what a study module happens to define. The callables are thin and import
their study's heavy modules only when called, so reading the registry stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any

import pandas as pd

from bayes_pool.errors import SpecError


@dataclass(frozen=True)
class Roles:
    """The columns of a study's contract that a generic design reads.

    ``unit`` and ``time`` are set for a panel (DiD) study and None for a cross-section;
    ``family`` is the outcome's (``bernoulli`` for a 0/1 outcome, else ``gaussian``).
    """

    outcome: str
    treatment: str
    unit: str | None = None
    time: str | None = None
    controls: tuple[str, ...] = ()
    family: str = "gaussian"


@dataclass(frozen=True)
class Study:
    """A published study as configuration of the generic core.

    ``schema()`` returns the pandera contract and ``prepare(frame, source=None)`` derives and
    checks a user's canonical frame; ``simulate(seed=..., n=...)`` generates the calibrated
    synthetic data; ``pipeline(frame, *, spec, seed, progress, progressbar, **options)`` runs
    the reanalysis (an :class:`~bayes_pool.workflow.Analysis`, published rows included), with
    ``options`` limited to :attr:`options`. ``synthetic_extras(seed)`` (optional) adds what a
    synthetic run needs beyond the main frame (``{"run_kwargs": ..., "manifest": ...}``);
    ``sensitivity_target(frame, seed=...)`` (optional) builds the benchmark model of
    ``bayes-pool sensitivity`` (a :class:`~bayes_pool.sensitivity.Target`);
    ``robustness(frame, seed=...)`` (optional) refits the frequentist parts whose key
    estimates get breakdown values, for ``bayes-pool robustness`` (an ``Analysis`` whose
    ``.robustness`` holds them). ``published`` is
    the study's ledger of printed numbers; ``labels`` names its tables for the report
    (``{"fig2": "Figure 2 (event study)"}``); ``parts`` are the pipeline's parts in run order.
    """

    id: str
    title: str
    roles: Roles
    schema: Callable[[], Any]
    prepare: Callable[..., pd.DataFrame]
    simulate: Callable[..., Any]
    pipeline: Callable[..., Any]
    published: Traversable
    key_term: str
    default_spec: str | None = None
    parts: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    synthetic_extras: Callable[[int], dict] | None = None
    sensitivity_target: Callable[..., Any] | None = None
    robustness: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"Study({self.id!r}: {self.title})"

    def check_options(self, options, flag: Callable[[str], str] = str) -> None:
        """Raise :class:`SpecError` naming every key of ``options`` that is not one of the
        study's run options (``flag`` spells a key as the caller's user knows it)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(flag(o) for o in self.options) or "none"
            raise SpecError(f"{', '.join(flag(k) for k in unknown)}: not run options of study "
                            f"{self.id!r} (valid: {valid})")

    def check(self, frame: pd.DataFrame) -> None:
        """Check a canonical frame against the study's design before anything is fitted.

        A panel study gets :meth:`~bayes_pool.design.DiDDesign.check` (varying treatment, no
        single-row units, no separation in a logit) with the controls the frame holds; a
        cross-section a treatment that takes both values.
        """
        from bayes_pool.design import DiDDesign, check_varies
        r = self.roles
        if r.unit and r.time:
            controls = tuple(c for c in r.controls if c in frame.columns)
            DiDDesign(outcome=r.outcome, treatment=r.treatment, unit=r.unit, time=r.time,
                      covariates=controls, family=r.family).check(frame)
        elif r.treatment in frame.columns:
            check_varies(frame, r.treatment, "treatment")
