"""bayes_pool: Bayesian reanalysis of published health-insurance studies, without R.

Every analysis returns rows of one long estimates table (:mod:`bayes_pool.estimates`):
published numbers, frequentist replications and posterior summaries side by side.

The public API (:mod:`bayes_pool.api`, :mod:`bayes_pool.api_studies`)::

    import bayes_pool as bp
    r = bp.did(df, outcome="y", treatment="d", unit="region", time="wave")
    print(r.summary()); r.tidy(); r.idata; r.diagnostics(); fig, ax = r.plot()

and likewise ``bp.psm``, ``bp.mediate``, ``bp.event_study``, ``bp.staggered`` and, for a
built-in study, ``bp.study(study_id).run()``; ``bp.sensitivity(result)`` refits an analysis's
key model under every prior set; ``bp.how_robust(result_or_run_folder)`` gives the breakdown
values of a result's or a run's key estimates. Models are imported only when a function is
called.
"""

from bayes_pool.api import BACKENDS, did, event_study, mediate, psm, sensitivity, staggered
from bayes_pool.api_studies import Study, how_robust, study
from bayes_pool.errors import InputError, SpecError
from bayes_pool.results import EventStudyResult, Result
from bayes_pool.version import __version__

__all__ = ["BACKENDS", "EventStudyResult", "InputError", "Result", "SpecError", "Study",
           "__version__", "did", "event_study", "how_robust", "mediate", "psm", "sensitivity",
           "staggered", "study"]
