r"""Simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788) of a PyMC model.

For each of N simulations: draw the parameters :math:`\tilde\theta` and a data set
:math:`\tilde y` from the model's prior predictive, sample the posterior given
:math:`\tilde y` with nutpie (the toolkit's sampler), thin it to L draws and count the draws
below :math:`\tilde\theta` -- the rank, 0..L. If the model code and the sampler are right,
each parameter's ranks are uniform on {0, ..., L}: a U shape means posteriors too narrow, an
inverted U too wide, a slope a biased posterior.

The model fitted is exactly the model simulated from, so the fit uses the priors the
simulation drew from: its observed data are shared variables, the model is compiled once per
process and each refit only swaps the data (``nutpie.CompiledModel.with_data``). A problem
(:class:`SBCProblem`) names the model, the scalar parameters to rank and, when one observed
variable is also a regressor of another (a mediator), the order in which they are simulated.
Refits go through :func:`bayes_pool.parallel.map_refits`; every simulation is kept: a refit
that raises is counted as failed, one that misses the convergence thresholds is ranked,
counted and flagged.

:func:`did_logit_problem` and :func:`mediation_problem` set up the benchmark DiD logit
(:mod:`bayes_pool.bayes.did`) and the joint mediation model (:mod:`bayes_pool.bayes.mediation`)
on a small SYNTHETIC design (covariates and treatment timing drawn once; the outcome and
mediator columns are placeholders that each simulation replaces).

Over 400 lines on purpose: one procedure (simulate, refit, rank, test uniformity, report) whose
steps share the problem and settings records; the sections below follow its order.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bayes_pool.errors import SpecError
from bayes_pool.specs import Convergence

# ------------------------------------------------------------------------- settings ---


@dataclass(frozen=True)
class SBCSettings:
    """How many simulations, how each refit samples, how ranks are tested."""

    n_sims: int = 150
    thin_to: int = 99  # L: ranks lie in 0..L
    chains: int = 2
    draws: int = 500
    tune: int = 500
    cores: int = 1  # nutpie threads per refit: the parallelism is across refits
    time_limit: float = 600.0  # seconds a refit may take before it is stopped and counted failed
    seed: int = 2018
    bins: int = 20  # chi-square bins over the L + 1 rank values
    band_prob: float = 0.99  # simultaneous ECDF band and the histogram band


BENCHMARK = {"did_logit": SBCSettings(n_sims=200, draws=1000, seed=2018),
             "did_logit_unit_time": SBCSettings(n_sims=200, draws=1000, seed=2020),
             "mediation": SBCSettings(n_sims=150, draws=500, seed=2019)}
"""Settings of the slow-tier SBC and ``benchmarks/sbc.py``, sized for at most about 15
minutes per model on 2 cores: 2 chains after 500 tuning steps, thinned to L = 99. The DiD
logit keeps 2 x 1000 draws: the bulk ESS of its intercept and unit SD is often only ~150-300
per 1000 draws, too close to L for nearly independent thinned draws."""


@dataclass(frozen=True)
class Simulation:
    """One simulated data set: the true parameters and the observed values, by name."""

    index: int
    seed: int
    truth: dict[str, float]
    data: dict[str, np.ndarray]


class SBCProblem:
    """A model to calibrate; subclasses are frozen dataclasses (picklable, sent to workers).

    ``name``; ``parameters`` maps a label to a scalar model variable; ``build()`` returns the
    PyMC model and ``{observed variable: shared variable holding its data}``; ``sequential``
    lists observed variables that must be redrawn, in order, after the others' data are set
    (their distribution uses another observed variable as a regressor); ``fit_overrides``
    are shared values given to the fit only (a deliberately wrong fit, in tests);
    ``target_accept``, ``adaptation`` and ``convergence`` come from the model's spec.
    """

    name: str = "model"
    sequential: tuple[str, ...] = ()
    fit_overrides: dict = {}
    target_accept: float = 0.8
    adaptation: str = "low_rank"
    convergence: Convergence = Convergence()

    @property
    def parameters(self) -> dict[str, str]:
        raise NotImplementedError

    def build(self):
        raise NotImplementedError

    def key(self) -> str:
        """Identifies the compiled model, which is cached per process under it (default: a
        hash of the whole problem; a subclass may leave out what only ``fit_overrides``
        changes)."""
        return hashlib.sha256(pickle.dumps(self)).hexdigest()


class _SpecProblem(SBCProblem):
    """A problem whose model has a spec: sampler ``target_accept``, ``adaptation`` and
    thresholds from it."""

    @property
    def target_accept(self) -> float:
        return self.spec.sampler.target_accept

    @property
    def adaptation(self) -> str:
        return self.spec.sampler.adaptation

    @property
    def convergence(self) -> Convergence:
        return self.spec.convergence


# ------------------------------------------------------------------------ simulation ---

def simulate(problem: SBCProblem, n: int, seed: int) -> list[Simulation]:
    """Draw ``n`` parameter sets and data sets from the prior predictive of the problem's model.

    Observed variables in ``problem.sequential`` are redrawn given each simulation's
    parameters once the other observed variables' shared data hold that simulation's values
    (``pm.sample_posterior_predictive`` on a one-draw trace), so e.g. an outcome is generated
    from the simulated mediator, not from the placeholder data.
    """
    import pymc as pm

    model, data = problem.build()
    root = np.random.SeedSequence(seed)
    prior_seed, fit_root, forward_root = root.spawn(3)
    prior = pm.sample_prior_predictive(draws=n, model=model, random_seed=_int_seed(prior_seed))
    theta, predictive = prior["prior"], prior["prior_predictive"]
    fit_seeds = [_int_seed(s) for s in fit_root.spawn(n)]
    forward_seeds = [_int_seed(s) for s in forward_root.spawn(n)]
    free = [rv.name for rv in model.free_RVs]
    missing = set(problem.parameters.values()) - set(theta.data_vars)
    if missing:
        raise SpecError(f"SBC problem {problem.name!r}: parameter(s) {sorted(missing)} are not "
                        f"variables of the model; variables: {sorted(theta.data_vars)}")
    sims = []
    for s in range(n):
        values = {name: np.asarray(predictive[name].values[0, s]) for name in data}
        if problem.sequential:
            point = {name: np.asarray(theta[name].values[0, s]) for name in free}
            for name in data:
                if name not in problem.sequential:
                    _set(data[name], values[name])
            for name in problem.sequential:
                values[name] = _forward(model, point, name, forward_seeds[s])
                _set(data[name], values[name])
        truth = {label: float(theta[var].values[0, s])
                 for label, var in problem.parameters.items()}
        sims.append(Simulation(index=s, seed=fit_seeds[s], truth=truth, data=values))
    return sims


def _int_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def _set(shared, value) -> None:
    shared.set_value(np.asarray(value, dtype=shared.dtype))


def _forward(model, point: dict, name: str, seed: int) -> np.ndarray:
    """One draw of observed variable ``name`` given the parameter values ``point``."""
    import pymc as pm
    import xarray as xr

    dims = model.named_vars_to_dims
    trace = xr.Dataset({k: (("chain", "draw", *dims.get(k, [f"{k}_dim_{i}" for i in
                                                        range(np.ndim(v))])), v[None, None])
                        for k, v in point.items()},
                       coords={d: list(c) for d, c in model.coords.items() if c is not None})
    # every parameter keeps the simulation's value (frozen), only ``name`` is drawn
    pp = pm.sample_posterior_predictive(trace, model=model, var_names=[name],
                                        freeze_vars=list(point), random_seed=seed,
                                        progressbar=False)
    return np.asarray(pp["posterior_predictive"][name].values[0, 0])


# ---------------------------------------------------------------------------- refits ---

_COMPILED: dict[str, tuple[Any, dict[str, str]]] = {}
"""Compiled models of this process, by :meth:`SBCProblem.key` (compiling costs 10-60 s)."""


def compiled_model(problem: SBCProblem):
    """The problem's model compiled by nutpie (cached per process) and the shared-variable
    name of each observed variable."""
    import nutpie

    key = problem.key()
    if key not in _COMPILED:
        model, data = problem.build()
        if len(_COMPILED) >= 4:
            _COMPILED.clear()
        _COMPILED[key] = (nutpie.compile_pymc_model(model, backend="numba"),
                          {name: shared.name for name, shared in data.items()})
    return _COMPILED[key]


def thin(draws: np.ndarray, size: int) -> np.ndarray:
    """``size`` draws evenly spaced over the chains-concatenated draws: ranks need roughly
    independent draws, so Talts et al. thin the autocorrelated chains."""
    flat = np.asarray(draws, dtype=float).reshape(-1)
    if size > len(flat):
        raise ValueError(f"cannot thin {len(flat)} draws to {size}")
    return flat[np.round(np.linspace(0, len(flat) - 1, size)).astype(int)]


def rank(draws: np.ndarray, truth: float) -> int:
    """Number of posterior draws below the true value (0..len(draws))."""
    return int(np.sum(np.asarray(draws) < truth))


def refit(sim: Simulation, context: tuple[SBCProblem, SBCSettings]) -> dict:
    """Sample the posterior of one simulation and rank its true parameters (a task of
    :func:`~bayes_pool.parallel.map_refits`; the result is JSON-ready)."""
    from bayes_pool.bayes.diagnostics import check, divergences, summarize
    from bayes_pool.bayes.sampling import mass_matrix, sample_nutpie

    problem, settings = context
    start = time.perf_counter()
    out: dict[str, Any] = {"index": sim.index, "seed": sim.seed, "truth": sim.truth}
    try:
        compiled, names = compiled_model(problem)
        compiled = compiled.with_data(**{names[k]: v for k, v in sim.data.items()},
                                      **problem.fit_overrides)
        idata = sample_nutpie(compiled, time_limit=settings.time_limit,
                              what=f"SBC simulation {sim.index}",
                              setting="SBCSettings.time_limit", draws=settings.draws,
                              tune=settings.tune, chains=settings.chains, cores=settings.cores,
                              seed=sim.seed, target_accept=problem.target_accept,
                              adaptation=mass_matrix(problem.adaptation, compiled.n_dim),
                              progress_bar=False)
        variables = list(problem.parameters.values())
        summ = summarize(idata, variables)
    except Exception as exc:  # noqa: BLE001 -- a failed refit is counted and reported
        out.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                   seconds=time.perf_counter() - start)
        return out
    n_div = divergences(idata)
    post = idata["posterior"]
    params = {}
    for label, var in problem.parameters.items():
        row = summ.loc[var]
        params[label] = {
            "rank": rank(thin(post[var].values, settings.thin_to), sim.truth[label]),
            "mean": float(row["mean"]), "sd": float(row["sd"]),
            "r_hat": float(row["r_hat"]), "ess_bulk": float(row["ess_bulk"]),
            "ess_tail": float(row["ess_tail"]),
            "converged": check(row, n_div, problem.convergence)}
    out.update(status="ok", error="", divergences=n_div, parameters=params,
               seconds=time.perf_counter() - start)
    return out


# ------------------------------------------------------------------------ uniformity ---

def uniformity(ranks, thin_to: int, *, bins: int = 20, band_prob: float = 0.99,
               seed: int = 0) -> dict:
    """Tests of ranks against the discrete uniform on 0..``thin_to``.

    ``chi2_p``: Pearson chi-square over ``bins`` bins of rank values (expected counts
    proportional to the values per bin); ``in_band``: the ECDF of the ranks' PIT
    ((rank + 0.5) / (L + 1)) stays inside the ``band_prob`` simultaneous band (Säilynoja et
    al. 2022, ``arviz_stats``); ``ecdf_p``: ArviZ's PIT uniformity test (``pot_c``); ``bias``
    mean PIT - 0.5 (posteriors too high when negative: truths rank low); ``spread``: SD of the
    PIT over the uniform's 1/sqrt(12) (> 1: posteriors too narrow).
    """
    from arviz_stats.base import array_stats
    from arviz_stats.ecdf_utils import ecdf_pit

    r = np.asarray(ranks)
    if r.ndim != 1 or not len(r):
        raise ValueError("ranks must be a non-empty 1-d array")
    if (r < 0).any() or (r > thin_to).any() or not np.all(r == np.round(r)):
        raise ValueError(f"ranks must be integers in 0..{thin_to}")
    r = r.astype(int)
    n, values = len(r), thin_to + 1
    bins = min(bins, values)
    edges = np.round(np.linspace(0, values, bins + 1)).astype(int)
    counts = np.histogram(r, bins=edges)[0]
    expected = n * np.diff(edges) / values
    chi2, chi2_p = stats.chisquare(counts, expected)
    pit = (r + 0.5) / values
    out = {"n": n, "bins": bins, "chi2": float(chi2), "chi2_df": bins - 1,
           "chi2_p": float(chi2_p), "in_band": None, "max_ecdf_diff": None, "ecdf_p": None,
           "bias": float(pit.mean() - 0.5), "spread": float(pit.std() * np.sqrt(12))}
    if n >= 5:  # the ECDF tests need a few values
        _, ecdf, lower, upper = ecdf_pit(pit, band_prob, 1000, rng=np.random.default_rng(seed))
        out.update(in_band=bool(np.all((ecdf >= lower) & (ecdf <= upper))),
                   max_ecdf_diff=float(np.max(np.abs(ecdf[1:-1] - np.arange(1, n) / n))),
                   ecdf_p=float(array_stats.uniformity_test(pit)[0]))
    return out


# --------------------------------------------------------------------------- results ---

@dataclass
class SBCResult:
    """Ranks of every simulation and parameter, with the refits' diagnostics."""

    problem: str
    settings: SBCSettings
    ranks: pd.DataFrame  # one row per simulation x parameter
    seconds: dict = field(default_factory=dict)
    convergence: Convergence = field(default_factory=Convergence)

    @property
    def parameters(self) -> list[str]:
        return list(dict.fromkeys(self.ranks["parameter"]))

    def counts(self) -> dict:
        """Simulations in all; failed (not ranked); among the ranked, those not converged
        (any ranked parameter misses a threshold of ``convergence``) and why: divergences,
        R-hat, ESS; and those whose bulk ESS is below L (the thinned draws are then still
        autocorrelated)."""
        c = self.convergence
        per_sim = self.ranks.groupby("sim").agg(
            status=("status", "first"), divergences=("divergences", "first"),
            converged=("converged", "all"), r_hat=("r_hat", "max"),
            ess_bulk=("ess_bulk", "min"), ess_tail=("ess_tail", "min"))
        ok = per_sim["status"] == "ok"
        ran = per_sim[ok]
        return {"simulations": len(per_sim), "failed": int((~ok).sum()),
                "not_converged": int((~ran["converged"].astype(bool)).sum()),
                "with_divergences": int((ran["divergences"] > c.max_divergences).sum()),
                "r_hat_above": int((ran["r_hat"] > c.max_r_hat).sum()),
                "ess_below": int(((ran["ess_bulk"] < c.min_ess_bulk)
                                  | (ran["ess_tail"] < c.min_ess_tail)).sum()),
                "ess_bulk_below_L": int((ran["ess_bulk"] < self.settings.thin_to).sum()),
                "thresholds": asdict(c)}

    def summary(self) -> pd.DataFrame:
        """Per parameter: :func:`uniformity` over the ranked simulations."""
        rows = []
        s = self.settings
        for p in self.parameters:
            ranks = self.ranks.loc[(self.ranks["parameter"] == p)
                                   & (self.ranks["status"] == "ok"), "rank"]
            rows.append({"problem": self.problem, "parameter": p,
                         **uniformity(ranks.to_numpy(), s.thin_to, bins=s.bins,
                                      band_prob=s.band_prob, seed=s.seed)})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        """Settings, counts, times and the per-parameter tests (for JSON)."""
        return {"problem": self.problem, "settings": asdict(self.settings),
                **self.counts(), "seconds": self.seconds,
                "uniformity": self.summary().to_dict(orient="records")}


