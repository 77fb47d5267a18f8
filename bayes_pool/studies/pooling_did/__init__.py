"""Zhang & Chen (2024): provincial pooling of URRBMI and migrants' self-rated health (CLDS)."""

STUDY = "pooling-did"
TITLE = "Zhang & Chen (2024) — provincial pooling of URRBMI and self-rated health"
DEFAULT_SPEC = "did_logit"
KEY_TERM = "policy"


def simulate(*args, **kwargs):
    """Calibrated synthetic CLDS-like data (see :mod:`.synthetic`)."""
    from bayes_pool.studies.pooling_did.synthetic import simulate as _simulate
    return _simulate(*args, **kwargs)


def schema():
    """The pandera contract of the canonical columns."""
    from bayes_pool.studies.pooling_did.contract import SCHEMA
    return SCHEMA


def run(frame, **kwargs):
    """All analyses implemented so far (see :mod:`.pipeline`)."""
    from bayes_pool.studies.pooling_did.pipeline import run as _run
    return _run(frame, **kwargs)
