"""Prior sensitivity of any ``did``, ``psm`` or ``mediate`` analysis: its key model rebuilt from
the run folder's manifest (or from a :class:`~bayes_pool.results.Result` of the API).

A generic run records its invocation (:mod:`bayes_pool.commands.invocation`): the data file,
the column roles, the labels, the spec, the sampler and the ledger; an API result keeps the
same as ``analysis.results["call"]``. :func:`from_run_folder` and :func:`from_result` turn
either into a :class:`Call`, and :func:`target` into the :class:`~bayes_pool.sensitivity.Target`
and spec that :func:`bayes_pool.sensitivity.run_sensitivity` refits under each prior set:

* ``did``: the run's hierarchical DiD (its spec; key quantity the AME of a logit, the
  coefficient of a linear model); with ``--staggered``, the extended TWFE (overall ATT);
* ``psm``: the Bayesian linear regression of the outcome on the treatment and the propensity
  covariates (spec ``linear_regression``; key quantity the treatment's coefficient). The
  propensity model has no treatment term and the ATTs come from matching and weighting on it,
  so the regression-adjusted effect is the psm model a treatment prior can act on;
* ``mediate``: the joint mediation model (key quantity the natural indirect effect).

Cells of the run's ``--published`` ledger with the run's labels become the published mark on
the forest plot and the centre of the optimistic prior set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_pool.errors import InputError
from bayes_pool.sensitivity import PublishedCell, Target

COMMANDS: tuple[str, ...] = ("did", "psm", "mediate")
"""The commands whose runs ``bayes-pool sensitivity RUN_DIR`` refits."""


@dataclass
class Call:
    """What an analysis was asked to do: its command, data and arguments (the invocation's
    names: ``time_col``, ``outcome_family``, comma-separated ``covariates``...)."""

    command: str
    frame: pd.DataFrame
    args: dict
    source: dict = field(default_factory=dict)
    """The data's provenance (``loaded.manifest()``) for the sensitivity run's manifest."""
    subset: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    """The rows the analysis used, applied after the fingerprint check (a study file's
    ``subset``)."""

    def items(self, name: str) -> tuple[str, ...]:
        value = self.args.get(name) or ()
        if isinstance(value, str):
            return tuple(c.strip() for c in value.split(",") if c.strip())
        return tuple(value)

    def reference(self) -> dict[str, str]:
        ref = self.args.get("reference") or {}
        if isinstance(ref, dict):
            return dict(ref)
        from bayes_pool.categorical import parse_reference
        return parse_reference(ref)


def read_manifest(run_dir: str | Path) -> dict:
    """A run folder's manifest with a ``did``/``psm``/``mediate`` invocation, or
    :class:`InputError` saying what the folder is instead."""
    path = Path(run_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        invocation = manifest["invocation"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{run_dir}: not a run folder with a manifest.json holding an "
                         f"'invocation' record ({type(exc).__name__}: {exc})") from None
    if invocation.get("command") not in COMMANDS and not manifest.get("study_file"):
        raise InputError(f"{run_dir}: a {invocation.get('command')!r} run; sensitivity RUN_DIR "
                         f"refits runs of {list(COMMANDS)} (a study's: bayes-pool sensitivity "
                         "STUDY)")
    return manifest


def from_run_folder(run_dir: str | Path, *, data: str | Path | pd.DataFrame | None = None,
                    mapping: str | Path | None = None) -> Call:
    """The call of a run folder, its data re-read from the recorded file (or ``data``: the
    file moved, or a frame) and checked against the run's fingerprint."""
    manifest = read_manifest(run_dir)
    if manifest.get("study_file"):
        call, frame = _study_file_call(manifest, data, mapping)
    else:
        call, frame = _command_call(manifest, run_dir, data, mapping)
    recorded = (manifest.get("data") or {}).get("fingerprint")
    if recorded and call.source["fingerprint"] != recorded:
        raise InputError(f"{run_dir}: the data now read ({call.source['fingerprint'][:12]}...) "
                         f"differ from the run's ({recorded[:12]}...); refit on the run's data "
                         "or run the analysis again")
    call.frame = frame if call.subset is None else call.subset(frame)
    return call