def _rows(results: list[dict], problem: SBCProblem) -> pd.DataFrame:
    rows = []
    for res in results:
        for label in problem.parameters:
            base = {"sim": res["index"], "seed": res["seed"], "parameter": label,
                    "truth": res["truth"][label], "status": res["status"],
                    "error": res["error"] if res["status"] != "ok" else "",
                    "seconds": res["seconds"]}
            if res["status"] == "ok":
                base.update(divergences=res["divergences"], **res["parameters"][label])
            else:
                base.update(divergences=np.nan, rank=np.nan, mean=np.nan, sd=np.nan,
                            r_hat=np.nan, ess_bulk=np.nan, ess_tail=np.nan, converged=False)
            rows.append(base)
    cols = ["sim", "parameter", "truth", "rank", "mean", "sd", "r_hat", "ess_bulk", "ess_tail",
            "divergences", "converged", "status", "error", "seed", "seconds"]
    return pd.DataFrame(rows)[cols]


def run_sbc(problem: SBCProblem, settings: SBCSettings = SBCSettings(), *,
            workers: int | None = None, progress=None,
            refits_dir: str | Path | None = None) -> SBCResult:
    """Simulate ``settings.n_sims`` data sets, refit each (through
    :func:`~bayes_pool.parallel.map_refits`, ``workers`` as there) and collect the ranks.

    With ``refits_dir``, every finished refit is kept in ``refits_dir/<key>/`` as it arrives
    (:mod:`bayes_pool.checkpoint`; the key covers the problem, the settings and this code), so
    an interrupted calibration resumes with the refits it had and redoes none."""
    from bayes_pool.checkpoint import Checkpoint
    from bayes_pool.parallel import map_refits

    if settings.chains * settings.draws < settings.thin_to:
        raise SpecError(f"SBC needs at least L = {settings.thin_to} posterior draws; "
                        f"{settings.chains} chains x {settings.draws} draws is fewer")
    start = time.perf_counter()
    sims = simulate(problem, settings.n_sims, settings.seed)
    simulated = time.perf_counter()
    store = Checkpoint(Path(refits_dir) / checkpoint_key(problem, settings)) \
        if refits_dir else None
    results = map_refits(refit, sims, shared=(problem, settings), workers=workers,
                         progress=progress, checkpoint=store)
    end = time.perf_counter()
    refit_s = [r["seconds"] for r in results]
    return SBCResult(problem=problem.name, settings=settings, ranks=_rows(results, problem),
                     convergence=problem.convergence,
                     seconds={"simulate": round(simulated - start, 1),
                              "refits_wall": round(end - simulated, 1),
                              "refit_median": round(float(np.median(refit_s)), 2),
                              "total": round(end - start, 1)})


