"""The Python API over whole studies and run folders: ``bp.study`` (a built-in study's
synthetic data and reanalysis, as ``bayes-pool simulate`` / ``run``) and ``bp.how_robust`` (a
result's or a run's breakdown analyses, as ``bayes-pool robustness``). The analyses of one
data set are :mod:`bayes_pool.api`."""

from __future__ import annotations

import pandas as pd

from bayes_pool.api import _frame, _model_spec, _seed
from bayes_pool.results import Result


class Study:
    """A published study: its synthetic data and its whole reanalysis from Python, as
    ``bayes-pool simulate`` and ``bayes-pool run`` (published rows included). ``record`` is
    the study's declaration (:class:`bayes_pool.study_record.Study`: roles, parts, options ...)."""

    def __init__(self, study_id: str):
        from bayes_pool import studies
        self.record = studies.get(study_id)
        self.id, self.title, self.key_term = study_id, self.record.title, self.record.key_term

    def __repr__(self) -> str:
        return f"<Study {self.id}: {self.title}>"

    def simulate(self, *, seed: int = 2024, **options):
        """The study's calibrated synthetic data (a :class:`~bayes_pool.synthetic.SyntheticData`
        with ``.frame`` and ``.truth``)."""
        return self.record.simulate(seed=seed, **options)

    def run(self, data: pd.DataFrame | None = None, *, seed: int = 2024, spec=None,
            draws: int | None = None, tune: int | None = None, chains: int | None = None,
            progressbar: bool = False, **options) -> Result:
        """The reanalysis: published rows, frequentist replications and posteriors.

        ``data``: the study's survey frame (canonical columns, checked against its contract);
        None generates the synthetic data set of ``seed``, as ``bayes-pool run`` does.
        ``options`` are the study's run options (``record.options``, e.g. ``parts``, a
        subset of ``record.parts``).
        """
        record, seed = self.record, _seed(seed)
        record.check_options(options)
        default = record.default_spec
        model_spec = _model_spec(spec, default, draws, tune, chains) if default or spec else None
        if data is None:
            frame, synthetic = self.simulate(seed=seed).frame, True
            if record.synthetic_extras is not None:
                options = {**record.synthetic_extras(seed)["run_kwargs"], **options}
        else:
            frame, synthetic = record.prepare(_frame(data)), False
        analysis = record.pipeline(frame, spec=model_spec, seed=seed, progressbar=progressbar,
                                   **options)
        return Result(analysis=analysis, title=self.title, synthetic=synthetic,
                      thresholds=None if model_spec is None else model_spec.convergence,
                      shown={"term": (self.key_term,), "quantity": ("ame", "att", "indirect")})


def study(study_id: str) -> Study:
    """The built-in study ``study_id`` (``bayes_pool.studies.STUDIES`` lists them); unknown
    ids raise :class:`~bayes_pool.errors.SpecError` listing the valid ones."""
    return Study(study_id)


def how_robust(run) -> pd.DataFrame:
    """How robust is a run's key estimate to its identifying assumption: one line per key
    estimate and breakdown analysis (Rosenbaum Gamma, E-value, robustness value, mediation
    rho, parallel-trends Mbar), as ``robustness/robustness.csv``.

    ``run`` is a :class:`~bayes_pool.results.Result` (its pieces were computed with the fit;
    nothing is written) or a finished run folder, whose ``robustness/`` folder and report are
    then (re)written, as ``bayes-pool robustness RUN_DIR`` does: the run's frequentist parts
    are refitted on its data (no MCMC) -- a built-in study's regenerated from the manifest's
    seed or read again from its file, a ``did``/``psm``/``mediate`` run's file and roles from
    the manifest's ``invocation`` -- and the parallel-trends breakdown uses the run's stored
    posterior (``idata.nc``). (Not named ``robustness``: :mod:`bayes_pool.robustness` is the
    module of the breakdown numbers themselves.)
    """
    from bayes_pool import robustness_run as rr
    if isinstance(run, Result):
        from bayes_pool.robustness_workflow import resolved
        return rr.table(resolved(run.analysis.robustness), run.analysis.estimates)
    from bayes_pool.run_refits import frequentist_refit
    finished = rr.FinishedRun.read(run)
    analysis = frequentist_refit(finished)
    pieces = rr.with_posteriors(analysis.robustness, analysis.results, finished.posteriors())
    return rr.finish(finished, pieces)


__all__ = ["Study", "how_robust", "study"]
