"""Ma et al. (2023): location of social medical insurance and social integration (CMDS 2017).

:data:`STUDY` is the study's record (:class:`bayes_pool.study_record.Study`); the functions
below are its callables, importing the generator and pipeline only when called.
"""

from importlib import resources

from bayes_pool.study_record import Roles, Study
from bayes_pool.studies.smi_psm.contract import OUTCOME, STUDY_ID, TREATMENT


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
    return validate(frame, schema(), source=source)


def run(frame, **kwargs):
    """Tables 1-4 and, through the matching workflow, 5-6 (see :mod:`.pipeline`)."""
    from bayes_pool.studies.smi_psm.pipeline import run as _run
    return _run(frame, **kwargs)


def figures(analysis, folder, *, synthetic: bool):
    """Loadings heatmap and the matching figures (see :func:`.pipeline.figures`)."""
    from bayes_pool.studies.smi_psm.pipeline import figures as _figures
    return _figures(analysis, folder, synthetic=synthetic)


def sensitivity_target(frame, *, seed: int = 0):
    """Table 4 Model 8, the benchmark of ``bayes-pool sensitivity`` (see :mod:`.pipeline`)."""
    from bayes_pool.studies.smi_psm.pipeline import sensitivity_target as _target
    return _target(frame, seed=seed)



def robustness(frame, *, seed: int):
    """The frequentist refits behind ``bayes-pool robustness`` (see :mod:`.pipeline`)."""
    from bayes_pool.studies.smi_psm.pipeline import robustness as _robustness
    return _robustness(frame, seed=seed)


STUDY = Study(
    id=STUDY_ID,
    title="Ma et al. (2023) — location of social medical insurance and social integration",
    roles=Roles(outcome=OUTCOME, treatment=TREATMENT),
    schema=schema, prepare=prepare, simulate=simulate, pipeline=run,
    published=resources.files(__name__).joinpath("published.csv"),
    key_term=TREATMENT, default_spec="linear_regression",
    sensitivity_target=sensitivity_target,
    robustness=robustness)