def _command_call(manifest: dict, run_dir, data, mapping) -> tuple[Call, pd.DataFrame]:
    """A ``did``/``psm``/``mediate`` run's call and its data, as read again."""
    from bayes_pool.data import load
    from bayes_pool.data.io import fingerprint
    from bayes_pool.data.labels import apply_value_labels
    args = dict(manifest["invocation"]["args"])
    call = Call(command=manifest["invocation"]["command"], frame=pd.DataFrame(), args=args)
    if isinstance(data, pd.DataFrame):
        frame, call.source = data, {"kind": "frame", "fingerprint": fingerprint(data)}
    else:
        path = Path(data or args["data"])
        if not path.is_file():
            raise InputError(f"{run_dir}: the run's data file {path} is not there; give its "
                             "new place with --data (the same data: its fingerprint is checked)")
        loaded = load(path, mapping=mapping or args.get("mapping"), unique=args.get("id_col"))
        frame = apply_value_labels(loaded.frame, loaded.value_labels, call.items("covariates"))[0]
        call.source = {"kind": "file", **loaded.manifest()}
    return call, frame


def _study_file_call(manifest: dict, data, mapping) -> tuple[Call, pd.DataFrame]:
    """A study-file run's key analysis (its ``key_table``/``key_column``) as a call of its
    kind, the data from the file's ``[data]`` (or ``data``) and the analysis's ``subset``
    applied after the fingerprint check."""
    from bayes_pool.data.io import fingerprint
    from bayes_pool.study_file import load as load_study
    from bayes_pool.study_file import subset
    study = load_study(manifest["study_file"])
    a = study.key_analysis()
    if a.kind not in (*COMMANDS, "linear"):
        raise InputError(f"{study.path}: the key analysis {a.name!r} is of kind {a.kind!r}; "
                         f"sensitivity RUN_DIR refits {[*COMMANDS, 'linear']}")
    if isinstance(data, pd.DataFrame):
        frame, source = data, {"kind": "frame", "fingerprint": fingerprint(data)}
    else:
        frame, source = study.load_data(None if data is None else Path(data), mapping,
                                        seed=manifest.get("seed"))
    renames = {"time": "time_col", **({"family": "outcome_family"} if a.kind == "mediate"
                                      else {})}
    args = {renames.get(k, k): v for k, v in a.options.items()}
    args.update(seed=manifest.get("seed"), table=a.table, column=a.column, spec=a.spec,
                study=study.id, published=str(study.published) if study.published else None)
    call = Call(command=a.kind, frame=pd.DataFrame(), args=args, source=source)
    call.subset = lambda f: subset(f, a, f"{study.path}: analysis {a.name!r}")
    return call, frame


def from_result(result) -> Call:
    """The call of an API result of ``bp.did``, ``bp.psm`` or ``bp.mediate``."""
    call = getattr(result, "analysis", None) and result.analysis.results.get("call")
    if not call:
        raise InputError("this result records no analysis call; bp.sensitivity takes the "
                         "result of bp.did, bp.psm or bp.mediate, or a run folder")
    from bayes_pool.data.io import fingerprint
    return Call(command=call["command"], frame=call["frame"], args=dict(call["args"]),
                source={"kind": "frame", "fingerprint": fingerprint(call["frame"])})


def target(call: Call, *, spec=None) -> tuple[Target, object]:
    """The target of the call's key model and its spec (``spec``: a name or path replacing
    the run's own), sampler settings as the run's (``draws``/``tune``/``chains`` given)."""
    build = {"did": _did, "psm": _psm, "mediate": _mediate, "linear": _linear}[call.command]
    tgt, model_spec = build(call, spec)
    changes = {k: call.args[k] for k in ("draws", "tune", "chains") if call.args.get(k)}
    return tgt, (model_spec.with_sampler(**changes) if changes else model_spec)


def _spec(spec, default: str):
    from bayes_pool.specs import ModelSpec, load_spec
    return spec if isinstance(spec, ModelSpec) else load_spec(spec or default)


