"""Which analysis makes which table of Zhang & Chen (2024).

Table 3: TWFE DiD logit of self-rated health on the policy, without (column 1, all rows) and
with the controls (column 2, complete cases), province and year effects, AME of the policy.
"""

from __future__ import annotations

from bayes_pool.design import DiDDesign
from bayes_pool.published import load_published
from bayes_pool.specs import ModelSpec
from bayes_pool.studies.pooling_did import STUDY
from bayes_pool.studies.pooling_did.contract import CONTROLS, OUTCOME, TIME, TREATMENT, UNIT
from bayes_pool.workflow import Analysis, analyse_did

TABLE3_COLUMNS: dict[str, tuple[str, ...]] = {"(1)": (), "(2)": tuple(CONTROLS)}


def table3_design(column: str) -> DiDDesign:
    """The design of Table 3's column ``(1)`` (no controls) or ``(2)`` (with controls)."""
    return DiDDesign(outcome=OUTCOME, treatment=TREATMENT, unit=UNIT, time=TIME,
                     covariates=TABLE3_COLUMNS[column], family="bernoulli")


def run(frame, *, spec: ModelSpec, seed: int, progress=None, progressbar: bool = False,
        columns: tuple[str, ...] = ("(1)", "(2)")) -> Analysis:
    """Published rows plus Table 3 re-estimated frequentist and Bayesian, column by column."""
    analysis = Analysis(estimates=load_published(STUDY))
    for i, column in enumerate(columns):
        if progress:
            progress(f"Table 3 column {column}: frequentist logit and Bayesian fit "
                     f"({spec.sampler.chains} chains x {spec.sampler.draws} draws)")
        analysis.extend(analyse_did(frame, table3_design(column), spec, seed=seed + i,
                                    study=STUDY, table="3", column=column,
                                    progressbar=progressbar))
    return analysis
