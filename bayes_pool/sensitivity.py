"""Prior sensitivity by refitting: one model, every chosen prior set, fitted in parallel.

:class:`Target` says what is refitted (a DiD, an extended TWFE, a linear regression or the
joint mediation model, the key term and quantity, and the published cells it is compared
with); each study builds its benchmark target (its record's ``sensitivity_target``), a
``did``/``psm``/``mediate`` run folder its own (:mod:`bayes_pool.sensitivity_runs`).
:func:`run_sensitivity` fits the model once per prior set
through :func:`bayes_pool.parallel.map_refits` (dask) with the same seed for every set (common
random numbers: differences are the priors', not Monte Carlo noise) and, on the first set
(normally ``default``), adds the posterior predictive check and the power-scaling plot; every
set gets its power-scaling diagnostics (``psense.csv``, one block per set) and prior predictive
draws. :func:`write_sensitivity` writes the files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pool import estimates
from bayes_pool.errors import SpecError
from bayes_pool.priors import PriorSet, applicable, apply_prior_set
from bayes_pool.published import ledger_value, published_value, read_ledger
from bayes_pool.seeds import child_seed
from bayes_pool.specs import ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedCell:
    """A ledger key: one printed number of a study."""

    study: str
    table: str
    column: str
    term: str
    quantity: str
    ledger: str = ""
    """A user's ledger file (``--published`` of a run); empty: the study's shipped ledger."""

    def value(self, field: str = "estimate") -> float:
        if self.ledger:
            return ledger_value(read_ledger(self.ledger), self.table, self.column, self.term,
                                self.quantity, field=field, where=f"ledger {self.ledger}")
        return published_value(self.study, self.table, self.column, self.term, self.quantity,
                               field=field)

    def label(self) -> str:
        return f"published {self.quantity} (Table {self.table} {self.column})"


@dataclass(frozen=True)
class Target:
    """What a sensitivity analysis refits and reports.

    ``kind`` is ``"did"`` (hierarchical DiD, :mod:`bayes_pool.bayes.did`; ``prepared`` holds
    the design and complete-case frame), ``"staggered"`` (extended TWFE on a prepared
    staggered design; key quantity the overall ATT), ``"linear"``
    (:mod:`bayes_pool.bayes.linear` on ``frame``) or ``"mediation"`` (the joint model of
    :mod:`bayes_pool.bayes.mediation`; key quantity the natural indirect effect; a prior set
    applies to both equations, on the model's standardised scale); the fits are
    :mod:`bayes_pool.sensitivity_models`'. ``marked`` is the published cell drawn on
    the forest plot; ``centre`` the published coefficient an optimistic prior is centred on.
    """

    kind: str
    study: str
    table: str
    column: str
    outcome: str
    treatment: str
    covariates: tuple[str, ...] = ()
    frame: pd.DataFrame | None = None
    prepared: object = None
    time: str | None = None
    marked: PublishedCell | None = None
    centre: PublishedCell | None = None
    description: str = ""
    control: str = "notyet"
    """A staggered target's control group (``notyet`` or ``never``)."""

    @property
    def family(self) -> str:
        return self.prepared.design.family if self.prepared is not None else "gaussian"

    @property
    def roles(self) -> tuple[str, ...]:
        """The prior roles the model has."""
        if self.kind == "mediation":
            d = self.prepared.design
            return ("intercept", "treatment", "sigma") + (("covariates",) if d.covariates
                                                           else ()) + \
                (("time",) if d.time else ()) + \
                (("unit_sd", "unit_means", "unit_time_sd") if d.unit else ())
        if self.kind in ("did", "staggered"):
            return ("intercept", "treatment", "covariates", "time", "unit_sd", "unit_means") + \
                (("unit_time_sd",) if self.kind == "did" else ()) + \
                (("sigma",) if self.family == "gaussian" else ())
        return ("intercept", "treatment", "covariates", "sigma")

    @property
    def key_quantity(self) -> str:
        """``indirect`` for mediation, ``att`` for staggered, ``ame`` for a logit DiD, ``beta``
        otherwise (a linear model's AME is its beta)."""
        if self.kind in ("mediation", "staggered"):
            return {"mediation": "indirect", "staggered": "att"}[self.kind]
        return "ame" if self.kind == "did" and self.family == "bernoulli" else "beta"

    @property
    def key_variable(self) -> str:
        return {"did": f"ame_{self.treatment}", "mediation": "indirect",
                "staggered": "att_overall"}.get(self.kind, self.treatment)

    @property
    def data(self) -> pd.DataFrame:
        """The frame the model is fitted on (a prepared design's complete cases, or ``frame``)."""
        return self.prepared.frame if self.prepared is not None else self.frame

    @property
    def n_obs(self) -> int:
        return self.prepared.n_obs if self.prepared is not None else \
            int(self.frame[[self.outcome, self.treatment, *self.covariates]].dropna().shape[0])

    def refs(self) -> dict[str, float]:
        """Values a prior set's ``{ ref = ... }`` parameters may use (see bayes_pool.priors);
        the mediation model's outcome and mediator are standardised, so its ``sd_y`` is 1."""
        out = {"sd_y": 1.0 if self.kind == "mediation" else
               float(pd.to_numeric(self.data[self.outcome]).std(ddof=1))}
        if self.centre is not None:
            out.update(published_estimate=self.centre.value("estimate"),
                       published_se=self.centre.value("se"))
        return out


def fit(target: Target, spec: ModelSpec, *, seed: int):
    """Fit the target's model under ``spec`` (:func:`bayes_pool.sensitivity_models.fit`)."""
    from bayes_pool.sensitivity_models import fit as fit_model
    return fit_model(target, spec, seed=seed)


def apply(target: Target, spec, prior_set: PriorSet, refs: dict):
    """``spec`` with the set's priors for the target's roles (a mediation spec's: see
    :func:`bayes_pool.mediation_checks.apply_prior_set`)."""
    if target.kind == "mediation":
        from bayes_pool import mediation_checks
        return mediation_checks.apply_prior_set(spec, prior_set, roles=target.roles,
                                                     family=target.family, refs=refs)
    return apply_prior_set(spec, prior_set, roles=target.roles, refs=refs)


def applied_priors(spec) -> dict:
    """The priors of an applied spec, for the manifest (a mediation spec's by equation)."""
    if hasattr(spec, "mediator_priors"):
        return {"outcome": spec.model.priors, "mediator": spec.mediator_priors}
    return spec.priors


@dataclass
class SensitivityResult:
    """Everything a sensitivity run produced (written by :func:`write_sensitivity`)."""

    target: Target
    table: pd.DataFrame
    estimates: pd.DataFrame
    specs: dict
    prior_predictive: dict = field(default_factory=dict)
    psense: pd.DataFrame | None = None
    psense_tree: object = None
    posterior_predictive: pd.DataFrame | None = None
    main_set: str = ""
    skipped: dict = field(default_factory=dict)


def _refit(task: dict, target: Target) -> dict:
    """One prior set: fit, summarise the key quantity, and the checks asked for (worker side)."""
    from bayes_pool import sensitivity_models as models
    name, spec, seed = task["name"], task["spec"], task["seed"]
    res = fit(target, spec, seed=seed)
    rows = models.effect_rows(target, res, column=f"prior:{name}")
    rows["note"] = rows["note"].str.cat([f"prior set {name}; model: {target.description}"]
                                        * len(rows), sep="; ")
    draws = np.asarray(res.idata["posterior"][target.key_variable]).ravel()
    out = {"name": name, "rows": rows, "p_positive": float(np.mean(draws > 0))}
    prior, scaling, replicate = models.checks(target, res)
    if task.get("prior_draws"):
        out["prior_predictive"] = prior(task["prior_draws"], child_seed(seed, "prior_predictive"))
    if task.get("psense"):
        out["psense"], tree = scaling()
        if task.get("main"):
            out["psense_tree"] = tree
    if task.get("main"):
        out["posterior_predictive"] = replicate(child_seed(seed, "posterior_predictive"))
    return out


def _refit_task(task: dict, target: Target) -> dict:
    """:func:`_refit` as JSON values, so a finished prior set can be kept on disk."""
    return _encode(_refit(task, target))


def _encode(result: dict) -> dict:
    """A refit's result as JSON values: frames as records, the power-scaling tree as one
    ``Dataset.to_dict`` per group (attributes dropped)."""
    out = {}
    for k, v in result.items():
        if isinstance(v, pd.DataFrame):
            v = {"__frame__": v.astype(object).where(v.notna(), None).to_dict("records"),
                 "columns": list(v.columns)}
        elif k == "psense_tree":
            v = {"__tree__": {name.strip("/"): node.to_dataset().drop_attrs().to_dict(data="list")
                              for name, node in v.subtree_with_keys if node.has_data}}
        elif k == "prior_predictive":
            v = {name: np.asarray(a).tolist() for name, a in v.items()}
        out[k] = v
    return out


def _decode(result: dict) -> dict:
    """The inverse of :func:`_encode`."""
    import xarray as xr
    out = {}
    for k, v in result.items():
        if isinstance(v, dict) and "__frame__" in v:
            v = pd.DataFrame(v["__frame__"], columns=v["columns"])
        elif isinstance(v, dict) and "__tree__" in v:
            v = xr.DataTree.from_dict({name: xr.Dataset.from_dict(ds)
                                       for name, ds in v["__tree__"].items()})
        elif k == "prior_predictive":
            v = {name: np.asarray(a, dtype=float) for name, a in v.items()}
        out[k] = v
    if "rows" in out:
        out["rows"] = estimates.frame(out["rows"])
    return out


def checkpoint_key(target: Target, tasks: list[dict]) -> str:
    """Checkpoint key of a sensitivity run: the target's data and model, every prior set's
    applied spec and checks, the seed, and the code of this module and of the fits
    (:mod:`bayes_pool.sensitivity_models`, :mod:`bayes_pool.mediation_checks`)."""
    import hashlib
    import inspect

    from bayes_pool import checkpoint, mediation_checks, sensitivity_models
    from bayes_pool.data.io import fingerprint
    model = dict(kind=target.kind, outcome=target.outcome, treatment=target.treatment,
                 covariates=list(target.covariates), time=target.time, control=target.control,
                 design=repr(target.prepared.design) if target.prepared is not None else None)
    settings = [{**{k: v for k, v in t.items() if k != "spec"}, "spec": t["spec"].to_dict()}
                for t in tasks]
    return checkpoint.key(_refit, data=fingerprint(target.data), seed=tasks[0]["seed"],
                          settings={"model": model, "tasks": settings, "code": {
                              m.__name__: hashlib.sha256(inspect.getsource(m).encode()).hexdigest()
                              for m in (sensitivity_models, mediation_checks)}})


def run_sensitivity(target: Target, spec: ModelSpec, prior_sets: list[PriorSet], *, seed: int,
                    workers: int | None = None, prior_draws: int = 500, checks: bool = True,
                    progress=None, refits_dir: str | Path | None = None) -> SensitivityResult:
    """Refit ``target`` under every applicable prior set (in parallel) and collect the results.

    Sets with no role the model has (a province-scale set on a regression without provinces)
    are skipped and listed in ``skipped``; if none is left, :class:`SpecError`. With
    ``checks``, every fit gets the power-scaling diagnostics and the first set's fit the
    posterior predictive check. With ``refits_dir``, each finished prior set is kept in
    ``refits_dir/<key>/`` as it arrives (:mod:`bayes_pool.checkpoint`), so an interrupted run
    resumes with the sets it had and refits only the rest.
    """
    from bayes_pool.checkpoint import Checkpoint
    from bayes_pool.parallel import map_refits
    tasks, skipped, specs = [], {}, {}
    refs = target.refs()
    for ps in prior_sets:
        if not applicable(ps, target.family, target.roles):
            skipped[ps.name] = (f"sets {sorted(ps.for_family(target.family))}; model roles are "
                                f"{list(target.roles)}")
            continue
        if _needs_published(ps, target.family) and target.centre is None:
            skipped[ps.name] = ("needs the published estimate and SE of the key coefficient, "
                                "which this run's ledger does not hold (give the run "
                                "--published with --table/--column labels)")
            continue
        applied = apply(target, spec, ps, refs)
        specs[ps.name] = applied_priors(applied)
        tasks.append({"name": ps.name, "spec": applied, "seed": seed, "prior_draws": prior_draws,
                      "psense": checks, "main": checks and not tasks})
    if not tasks:
        raise SpecError(f"none of the prior sets {[p.name for p in prior_sets]} applies to "
                        f"model {spec.to_dict()['name']!r} (roles {list(target.roles)}): "
                        + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    store = Checkpoint(Path(refits_dir) / checkpoint_key(target, tasks)) if refits_dir else None
    done = map_refits(_refit_task, tasks, shared=target, workers=workers, checkpoint=store,
                      progress=(lambda i, n: progress(f"prior set {i}/{n} fitted"))
                      if progress else None)
    done = [_decode(d) for d in done]
    table = _table(target, done)
    est = estimates.concat(*[d["rows"] for d in done])
    main = next((d for d in done if "psense_tree" in d), {})
    psense = [d["psense"].assign(prior_set=d["name"]) for d in done if "psense" in d]
    return SensitivityResult(
        target=target, table=table, estimates=est, specs=specs,
        prior_predictive={d["name"]: d["prior_predictive"] for d in done
                          if "prior_predictive" in d},
        psense=pd.concat(psense, ignore_index=True) if psense else None,
        psense_tree=main.get("psense_tree"),
        posterior_predictive=main.get("posterior_predictive"), main_set=main.get("name", ""),
        skipped=skipped)


def _needs_published(prior_set: PriorSet, family: str) -> bool:
    """Whether a set refers to the published estimate or SE (the optimistic set)."""
    return any(isinstance(v, dict) and str(v.get("ref", "")).startswith("published")
               for prior in prior_set.for_family(family).values() if isinstance(prior, dict)
               for v in prior.values())


def _table(target: Target, done: list[dict]) -> pd.DataFrame:
    """One row per prior set: the key quantity's summary, P(effect > 0) and diagnostics."""
    rows = []
    published = target.marked.value() if target.marked is not None else np.nan
    for d in done:
        r = d["rows"]
        key = r[r["quantity"] == target.key_quantity].iloc[0]
        rows.append({
            "prior_set": d["name"], "term": target.treatment, "quantity": target.key_quantity,
            "mean": key["estimate"], "sd": key["se"], "ci_low": key["ci_low"],
            "ci_high": key["ci_high"], "p_positive": d["p_positive"], "r_hat": key["r_hat"],
            "ess_bulk": key["ess_bulk"], "ess_tail": key["ess_tail"],
            "divergences": int(key["divergences"]), "converged": bool(key["converged"]),
            "published": published, "n_obs": int(key["n_obs"])})
    return pd.DataFrame(rows)


def write_sensitivity(folder: Path, result: SensitivityResult, *, synthetic: bool, title: str
                      ) -> dict[str, Path]:
    """sensitivity.csv/.png, estimates.csv, and (when computed) psense.csv/.png,
    prior_predictive.png and posterior_predictive.png into ``folder``."""
    from bayes_pool.figures.checks import plot_posterior_predictive, plot_prior_predictive
    from bayes_pool.figures.sensitivity import plot_psense, sensitivity_forest
    folder = Path(folder)
    paths = {}
    t = result.target
    table = result.table.assign(synthetic=synthetic)
    table.to_csv(folder / "sensitivity.csv", index=False, float_format="%.6g",
                 lineterminator="\n")
    paths["sensitivity"] = folder / "sensitivity.csv"
    estimates.write_csv(result.estimates, folder / "estimates.csv")
    paths["estimates"] = folder / "estimates.csv"
    marked = None
    if t.marked is not None:
        marked = (t.marked.value(), t.marked.value("se"), t.marked.label())
    what = {"ame": "AME", "indirect": "indirect effect", "att": "ATT"}.get(t.key_quantity,
                                                                          "coefficient")
    paths["sensitivity_plot"] = sensitivity_forest(
        result.table, folder / "sensitivity.png", published=marked, synthetic=synthetic,
        title=f"{title}\nprior sensitivity: {what} of {t.treatment}")
    if result.psense is not None:
        result.psense.to_csv(
            folder / "psense.csv", index=False, float_format="%.6g", lineterminator="\n")
        paths["psense"] = folder / "psense.csv"
        paths["psense_plot"] = plot_psense(
            result.psense_tree, folder / "psense.png", var_names=_scalar_vars(result),
            synthetic=synthetic, title=f"power-scaling sensitivity (prior set {result.main_set})")
    if result.prior_predictive:
        observed = float(pd.to_numeric(t.data[t.outcome]).mean())
        paths["prior_predictive"] = plot_prior_predictive(
            result.prior_predictive, folder / "prior_predictive.png", observed_mean=observed,
            outcome=t.outcome, effect=f"{what} of {t.treatment}", synthetic=synthetic,
            published=marked[0] if marked else None)
    if result.posterior_predictive is not None:
        paths["posterior_predictive"] = plot_posterior_predictive(
            result.posterior_predictive, folder / "posterior_predictive.png",
            outcome=t.outcome, synthetic=synthetic,
            title=f"posterior predictive check (prior set {result.main_set})")
    return paths


def _scalar_vars(result: SensitivityResult, limit: int = 9) -> list[str]:
    """Scalar posterior variables for the psense plot, the key ones first."""
    post = result.psense_tree["posterior"].to_dataset()
    t = result.target
    scalar = [v for v in post.data_vars if post[v].ndim == 2]
    first = [v for v in (t.key_variable, t.treatment) if v in scalar]
    rest = [v for v in scalar if v not in first and not v.startswith("ame_")
            and not v.startswith("beta_std_")]
    rest.sort(key=lambda v: (not (v.endswith("_sigma") or v == "sigma"), v))
    return (first + rest)[:limit]