def checkpoint_key(problem: SBCProblem, settings: SBCSettings) -> str:
    """Checkpoint key of a calibration: the whole problem (including what only the fit
    overrides, which :meth:`SBCProblem.key` may leave out), the settings and the refit code."""
    from bayes_pool import checkpoint
    return checkpoint.key(refit, data=hashlib.sha256(pickle.dumps(problem)).hexdigest(),
                          seed=settings.seed, settings=asdict(settings))


# --------------------------------------------------------------------------- problems ---

def design_frame(*, n: int = 400, units: int = 8, periods: int = 3, adopters: int = 3,
                 covariates: int = 2, seed: int = 7) -> pd.DataFrame:
    """A SYNTHETIC panel design: rows spread over ``units`` x ``periods``, the first
    ``adopters`` units switching treatment on at staggered periods, ``covariates`` columns
    (``x1`` normal, ``x2`` 0/1, then normal), and placeholder ``y`` (0/1) and ``m`` (normal)
    columns, which every SBC simulation replaces."""
    rng = np.random.default_rng(seed)
    unit = np.arange(n) % units
    period = rng.integers(0, periods, n)
    adopt = {u: 1 + u % max(periods - 1, 1) for u in range(adopters)}
    frame = pd.DataFrame({
        "y": rng.integers(0, 2, n), "m": rng.normal(size=n),
        "treated": [int(u in adopt and p >= adopt[u]) for u, p in zip(unit, period)],
        "unit": [f"u{u}" for u in unit], "period": period})
    for j in range(covariates):
        frame[f"x{j + 1}"] = rng.binomial(1, 0.4, n) if j == 1 else rng.normal(size=n)
    return frame


