"""A finished run's frequentist fits redone from its manifest, through the Python API, for
:func:`bayes_pool.api_studies.how_robust` (``bayes-pool robustness RUN_DIR``): a built-in study's
through its record's ``robustness`` refits on its data regenerated (synthetic, the manifest's
seed) or read again; a ``did``/``psm``/``mediate`` run's through :func:`~bayes_pool.api.did`
and its siblings with the roles, labels and seed of its recorded ``invocation``, frequentist
backend only, and the least bootstrap (breakdown values use point estimates only).
"""

from __future__ import annotations

from bayes_pool.api import did, event_study, mediate, psm
from bayes_pool.errors import SpecError


def _study_refit(run):
    """A study run's breakdown refits, on its data regenerated or read again."""
    from bayes_pool import studies
    from bayes_pool.data import load
    record = studies.get(run.manifest.get("study"))
    if record.robustness is None:
        raise SpecError(f"study {record.id!r} declares no robustness analyses")
    if run.synthetic:
        frame = record.simulate(seed=run.seed).frame
    else:
        data = run.args.get("data") or (run.manifest.get("data") or {}).get("path")
        frame = record.prepare(load(data, mapping=run.args.get("mapping")).frame,
                               source=str(data))
    return record.robustness(frame, seed=run.seed)


def _labels(a: dict) -> dict:
    """The roles every generic refit shares, from a run's recorded arguments."""
    from bayes_pool.categorical import parse_reference
    return dict(covariates=_split(a.get("covariates")), categorical=_split(a.get("categorical")),
                reference=parse_reference(a.get("reference") or ()), seed=a.get("seed", 2024),
                backends=("frequentist",))


def _split(text) -> tuple[str, ...]:
    return tuple(c.strip() for c in (text or "").split(",") if c.strip())


def _did_refit(run):
    a = run.args
    roles = dict(outcome=a["outcome"], treatment=a["treatment"], unit=a["unit"],
                 time=a["time_col"], family=a.get("family", "bernoulli"), **_labels(a))
    frame = run.user_frame(roles["covariates"])
    analysis = did(frame, **roles, table=a.get("table") or "did", column=a.get("column")).analysis
    if a.get("event_study"):
        from bayes_pool.seeds import child_seed
        roles["seed"] = child_seed(roles["seed"], "event_study")
        analysis.extend(event_study(frame, **roles, cohort=a["cohort"],
                                    control=a.get("control") or "notyet").analysis)
    return analysis


def _psm_refit(run):
    a = run.args
    labels = _labels(a)
    frame = run.user_frame(labels["covariates"])
    return psm(frame, treatment=a["treatment"], outcome=a["outcome"], **labels,
               exact=_split(a.get("exact")), bootstrap=2, table=a.get("table") or "psm").analysis


def _mediate_refit(run):
    a = run.args
    labels = _labels(a)
    frame = run.user_frame(labels["covariates"])
    return mediate(frame, treatment=a["treatment"], mediator=a["mediator"],
                   outcome=a["outcome"], family=a.get("outcome_family", "bernoulli"),
                   unit=a.get("unit"), time=a.get("time_col"), **labels, bootstrap=0,
                   table=a.get("table"), column=a.get("column")).analysis


_GENERIC_REFITS = {"did": _did_refit, "psm": _psm_refit, "mediate": _mediate_refit}
"""How a generic run's frequentist fits are redone from its recorded arguments."""


def frequentist_refit(run):
    """The frequentist fits of a finished run (a
    :class:`~bayes_pool.robustness_run.FinishedRun`) redone, no MCMC: an
    :class:`~bayes_pool.workflow.Analysis` with the breakdown pieces in ``.robustness``."""
    return (_study_refit if run.command == "run" else _GENERIC_REFITS[run.command])(run)
