"""Zhang & Chen (2024): provincial pooling of URRBMI and migrants' self-rated health (CLDS).

:data:`STUDY` is the study's record (:class:`bayes_pool.study_record.Study`); the functions
below are its callables, importing the generator, pipeline and pandera contract only when called.
"""

from importlib import resources

from bayes_pool.study_record import Roles, Study
from bayes_pool.studies.pooling_did.contract import (
    CONTROLS, OUTCOME, STUDY_ID, TIME, TREATMENT, UNIT,
)


def simulate(*args, **kwargs):
    """Calibrated synthetic CLDS-like data (see :mod:`.synthetic`)."""
    from bayes_pool.studies.pooling_did.synthetic import simulate as _simulate
    return _simulate(*args, **kwargs)


def schema():
    """The pandera contract of the canonical columns."""
    from bayes_pool.studies.pooling_did.contract import SCHEMA
    return SCHEMA


def synthetic_extras(seed: int) -> dict:
    """Table 7 adds the 2012 wave: a second synthetic sample with it, sized as Table 7 (1)."""
    from bayes_pool.published import published_value
    from bayes_pool.seeds import child_seed
    n = int(published_value(STUDY_ID, "7", "(1)", TREATMENT, "beta", field="n_obs"))
    waves = (2012, 2014, 2016, 2018)
    seed_2012 = child_seed(seed, "frame_2012")
    data = simulate(seed=seed_2012, n=n, waves=waves)
    return {"run_kwargs": {"frame_2012": data.frame},
            "manifest": {"frame_2012": {"seed": seed_2012, "n": n, "waves": list(waves),
                                        "truth_ame_policy": data.truth.get("ame_policy")}}}


def prepare(frame, source: str | None = None):
    """Derive what the paper derives, then check the contract.

    The CLDS files have no treatment column: as in the paper, ``policy`` is 1 when the
    respondent's hukou province adopted URRBMI provincial pooling (Table 1) in or before the
    survey year. It is derived from ``province`` and ``year`` when absent, and checked
    against the adoption years when present.
    """
    from bayes_pool.studies.pooling_did.contract import policy_indicator, validate
    if TREATMENT not in frame.columns and {UNIT, TIME} <= set(frame.columns):
        frame = frame.assign(**{TREATMENT: policy_indicator(frame[UNIT], frame[TIME])
                                .astype("Int64")})
    return validate(frame, source=source)


def run(frame, **kwargs):
    """All analyses implemented so far (see :mod:`.pipeline`)."""
    from bayes_pool.studies.pooling_did.pipeline import run as _run
    return _run(frame, **kwargs)


def sensitivity_target(frame, *, seed: int = 0):
    """Table 3 (2), the benchmark of ``bayes-pool sensitivity`` (see :mod:`.pipeline`)."""
    from bayes_pool.studies.pooling_did.pipeline import sensitivity_target as _target
    return _target(frame, seed=seed)



def robustness(frame, *, seed: int):
    """The frequentist refits behind ``bayes-pool robustness`` (see :mod:`.pipeline`)."""
    from bayes_pool.studies.pooling_did.pipeline import robustness as _robustness
    return _robustness(frame, seed=seed)


STUDY = Study(
    id=STUDY_ID,
    title="Zhang & Chen (2024) — provincial pooling of URRBMI and self-rated health",
    roles=Roles(outcome=OUTCOME, treatment=TREATMENT, unit=UNIT, time=TIME,
                controls=tuple(CONTROLS), family="bernoulli"),
    schema=schema, prepare=prepare, simulate=simulate, pipeline=run,
    published=resources.files(__name__).joinpath("published.csv"),
    key_term=TREATMENT, default_spec="did_logit",
    parts=("table2", "table3", "mediation", "fig2", "staggered", "table6", "placebo", "table7"),
    options=("parts", "placebo_draws", "workers", "scheduler", "mediation_model"),
    labels={"fig2": "Figure 2 (event study)", "fig3": "Figure 3 (placebo)",
            "text": "Numbers in the text", "abstract": "Numbers in the abstract"},
    synthetic_extras=synthetic_extras, sensitivity_target=sensitivity_target,
    robustness=robustness)