@dataclass(frozen=True)
class DiDLogitProblem(_SpecProblem):
    """The benchmark DiD logit (:func:`bayes_pool.bayes.did.build_model`, with the spec's unit
    structure) with its outcome as shared data; ranks :attr:`parameters`."""

    prepared: Any
    spec: Any
    name: str = "did_logit"

    @property
    def parameters(self) -> dict[str, str]:
        """The treatment, intercept and unit SD; with correlated unit effects the coefficient
        of the treatment's unit mean; with the unit x time effect its SD."""
        from bayes_pool.bayes.did import unit_structure

        d = self.prepared.design
        out = {d.treatment: d.treatment, "Intercept": "Intercept",
               f"{d.unit}_sd": f"1|{d.unit}_sigma"}
        structure = unit_structure(self.prepared, self.spec)
        mean = structure.mean_of(d.treatment)
        if mean is not None:
            out[mean] = mean
        if structure.unit_time:
            out[f"{d.unit}_{d.time}_sd"] = f"1|{d.unit}:{d.time}_sigma"
        return out

    def build(self):
        import pymc as pm
        import pytensor

        from bayes_pool.bayes.did import build_model

        outcome = self.prepared.design.outcome
        model = build_model(self.prepared, self.spec).backend.model
        y = pytensor.shared(self.prepared.frame[outcome].to_numpy(), name=f"sbc_{outcome}")
        return pm.observe(model, {outcome: y}), {outcome: y}


