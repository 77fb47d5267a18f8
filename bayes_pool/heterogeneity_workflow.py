"""Heterogeneity of a DiD effect two ways, for a set of two-way splits (Table 6 of Zhang & Chen
2024): the frequentist subgroup TWFE fits with the difference from one stacked model
(:mod:`bayes_pool.freq.heterogeneity`), and the Bayesian separate fits and partially pooled
model (:mod:`bayes_pool.bayes.heterogeneity`).

Examples
--------
A study declares its splits (:class:`bayes_pool.subgroups.Split`) and its table label::

    result = heterogeneity(frame, design, {"income": income_split},
                           spec=load_heterogeneity_spec(), seed=seed)
    rows = result.tidy(study=study_id, table="6")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_pool import estimates
from bayes_pool.bayes import heterogeneity as bayes_het
from bayes_pool.design import DiDDesign
from bayes_pool.errors import SpecError
from bayes_pool.freq import heterogeneity as freq_het
from bayes_pool.subgroups import Split, as_split

log = logging.getLogger(__name__)


@dataclass
class SplitResult:
    """Both backends' fits for one split (either may be None when not run)."""

    name: str
    split: Split
    freq: freq_het.FreqSplit | None = None
    bayes: bayes_het.BayesSplit | None = None


@dataclass
class HeterogeneityResult:
    """All splits; :meth:`tidy` gives the estimates rows, :attr:`posteriors` the InferenceData."""

    design: DiDDesign
    spec: bayes_het.HeterogeneitySpec
    splits: dict[str, SplitResult]

    @property
    def posteriors(self) -> dict:
        out = {}
        for r in self.splits.values():
            if r.bayes is not None:
                out.update(r.bayes.posteriors)
        return out

    def tidy(self, *, study: str, table: str = "heterogeneity") -> pd.DataFrame:
        """Rows of the estimates table for every split, frequentist then Bayesian."""
        parts = []
        for r in self.splits.values():
            if r.freq is not None:
                parts.append(r.freq.tidy(study=study, table=table))
            if r.bayes is not None:
                parts.append(r.bayes.tidy(study=study, table=table, term=self.design.treatment))
        return estimates.concat(*parts)


def heterogeneity(frame: pd.DataFrame, design: DiDDesign, groups: dict[str, Split | str],
                  *, spec: bayes_het.HeterogeneitySpec, seed: int, frequentist: bool = True,
                  separate: bool = True, pooled: bool = True,
                  progressbar: bool = False, progress=None) -> HeterogeneityResult:
    """Subgroup DiD fits and the partially pooled model for each split.

    Parameters
    ----------
    frame
        The data (all rows; each split keeps the rows with a label, then complete cases).
    design
        The DiD design (family ``bernoulli``).
    groups
        Split name (``"income"``) -> :class:`Split`, or a column name whose two values (in
        sorted order: low, high) are the labels.
    spec
        :func:`bayes_pool.bayes.heterogeneity.load_heterogeneity_spec` (the separate Bayesian
        fits use its ordinary spec part).
    seed
        Root seed; each Bayesian fit gets a child seed (``SeedSequence(seed)``).
    frequentist, separate, pooled
        Which fits to run: frequentist subgroup logits (and their stacked difference),
        separate Bayesian subgroup fits, the pooled model.
    progressbar
        PyMC/nutpie progress bars (off by default).
    progress
        Optional ``progress(message)`` callback before each fit.
    """
    if design.family != "bernoulli":
        raise SpecError(f"heterogeneity() fits logits; design family is {design.family!r}")

    def say(message: str) -> None:
        log.info(message)
        if progress:
            progress(message)

    seeds = iter(np.random.SeedSequence(seed).generate_state(4 * len(groups) + 1))
    out = {}
    for name, split in groups.items():
        split = as_split(frame, split)
        res = SplitResult(name=name, split=split)
        if frequentist:
            say(f"{name}: frequentist DiD on {split.low} and {split.high}, stacked difference")
            res.freq = freq_het.fit_split(frame, design, name, split)
        if separate or pooled:
            res.bayes = bayes_het.fit_split(frame, design, name, split, spec, seeds=seeds,
                                            separate=separate, pooled=pooled,
                                            progressbar=progressbar, say=say)
        out[name] = res
    return HeterogeneityResult(design=design, spec=spec, splits=out)
