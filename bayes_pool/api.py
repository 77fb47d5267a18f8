"""The public Python API: one function per analysis, a DataFrame and column names in, a
:class:`~bayes_pool.results.Result` out.

>>> import bayes_pool as bp
>>> r = bp.did(df, outcome="y", treatment="d", unit="region", time="wave")  # doctest: +SKIP
>>> print(r.summary()); r.tidy(); r.plot(); r.diagnostics()                 # doctest: +SKIP

Every function takes the same argument names (``outcome``, ``treatment``, ``unit``, ``time``,
``covariates``, ``family``, ``categorical``, ``reference``, ``spec``, ``seed``, ``backends``,
``draws``/``tune``/``chains``) and calls the same workflow function, with the same labels and
seeds, as the matching ``bayes-pool`` command, so ``.tidy()`` holds the rows that command
writes to ``estimates.csv``. Nothing is written to disk. Bad data raise
:class:`~bayes_pool.errors.InputError`, bad options :class:`~bayes_pool.errors.SpecError`.
"""

from __future__ import annotations

from collections.abc import Sequence
import pandas as pd

from bayes_pool.errors import InputError, SpecError
from bayes_pool.published import read_published
from bayes_pool.results import EventStudyResult, Result
from bayes_pool.sensitivity_runs import sensitivity  # bp.sensitivity: a run's prior sensitivity

BACKENDS: tuple[str, ...] = ("frequentist", "bayesian")
"""The two ways every analysis fits; ``backends=`` chooses among them."""

DID_SPECS = {"bernoulli": "did_logit", "gaussian": "did_linear", "t": "did_t"}
"""The DiD spec of each family (``models/<name>.toml``), as ``bayes-pool did`` uses; ``t``
is a Student-t likelihood on a ``gaussian`` design (the frequentist side is OLS)."""

Columns = str | Sequence[str]


def _frame(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}; read "
                         "a file first (bayes_pool.data.load(path).frame reads .csv, .dta, "
                         ".sav and .parquet with their value labels)")
    return data


def _names(value: Columns | None, arg: str) -> tuple[str, ...]:
    """Column names given as one name or a sequence of names."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not all(isinstance(v, str) for v in value):
        raise InputError(f"{arg} must be column names (str), got {list(value)!r}")
    return tuple(value)


def _backends(backends) -> tuple[bool, bool]:
    """(keep frequentist rows, fit the Bayesian model) from ``backends``."""
    chosen = (backends,) if isinstance(backends, str) else tuple(backends)
    bad = sorted(set(chosen) - set(BACKENDS))
    if bad or not chosen:
        raise SpecError(f"backends must be a non-empty subset of {list(BACKENDS)}, got "
                        f"{list(chosen)!r}")
    return "frequentist" in chosen, "bayesian" in chosen


def _family(family: str) -> str:
    if family not in DID_SPECS:
        raise SpecError(f"family must be one of {sorted(DID_SPECS)}, got {family!r}")
    return family


def _unit_effects(value: str | None) -> str | None:
    from bayes_pool.mundlak import UNIT_EFFECTS
    if value is not None and value not in UNIT_EFFECTS:
        raise SpecError(f"unit_effects must be one of {list(UNIT_EFFECTS)}, got {value!r}")
    return value


def _sampler(spec, draws, tune, chains):
    """``spec`` with the sampler settings given (None: the spec's own)."""
    changes = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items()
               if v is not None}
    for name, value in changes.items():
        least = 0 if name == "tune" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise SpecError(f"{name} must be an integer >= {least}, got {value!r}")
    return spec.with_sampler(**changes) if changes else spec


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"seed must be an integer >= 0, got {seed!r}")
    return seed


def _model_spec(spec, default: str, draws, tune, chains):
    """A ModelSpec from a spec, a name in ``models/`` or a TOML path (None: ``default``)."""
    from bayes_pool.specs import ModelSpec, load_spec
    if not isinstance(spec, ModelSpec):
        spec = load_spec(default if spec is None else spec)
    return _sampler(spec, draws, tune, chains)


