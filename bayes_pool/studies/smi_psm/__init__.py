"""Ma et al. (2023): location of social medical insurance and social integration (CMDS 2017)."""

STUDY = "smi-psm"
TITLE = "Ma et al. (2023) — location of social medical insurance and social integration"
DEFAULT_SPEC = "linear_regression"
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
    """Tables 1-4 and, through the matching workflow, 5-6 (see :mod:`.pipeline`)."""
    from bayes_pool.studies.smi_psm.pipeline import run as _run
    return _run(frame, **kwargs)


def figures(analysis, folder, *, synthetic: bool):
    """Loadings heatmap and the matching figures (see :func:`.pipeline.figures`)."""
    from bayes_pool.studies.smi_psm.pipeline import figures as _figures
    return _figures(analysis, folder, synthetic=synthetic)