def _cells(call: Call, table: str, column: str | None, quantities: dict[str, str]) -> dict:
    """The ledger cells of the run's labels: ``{role: PublishedCell}`` for the roles
    (``marked``, ``centre``) whose quantity of the treatment the ledger holds (with
    ``column`` None, the first such row in ledger order: a psm table's first ATT)."""
    ledger = call.args.get("published")
    if not ledger:
        return {}
    from bayes_pool.published import read_ledger
    rows = read_ledger(ledger)
    treatment = call.args["treatment"]
    out = {}
    for role, quantity in quantities.items():
        hit = rows[(rows["table"] == table) & (rows["term"] == treatment)
                   & (rows["quantity"] == quantity)
                   & ((rows["column"] == column) if column else True)]
        if len(hit):
            out[role] = PublishedCell(study=str(hit["study"].iloc[0]), table=table,
                                      column=str(hit["column"].iloc[0]), term=treatment,
                                      quantity=quantity, ledger=str(ledger))
    return out


def _did(call: Call, spec) -> tuple[Target, object]:
    from bayes_pool.design import DiDDesign
    a = call.args
    family = a.get("family", "bernoulli")
    if a.get("staggered"):
        return _staggered(call, spec, family)
    design = DiDDesign(outcome=a["outcome"], treatment=a["treatment"], unit=a["unit"],
                       time=a["time_col"], covariates=call.items("covariates"), family=family,
                       categorical=call.items("categorical"), reference=call.reference())
    prepared = design.prepare(call.frame)
    from bayes_pool.api import DID_SPECS
    model_spec = _spec(spec or a.get("spec"), DID_SPECS[family]).with_unit_effects(
        a.get("unit_effects"))
    table, column = a.get("table") or "did", a.get("column") or family
    key = "ame" if family == "bernoulli" else "beta"
    return Target(kind="did", study="did", table=table, column=column, outcome=a["outcome"],
                  treatment=a["treatment"], covariates=tuple(prepared.design.covariates),
                  prepared=prepared, time=a["time_col"],
                  **_cells(call, table, column, {"marked": key, "centre": "beta"}),
                  description=f"DiD ({family}) of {a['outcome']} with {a['unit']} and "
                              f"{a['time_col']} effects"), model_spec


def _staggered(call: Call, spec, family: str) -> tuple[Target, object]:
    """A ``did --staggered`` run: the extended TWFE, key quantity its overall ATT (column
    ``etwfe`` of table ``staggered``, where the run wrote it)."""
    from bayes_pool.categorical import expand
    from bayes_pool.design.staggered import StaggeredDesign
    a = call.args
    ex = expand(call.frame, call.items("covariates"), categorical=call.items("categorical"),
                reference=call.reference(),
                required=(a["outcome"], a["treatment"], a["unit"], a["time_col"]))
    design = StaggeredDesign(outcome=a["outcome"], treatment=a["treatment"], unit=a["unit"],
                             time=a["time_col"], cohort=a["cohort"], covariates=ex.covariates,
                             family=family)
    control = a.get("control") or "notyet"
    return Target(kind="staggered", study="did", table="staggered", column="etwfe",
                  outcome=a["outcome"], treatment=a["treatment"],
                  covariates=tuple(ex.covariates), prepared=design.prepare(ex.frame),
                  time=a["time_col"], control=control,
                  **_cells(call, "staggered", "etwfe", {"marked": "att"}),
                  description=f"extended TWFE ({family}, {control} control) of "
                              f"{a['outcome']}: overall ATT"), \
        _spec(spec or a.get("spec"), "did_logit" if family == "bernoulli" else "did_linear")


def _psm(call: Call, spec) -> tuple[Target, object]:
    from bayes_pool.categorical import expand
    a = call.args
    ex = expand(call.frame, call.items("covariates"), categorical=call.items("categorical"),
                reference=call.reference(), required=[a["treatment"], a["outcome"]])
    table = a.get("table") or "psm"
    return Target(kind="linear", study="psm", table=table, column="regression",
                  outcome=a["outcome"], treatment=a["treatment"],
                  covariates=tuple(ex.covariates), frame=ex.frame,
                  **_cells(call, table, None, {"marked": "att", "centre": "att"}),
                  description=f"linear regression of {a['outcome']} on {a['treatment']} and "
                              "the propensity covariates (regression adjustment)"), \
        _spec(spec, "linear_regression")