def _result(analysis, keep_frequentist: bool, cls=Result, **kwargs) -> Result:
    """The result, without the frequentist rows when ``backends`` left them out (the
    frequentist fit still runs: the workflows prepare and check the sample with it)."""
    if not keep_frequentist:
        est = analysis.estimates
        analysis.estimates = est[est["source"] != "frequentist"].reset_index(drop=True)
    return cls(analysis=analysis, **kwargs)


def _attach(analysis, rows: pd.DataFrame | None, published) -> None:
    """The ledger ``rows`` (read before fitting) before the analysis's rows, with its facts."""
    if published:
        from bayes_pool.published import with_ledger
        analysis.estimates, analysis.facts["published"] = with_ledger(analysis.estimates, rows,
                                                                      published)


def _remember(analysis, command: str, frame: pd.DataFrame, **args) -> None:
    """Keep the call (not written to disk) for :func:`sensitivity` on the result; ``args``
    by the names of the command's invocation record (``time_col``, ``outcome_family``)."""
    analysis.results["call"] = {"command": command, "frame": frame, "args": args}


def did(data: pd.DataFrame, *, outcome: str, treatment: str, unit: str, time: str,
        covariates: Columns = (), family: str = "bernoulli", categorical: Columns = (),
        reference: dict[str, str] | None = None, spec=None, seed: int = 2024,
        backends: Sequence[str] = BACKENDS, draws: int | None = None, tune: int | None = None,
        chains: int | None = None, approx: str | None = None, table: str = "did",
        column: str | None = None, published=None, progressbar: bool = False,
        vcov: str = "cluster", cluster: str | None = None,
        unit_effects: str | None = None) -> Result:
    """Two-way difference-in-differences, frequentist and Bayesian, as ``bayes-pool did``.

    Frequentist: unit and time fixed effects, SEs clustered by unit (logit: β and the AME
    by the delta method). Bayesian: unit intercepts partially pooled around the unit means of
    the regressors (correlated random effects), time effects, priors from ``spec``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation.
    outcome, treatment, unit, time : str
        Column roles; ``treatment`` is 0/1 and switches on at adoption.
    covariates : str or sequence of str
        Controls. Text, pandas categorical and (with ``categorical``) numeric ones enter as
        0/1 indicators; ``reference`` maps a column to its reference level (default: the most
        frequent).
    family : {"bernoulli", "gaussian", "t"}
        Logit for a 0/1 outcome, linear otherwise; ``t``: linear with a Student-t likelihood
        in the Bayesian model (heavy-tailed outcomes; the frequentist fit stays OLS).
    spec : ModelSpec, str or Path, optional
        Bayesian spec (default ``did_logit``, ``did_linear`` or ``did_t``); ``draws``,
        ``tune`` and ``chains`` override its sampler.
    vcov : {"cluster", "iid", "hc1"}
        Frequentist SEs with Stata's small-sample conventions: clustered (by ``cluster``,
        default the unit), ``regress``/``logit``'s model-based, or ``regress, robust``
        (``logit, vce(robust)``). A 2x2 (two groups) needs ``iid`` or ``hc1``.
    unit_effects : {"correlated", "exchangeable", "fixed"}, optional
        Overrides the spec's: ``fixed`` gives each unit a dummy (not pooled), what a design
        with fewer than 5 units needs.
    seed : int
        Root seed (the CLI's default).
    backends : sequence of {"frequentist", "bayesian"}
        Which rows to return; without ``"bayesian"`` no model is sampled.
    approx : {"laplace"}, optional
        The Laplace approximation instead of NUTS (logit only).
    table, column : str
        Labels of the rows (default ``did`` and the family).
    published : str or Path, optional
        A ledger CSV of the paper's numbers (the columns of ``studies/*/published.csv``): its
        rows join the table (``source="published"``) and are compared with the rows of the
        same table, column, term and quantity; ``facts["published"]["unanswered"]`` lists
        the rows no fit answers.
    """
    from bayes_pool.design import DiDDesign
    from bayes_pool.freq.ols import check_vcov
    from bayes_pool.specs import check_approx, design_family
    from bayes_pool.workflow import analyse_did
    frame, (keep, bayesian) = _frame(data), _backends(backends)
    check_approx(approx, _family(family))
    ledger = read_published(published, study="did") if published else None
    model_spec = _model_spec(spec, DID_SPECS[family], draws, tune, chains).with_unit_effects(
        _unit_effects(unit_effects))
    if approx and model_spec.unit_effects == "fixed":
        raise SpecError("approx='laplace' approximates partially pooled units; use NUTS with "
                        "unit_effects='fixed'")
    design = DiDDesign(outcome=outcome, treatment=treatment, unit=unit, time=time,
                       covariates=_names(covariates, "covariates"), family=design_family(family),
                       categorical=_names(categorical, "categorical"), reference=reference or {},
                       cluster=cluster)
    analysis = analyse_did(frame, design, model_spec, seed=_seed(seed), study="did", table=table,
                           column=column or family, bayesian=bayesian, approx=approx,
                           progressbar=progressbar, vcov=check_vcov(vcov))
    _attach(analysis, ledger, published)
    _remember(analysis, "did", frame, outcome=outcome, treatment=treatment, unit=unit,
              time_col=time, covariates=design.covariates, family=family,
              categorical=design.categorical, reference=reference or {}, spec=model_spec,
              seed=seed, table=table, column=column, published=published, vcov=vcov,
              cluster=cluster, unit_effects=model_spec.unit_effects)
    return _result(analysis, keep, title=f"DiD: {treatment} on {outcome} ({family})",
                   thresholds=model_spec.convergence,
                   shown={"term": (treatment,), "quantity": ("beta", "ame")})