@dataclass(frozen=True)
class MediationProblem(_SpecProblem):
    """The joint mediation model (:func:`bayes_pool.bayes.mediation.build_model`) with the
    standardised mediator and the outcome as shared data; the outcome is simulated after the
    mediator. Ranks a, b, d on the scale the model samples them (``med_treatment``,
    ``out_mediator``, ``out_treatment``: per SD of the mediator, logit scale)."""

    prepared: Any
    spec: Any
    name: str = "mediation"
    sequential: tuple[str, ...] = ("outcome",)

    @property
    def parameters(self) -> dict[str, str]:
        return {"a": "med_treatment", "b": "out_mediator", "d": "out_treatment"}

    def build(self):
        import pytensor

        from bayes_pool.bayes.mediation import build_model, model_data

        if self.prepared.design.items:
            raise SpecError("SBC of the mediation model covers the observed-mediator model; "
                            "the measurement model (items) is not supported")
        data = model_data(self.prepared)
        dtype = "int64" if self.prepared.design.family == "bernoulli" else "float64"
        m = pytensor.shared(data.m, name="sbc_mediator")
        y = pytensor.shared(data.y.astype(dtype), name="sbc_outcome")
        model = build_model(self.prepared, self.spec, replace(data, m=m, y=y))
        return model, {"mediator": m, "outcome": y}