def _linear(call: Call, spec) -> tuple[Target, object]:
    """A study file's ``linear`` analysis: the Bayesian regression of the outcome on the
    treatment and covariates, key quantity the treatment's coefficient."""
    a = call.args
    table, column = a.get("table") or "linear", a.get("column") or "linear"
    return Target(kind="linear", study=a.get("study") or "linear", table=table, column=column,
                  outcome=a["outcome"], treatment=a["treatment"],
                  covariates=call.items("covariates"), frame=call.frame,
                  **_cells(call, table, column, {"marked": "beta", "centre": "beta"}),
                  description=f"linear regression of {a['outcome']} on {a['treatment']} and "
                              "its covariates"), _spec(spec or a.get("spec"), "linear_regression")


def _mediate(call: Call, spec) -> tuple[Target, object]:
    from bayes_pool.bayes.mediation import MediationSpec, load_mediation_spec
    from bayes_pool.categorical import expand
    from bayes_pool.design.mediation import MediationDesign
    a = call.args
    unit, time = a.get("unit"), a.get("time_col")
    ex = expand(call.frame, call.items("covariates"), categorical=call.items("categorical"),
                reference=call.reference(),
                required=[c for c in (a["treatment"], a["mediator"], a["outcome"], unit, time)
                          if c])
    family = a.get("outcome_family", "bernoulli")
    design = MediationDesign(outcome=a["outcome"], treatment=a["treatment"],
                             mediator=a["mediator"], covariates=ex.covariates, unit=unit,
                             time=time, family=family)
    spec = spec or a.get("spec")
    model_spec = spec if isinstance(spec, MediationSpec) else \
        load_mediation_spec(spec or "mediation")
    cells = _cells(call, "mediation", a["mediator"], {"marked": "indirect"})
    return Target(kind="mediation", study="mediate", table="mediation", column=a["mediator"],
                  outcome=a["outcome"], treatment=a["treatment"],
                  covariates=tuple(ex.covariates), prepared=design.prepare(ex.frame),
                  time=time, **cells,
                  description=f"joint mediation model of {a['outcome']} by {a['mediator']} "
                              f"({family})"), model_spec


def sensitivity(run, *, priors: str = "all", priors_dir=None, data: pd.DataFrame | None = None,
                spec=None, seed: int | None = None, draws: int | None = None,
                tune: int | None = None, chains: int | None = None, workers: int | None = 1,
                prior_draws: int = 500, checks: bool = True):
    """Prior sensitivity of an analysis, as ``bayes-pool sensitivity RUN_DIR``: its key model
    refitted under every prior set that applies (:mod:`bayes_pool.sensitivity_runs` says which
    model each analysis has), with power-scaling and prior and posterior predictive checks.

    Parameters
    ----------
    run : Result or str or Path
        A result of :func:`did`, :func:`psm` or :func:`mediate`, or the folder of a ``did``,
        ``psm`` or ``mediate`` run (its data re-read from the file its manifest names, or
        ``data``, checked against the run's fingerprint).
    priors, priors_dir
        Prior sets: ``"all"`` or a comma list of names or ``.toml`` paths
        (:func:`bayes_pool.priors.select`); ``priors_dir`` a folder of the user's own.
    spec, seed, draws, tune, chains
        The model spec and sampler (default: the run's own) and the root seed (the run's).
    workers
        Parallel refits (1: in this process).
    prior_draws, checks
        Prior predictive draws per set (0: none); power-scaling of every fit and the
        posterior predictive check of the first set's.

    Returns
    -------
    bayes_pool.sensitivity.SensitivityResult
        ``.table`` (one row per prior set: mean, SD, interval, P(effect > 0), diagnostics),
        ``.estimates`` (rows of the estimates table), ``.psense``, ``.skipped`` ...; nothing
        is written (``bayes-pool sensitivity`` writes the files).
    """
    from bayes_pool.api import _sampler, _seed
    from bayes_pool.priors import select
    from bayes_pool.sensitivity import run_sensitivity
    call = from_run_folder(run, data=data) if isinstance(run, (str, Path)) else from_result(run)
    given = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items()
             if v is not None}
    tgt, model_spec = target(call, spec=spec)
    model_spec = _sampler(model_spec, **{**dict(draws=None, tune=None, chains=None), **given})
    seed = _seed(call.args.get("seed", 2024) if seed is None else seed)
    return run_sensitivity(tgt, model_spec, select(priors, priors_dir), seed=seed,
                           workers=workers, prior_draws=prior_draws, checks=checks)
