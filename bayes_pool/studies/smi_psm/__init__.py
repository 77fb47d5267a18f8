"""Ma et al. (2023): location of social medical insurance and social integration (CMDS 2017)."""

from bayes_pool.errors import BayesPoolError

STUDY = "smi-psm"
TITLE = "Ma et al. (2023) — location of social medical insurance and social integration"
DEFAULT_SPEC = None
KEY_TERM = "host_city_smi"


def simulate(*args, **kwargs):
    """Calibrated synthetic CMDS-like data (see :mod:`.synthetic`)."""
    from bayes_pool.studies.smi_psm.synthetic import simulate as _simulate
    return _simulate(*args, **kwargs)


def schema():
    """The pandera contract of the canonical columns."""
    from bayes_pool.studies.smi_psm.contract import SCHEMA
    return SCHEMA


def prepare(frame, source: str | None = None):
    """Check the contract (nothing to derive for this study)."""
    from bayes_pool.data.validate import validate
    from bayes_pool.studies.smi_psm.contract import SCHEMA
    return validate(frame, SCHEMA, source=source)


def run(frame, **kwargs):
    """Not yet: the index, ANOVA, OLS and matching analyses are the subject of a later issue."""
    raise BayesPoolError("the analyses of smi-psm (Tables 2-6 of Ma et al. 2023) are not "
                         "implemented yet; `bayes-pool simulate smi-psm` and the published "
                         "numbers (bayes_pool.published.load_published('smi-psm')) are available")