def did_logit_problem(frame: pd.DataFrame | None = None, spec: str = "did_logit", *,
                      unit_time: bool | None = None, **design) -> DiDLogitProblem:
    """The DiD logit problem on :func:`design_frame` (``design`` passed there); ``unit_time``
    overrides the spec's unit x time effect."""
    from bayes_pool.design import DiDDesign
    from bayes_pool.specs import load_spec

    frame = design_frame(**design) if frame is None else frame
    covs = tuple(c for c in frame.columns if c.startswith("x"))
    prepared = DiDDesign(outcome="y", treatment="treated", unit="unit", time="period",
                         covariates=covs).prepare(frame)
    model_spec = load_spec(spec)
    if unit_time is not None:
        model_spec = replace(model_spec, unit_time=unit_time)
    name = "did_logit_unit_time" if model_spec.unit_time else "did_logit"
    return DiDLogitProblem(prepared=prepared, spec=model_spec, name=name)


def mediation_problem(frame: pd.DataFrame | None = None, spec: str = "mediation",
                      **design) -> MediationProblem:
    """The mediation problem on :func:`design_frame` (``design`` passed there)."""
    from bayes_pool.bayes.mediation import load_mediation_spec
    from bayes_pool.design.mediation import MediationDesign

    frame = design_frame(**design) if frame is None else frame
    covs = tuple(c for c in frame.columns if c.startswith("x"))
    prepared = MediationDesign(outcome="y", treatment="treated", mediator="m",
                               covariates=covs, unit="unit", time="period").prepare(frame)
    return MediationProblem(prepared=prepared, spec=load_mediation_spec(spec))