def _staggered_args(data, outcome, treatment, unit, time, cohort, covariates, family,
                    categorical, reference, spec, draws, tune, chains, control, backends,
                    vcov="cluster"):
    """The keyword arguments :func:`event_study` and :func:`staggered` pass to their workflow
    function, checked, and whether to keep the frequentist rows."""
    from typing import get_args

    from bayes_pool.staggered_workflow import Control
    keep, bayesian = _backends(backends)
    if control not in get_args(Control):
        raise SpecError(f"control must be one of {sorted(get_args(Control))}, got {control!r}")
    from bayes_pool.freq.ols import check_vcov
    from bayes_pool.specs import require_pooled
    if _family(family) == "t":
        raise SpecError("family \"t\" (a Student-t likelihood) is available for the plain "
                        "DiD only, not for the staggered DiD or the event study")
    model_spec = _model_spec(spec, DID_SPECS[family], draws, tune, chains)
    require_pooled(model_spec, "the staggered DiD or the event study")
    return keep, dict(
        frame=_frame(data), outcome=outcome, treatment=treatment, unit=unit, time=time,
        cohort=cohort, covariates=_names(covariates, "covariates"), family=family,
        categorical=_names(categorical, "categorical"), reference=reference or None,
        spec=model_spec, bayesian=bayesian, control=control, study="did",
        cov_type=check_vcov(vcov))


def event_study(data: pd.DataFrame, *, outcome: str, treatment: str, unit: str, time: str,
                cohort: str, covariates: Columns = (), family: str = "bernoulli",
                categorical: Columns = (), reference: dict[str, str] | None = None, spec=None,
                seed: int = 2024, backends: Sequence[str] = BACKENDS,
                draws: int | None = None, tune: int | None = None, chains: int | None = None,
                control: str = "notyet", window: tuple[int, int] = (-2, 4),
                period_length: int | None = None, progressbar: bool = False,
                vcov: str = "cluster") -> EventStudyResult:
    """Event study: the effect by event time (periods since adoption), frequentist TWFE and
    Bayesian, as ``bayes-pool did --event-study`` (table ``event_study``, columns
    ``event_time_<k>``).

    ``cohort`` holds each unit's first treated period (0 or empty: never treated);
    ``control`` is ``"notyet"`` (lags only, as R ``etwfe``) or ``"never"`` (leads and lags);
    ``window`` bins the event times; ``vcov`` as :func:`did` (clusters: the unit). The other
    arguments are those of :func:`did`.
    """
    from bayes_pool.staggered_workflow import analyse_event_study
    keep, kwargs = _staggered_args(data, outcome, treatment, unit, time, cohort, covariates,
                                   family, categorical, reference, spec, draws, tune, chains,
                                   control, backends, vcov)
    analysis = analyse_event_study(seed=_seed(seed), window=tuple(window),
                                   period_length=period_length, progressbar=progressbar,
                                   **kwargs)
    return _result(analysis, keep, EventStudyResult,
                   title=f"Event study: {treatment} on {outcome} ({family})",
                   thresholds=kwargs["spec"].convergence, shown={"table": ("event_study",)},
                   reference=analysis.facts["event_study"]["reference"])


