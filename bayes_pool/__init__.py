"""bayes_pool: Bayesian reanalysis of published health-insurance studies, without R.

Every analysis returns rows of one long estimates table (:mod:`bayes_pool.estimates`):
published numbers, frequentist replications and posterior summaries side by side.

The public API (:mod:`bayes_pool.api`)::

    import bayes_pool as bp
    r = bp.did(df, outcome="y", treatment="d", unit="region", time="wave")
    print(r.summary()); r.tidy(); r.idata; r.diagnostics(); fig, ax = r.plot()

and likewise ``bp.psm``, ``bp.mediate``, ``bp.event_study``, ``bp.staggered`` and
``bp.study("pooling-did").run()``. Models are imported only when a function is called.
"""

__version__ = "0.1.0"

from bayes_pool.api import (  # noqa: E402  (after the version, which the CLI reads)
    BACKENDS,
    Study,
    did,
    event_study,
    mediate,
    psm,
    staggered,
    study,
)
from bayes_pool.errors import InputError, SpecError  # noqa: E402
from bayes_pool.results import EventStudyResult, Result  # noqa: E402

__all__ = ["BACKENDS", "EventStudyResult", "InputError", "Result", "SpecError", "Study",
           "__version__", "did", "event_study", "mediate", "psm", "staggered", "study"]
