"""Zhang & Chen (2024): provincial pooling of URRBMI and migrants' self-rated health (CLDS)."""

STUDY = "pooling-did"
TITLE = "Zhang & Chen (2024) — provincial pooling of URRBMI and self-rated health"
DEFAULT_SPEC = "did_logit"
KEY_TERM = "policy"
RUN_OPTIONS = ("parts", "placebo_draws", "workers", "scheduler", "mediation_model")
"""Options of `bayes-pool run pooling-did` beyond data, seed and spec (see :func:`run`)."""


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
    n = int(published_value(STUDY, "7", "(1)", "policy", "beta", field="n_obs"))
    waves = (2012, 2014, 2016, 2018)
    data = simulate(seed=seed + 1, n=n, waves=waves)
    return {"run_kwargs": {"frame_2012": data.frame},
            "manifest": {"frame_2012": {"seed": seed + 1, "n": n, "waves": list(waves),
                                        "truth_ame_policy": data.truth.get("ame_policy")}}}


def prepare(frame, source: str | None = None):
    """Derive what the paper derives, then check the contract.

    The CLDS files have no treatment column: as in the paper, ``policy`` is 1 when the
    respondent's hukou province adopted URRBMI provincial pooling (Table 1) in or before the
    survey year. It is derived from ``province`` and ``year`` when absent, and checked
    against the adoption years when present.
    """
    from bayes_pool.studies.pooling_did.contract import TREATMENT, policy_indicator, validate
    if TREATMENT not in frame.columns and {"province", "year"} <= set(frame.columns):
        frame = frame.assign(**{TREATMENT: policy_indicator(frame["province"], frame["year"])
                                .astype("Int64")})
    return validate(frame, source=source)


def run(frame, **kwargs):
    """All analyses implemented so far (see :mod:`.pipeline`)."""
    from bayes_pool.studies.pooling_did.pipeline import run as _run
    return _run(frame, **kwargs)