def staggered(data: pd.DataFrame, *, outcome: str, treatment: str, unit: str, time: str,
              cohort: str, covariates: Columns = (), family: str = "bernoulli",
              categorical: Columns = (), reference: dict[str, str] | None = None, spec=None,
              seed: int = 2024, backends: Sequence[str] = BACKENDS, draws: int | None = None,
              tune: int | None = None, chains: int | None = None, control: str = "notyet",
              progressbar: bool = False, vcov: str = "cluster") -> Result:
    """Staggered-robust DiD: Wooldridge's extended TWFE (ATT overall, column ``etwfe``, and
    per cohort x period, columns ``g<g>_t<t>``) beside the TWFE benchmark (``twfe``), as
    ``bayes-pool did --staggered`` (table ``staggered``). Arguments as :func:`event_study`;
    :meth:`~Result.plot` and :meth:`~Result.summary` show the overall ATTs by default
    (``column=None`` for the cells too)."""
    from bayes_pool.staggered_workflow import analyse_staggered
    keep, kwargs = _staggered_args(data, outcome, treatment, unit, time, cohort, covariates,
                                   family, categorical, reference, spec, draws, tune, chains,
                                   control, backends, vcov)
    analysis = analyse_staggered(seed=_seed(seed), progressbar=progressbar, **kwargs)
    return _result(analysis, keep, title=f"Staggered DiD: {treatment} on {outcome} ({family})",
                   thresholds=kwargs["spec"].convergence,
                   shown={"column": ("etwfe", "twfe")})


def psm(data: pd.DataFrame, *, treatment: str, outcome: str, covariates: Columns,
        categorical: Columns = (), reference: dict[str, str] | None = None,
        exact: Columns = (), spec=None, seed: int = 2023, backends: Sequence[str] = BACKENDS,
        draws: int | None = None, tune: int | None = None, chains: int | None = None,
        bootstrap: int = 200, table: str = "psm", published=None,
        progressbar: bool = False) -> Result:
    """Propensity-score matching (k-NN k=4 caliper 0.02, radius 0.01, kernel; ``exact``:
    also k-NN within exact cells) with balance, and the Bayesian propensity, IPW, doubly
    robust and regression ATTs, as ``bayes-pool psm``.

    ATT rows are in table ``table`` (shown by :meth:`~Result.summary` and
    :meth:`~Result.plot`), balance rows in ``<table>_balance``
    (``r.summary(table="psm_balance")``). ``spec`` is the propensity
    model's (default ``propensity_logit``); ``bootstrap`` the replicates of the radius and
    kernel SEs; ``seed`` the root seed (the CLI's default); ``published`` a ledger CSV
    compared with the ATT rows as in :func:`did`. Other arguments as :func:`did`.
    """
    from bayes_pool.psm_workflow import analyse_psm
    frame, (keep, bayesian) = _frame(data), _backends(backends)
    model_spec = _model_spec(spec, "propensity_logit", draws, tune, chains)
    ledger = read_published(published, study="psm") if published else None
    analysis = analyse_psm(frame, treatment=treatment, outcome=outcome,
                           covariates=list(_names(covariates, "covariates")),
                           categorical=list(_names(categorical, "categorical")),
                           reference=reference or None, seed=_seed(seed), study="psm",
                           spec=model_spec, bootstrap=bootstrap,
                           exact=list(_names(exact, "exact")), table=table,
                           balance_table=f"{table}_balance", bayesian=bayesian,
                           progressbar=progressbar)
    _attach(analysis, ledger, published)
    _remember(analysis, "psm", frame, treatment=treatment, outcome=outcome,
              covariates=_names(covariates, "covariates"),
              categorical=_names(categorical, "categorical"), reference=reference, seed=seed,
              draws=draws, tune=tune, chains=chains, table=table, published=published)
    return _result(analysis, keep, title=f"PSM: ATT of {treatment} on {outcome}",
                   thresholds=model_spec.convergence,
                   shown={"table": (table,), "quantity": ("att", "att_psmatch2_se")})


def mediate(data: pd.DataFrame, *, treatment: str, mediator: str, outcome: str,
            covariates: Columns = (), family: str = "bernoulli", unit: str | None = None,
            time: str | None = None, categorical: Columns = (),
            reference: dict[str, str] | None = None, spec=None, seed: int = 2024,
            backends: Sequence[str] = BACKENDS, draws: int | None = None,
            tune: int | None = None, chains: int | None = None, bootstrap: int = 200,
            table: str | None = None, column: str | None = None, published=None,
            progressbar: bool = False, vcov: str | None = None) -> Result:
    """Mediation of ``treatment -> mediator -> outcome``: natural indirect, direct and total
    effects and the proportion mediated, frequentist (stepwise, Sobel, cluster bootstrap)
    and Bayesian (joint model), as ``bayes-pool mediate``.

    ``family`` is the outcome model's (``bernoulli`` logit or ``gaussian``); ``unit`` and
    ``time`` add unit and time effects (and cluster the bootstrap by unit). The effects are in
    table ``mediation``; the two regressions in ``mediator_model``/``outcome_model`` (or
    ``<table>_mediator``/``<table>_outcome``). ``spec``: a MediationSpec, a name or a path
    (default ``models/mediation.toml``); ``published`` a ledger CSV as in :func:`did`.
    ``vcov``: the two steps' SEs as :func:`did`'s (clusters: the unit; None: clustered by
    unit, HC1 without a unit). Other arguments as :func:`did`.
    """
    from bayes_pool.bayes.mediation import MediationSpec, load_mediation_spec
    from bayes_pool.mediation_workflow import analyse_mediation
    frame, (keep, bayesian) = _frame(data), _backends(backends)
    if _family(family) == "t":
        raise SpecError("family \"t\" (a Student-t likelihood) is available for the plain "
                        "DiD only, not for mediation")
    ledger = read_published(published, study="mediate") if published else None
    if not isinstance(spec, MediationSpec):
        spec = load_mediation_spec("mediation" if spec is None else spec)
    model_spec = _sampler(spec, draws, tune, chains)
    tables = (f"{table}_mediator", f"{table}_outcome") if table else ("mediator_model",
                                                                       "outcome_model")
    analysis = analyse_mediation(frame, treatment=treatment, mediator=mediator, outcome=outcome,
                                 covariates=_names(covariates, "covariates"),
                                 categorical=_names(categorical, "categorical"),
                                 reference=reference or None, unit=unit, time=time,
                                 tables=tables, column=column, outcome_family=family,
                                 seed=_seed(seed), study="mediate", spec=model_spec,
                                 bootstrap=bootstrap, bayesian=bayesian,
                                 progressbar=progressbar, vcov=vcov)
    _attach(analysis, ledger, published)
    _remember(analysis, "mediate", frame, treatment=treatment, mediator=mediator,
              outcome=outcome, covariates=_names(covariates, "covariates"),
              outcome_family=family, unit=unit, time_col=time,
              categorical=_names(categorical, "categorical"), reference=reference,
              spec=model_spec, seed=seed, published=published, vcov=vcov)
    return _result(analysis, keep, title=f"Mediation of {treatment} on {outcome} by {mediator}",
                   thresholds=model_spec.model.convergence,
                   shown={"table": ("mediation",),
                          "quantity": ("indirect", "direct", "total")})


__all__ = ["BACKENDS", "did", "event_study", "mediate", "psm", "sensitivity", "staggered"]
