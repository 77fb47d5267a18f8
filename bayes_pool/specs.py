"""Model specs: TOML files in ``models/`` loaded into frozen records.

A spec says which family, priors (by role: intercept, treatment, covariates, time, unit_sd),
sampler settings and convergence thresholds a Bayesian fit uses, and which published table it
answers. The same record is written into each run's ``manifest.json``.

The specs ship inside the package as ``bayes_pool/models`` and are read with
:mod:`importlib.resources`, so an installed wheel finds them. In a checkout
``bayes_pool/models`` is a symbolic link to the top-level ``models/``, the one copy a user
edits; building a wheel copies the files in. A user's own spec is a TOML path, or a name
looked up first in a folder of their own (``load_spec(name, folder=...)``).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal, get_args

from bayes_pool.errors import SpecError
from bayes_pool.mundlak import UNIT_EFFECTS

MODELS_DIR: Traversable = resources.files("bayes_pool") / "models"
"""The specs shipped with the package (in a checkout: the top-level ``models/``, linked)."""

Backend = Literal["nutpie", "pymc"]
BACKENDS: tuple[str, ...] = get_args(Backend)
PRIOR_ROLES: tuple[str, ...] = ("intercept", "treatment", "covariates", "time", "unit_sd", "sigma",
                                 "unit_means", "unit_time_sd", "nu")
"""Roles a prior is given by. ``unit_means``: the coefficients of the unit means of the
correlated random effects (:mod:`bayes_pool.mundlak`); ``unit_time_sd``: the SD of the
optional unit x time effect (``[model] unit_time = true``); ``nu``: the degrees of freedom of
a Student-t likelihood (``family = "t"``)."""

LIKELIHOODS: dict[str, str] = {"bernoulli": "Bernoulli (logit link)",
                               "gaussian": "Normal likelihood", "t": "Student-t likelihood"}
"""What each spec ``family`` means, for the rows' notes. ``t`` is a likelihood for a
continuous outcome: its design is ``gaussian`` (the frequentist side is OLS)."""


def design_family(family: str) -> str:
    """The design family of a spec family: ``gaussian`` for the Student-t likelihood."""
    return "gaussian" if family == "t" else family


ADAPTATIONS: tuple[str, ...] = ("auto", "low_rank", "diag")
PARAMETERIZATIONS: tuple[str, ...] = ("auto", "centered", "noncentered")


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings passed straight through to Bambi/PyMC.

    ``adaptation`` is nutpie's mass-matrix adaptation: ``"low_rank"`` (diagonal plus a
    low-rank correction learnt from draws and gradients), ``"diag"``, or ``"auto"`` (the
    default: low rank for models of up to
    :data:`~bayes_pool.bayes.sampling.LOW_RANK_MAX_DIM` parameters, diagonal above; see
    :func:`~bayes_pool.bayes.sampling.mass_matrix`). PyMC's own sampler always adapts a
    diagonal. ``time_limit``
    is the wall-clock limit of one fit in seconds (0: none), see
    :mod:`bayes_pool.bayes.sampling`. ``parameterization`` is how the unit intercepts are
    written for the sampler (same posterior), see :mod:`bayes_pool.bayes.parameterization`.
    ``cores`` is how many chains run at once (at most ``chains``).
    """

    backend: Backend = "nutpie"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.8
    adaptation: str = "auto"
    time_limit: float = 1800.0
    parameterization: str = "auto"
    cores: int = 2

    def __post_init__(self):
        if self.parameterization not in PARAMETERIZATIONS:
            raise SpecError(f"sampler parameterization must be one of {list(PARAMETERIZATIONS)}, "
                            f"got {self.parameterization!r}")
        if self.adaptation not in ADAPTATIONS:
            raise SpecError(f"sampler adaptation must be one of {list(ADAPTATIONS)}, got "
                            f"{self.adaptation!r}")
        if not isinstance(self.cores, int) or self.cores < 1:
            raise SpecError(f"sampler cores must be an integer >= 1, got {self.cores!r}")
        if not isinstance(self.time_limit, (int, float)) or self.time_limit < 0:
            raise SpecError(f"sampler time_limit must be seconds >= 0 (0 = no limit), got "
                            f"{self.time_limit!r}")

    def nuts_options(self) -> dict:
        """The ``nuts=`` options of ``pm.sample``/Bambi's ``fit`` for this backend."""
        options = {"target_accept": self.target_accept}
        if self.backend == "nutpie":
            options["adaptation"] = self.adaptation
        return options


@dataclass(frozen=True)
class Convergence:
    """Thresholds a posterior must meet to be reported as converged."""

    max_r_hat: float = 1.01
    min_ess_bulk: float = 400
    min_ess_tail: float = 400
    max_divergences: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """A declarative Bayesian model: family, priors by role, sampler, convergence, provenance."""

    name: str
    family: str = "bernoulli"
    description: str = ""
    priors: dict = field(default_factory=dict)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    convergence: Convergence = field(default_factory=Convergence)
    answers: dict = field(default_factory=dict)
    path: str = ""
    unit_effects: str = "correlated"
    """How unit intercepts are modelled: ``correlated`` (partially pooled around the unit means
    of the regressors, :mod:`bayes_pool.mundlak`), ``exchangeable`` (``(1|unit)`` alone) or
    ``fixed`` (unit dummies, not pooled: few units; the plain DiD only)."""
    unit_time: bool = False
    """Add a partially pooled unit x time effect ``(1|unit:time)``: the posterior then carries
    the variance of shocks shared by a unit's rows in one period."""

    def __post_init__(self):
        if self.unit_effects not in UNIT_EFFECTS:
            raise SpecError(f"spec {self.name!r}: [model] unit_effects must be one of "
                            f"{list(UNIT_EFFECTS)}, got {self.unit_effects!r}")
        if not isinstance(self.unit_time, bool):
            raise SpecError(f"spec {self.name!r}: [model] unit_time must be true or false, got "
                            f"{self.unit_time!r}")

    def to_dict(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)

    def with_priors(self, overrides: dict) -> ModelSpec:
        """A copy whose priors of the given roles are replaced (e.g. by a prior set from
        ``models/priors/``, see :mod:`bayes_pool.priors`); other roles keep the spec's."""
        from dataclasses import replace
        check_priors(overrides, f"priors for spec {self.name!r}", numeric=True)
        return replace(self, priors={**self.priors, **overrides})

    def with_sampler(self, **changes) -> ModelSpec:
        """A copy with some sampler settings changed (e.g. fewer draws in a quick run)."""
        from dataclasses import replace
        return replace(self, sampler=replace(self.sampler, **changes))

    def with_unit_effects(self, unit_effects: str | None) -> ModelSpec:
        """A copy with ``unit_effects`` changed (None: the spec's own)."""
        from dataclasses import replace
        return self if unit_effects is None else replace(self, unit_effects=unit_effects)


def require_pooled(spec: ModelSpec, what: str) -> None:
    """Raise :class:`SpecError` when ``spec`` asks for fixed unit effects or a Student-t
    likelihood, which only the plain DiD's model has, for the analysis ``what``."""
    if spec.unit_effects == "fixed":
        raise SpecError(f"unit_effects = \"fixed\" (--unit-effects fixed) is available for the "
                        f"plain DiD only, not for {what}; use correlated or exchangeable")
    if spec.family == "t":
        raise SpecError(f"family \"t\" (a Student-t likelihood) is available for the plain DiD "
                        f"only, not for {what}; use gaussian")


APPROXIMATIONS: tuple[str, ...] = ("laplace",)
"""Stand-ins for NUTS a DiD fit can take (``bayes-pool did --approx``)."""


def check_approx(approx: str | None, family: str) -> None:
    """Raise :class:`SpecError` unless ``approx`` is None or an approximation for ``family``
    (Laplace approximates the logit only). Light on imports, so the CLI can call it before
    any run folder or model exists."""
    if approx is None:
        return
    if approx not in APPROXIMATIONS:
        raise SpecError(f"--approx {approx!r}: the only approximation is 'laplace'")
    if family != "bernoulli":
        raise SpecError("--approx laplace approximates the logit: use it with "
                        "--family bernoulli")


def check_priors(priors: dict, where: str, *, numeric: bool = False) -> None:
    """Raise :class:`SpecError` unless every key is a role of :data:`PRIOR_ROLES` and every value
    ``"default"`` or a table with ``dist`` (and, with ``numeric``, only numeric parameters)."""
    bad = set(priors) - set(PRIOR_ROLES)
    if bad:
        raise SpecError(f"{where}: unknown prior role(s) {sorted(bad)}; valid: {list(PRIOR_ROLES)}")
    for role, prior in priors.items():
        if prior != "default" and not (isinstance(prior, dict) and "dist" in prior):
            raise SpecError(f"{where}: prior {role!r} must be \"default\" or a table with 'dist', "
                            f"e.g. {{ dist = \"Normal\", mu = 0, sigma = 2.5 }}; got {prior!r}")
        if numeric and isinstance(prior, dict):
            odd = {k: v for k, v in prior.items() if k != "dist"
                   and not (isinstance(v, (int, float)) and not isinstance(v, bool))}
            if odd:
                raise SpecError(f"{where}: prior {role!r} has non-numeric parameter(s) {odd}")


def toml_files(folder: Traversable | str | Path) -> dict[str, Traversable]:
    """The ``*.toml`` files directly in ``folder`` (a path or a package resource), by stem."""
    folder = Path(folder) if isinstance(folder, (str, Path)) else folder
    if not folder.is_dir():
        return {}
    return {f.name.removesuffix(".toml"): f for f in folder.iterdir()
            if f.name.endswith(".toml") and f.is_file()}


def is_path(name_or_path: str | Path) -> bool:
    """Whether a spec or prior set is given by file (a ``.toml`` name, or one with a folder in
    it) rather than by name."""
    path = Path(name_or_path)
    return path.suffix == ".toml" or len(path.parts) > 1


def find_toml(name_or_path: str | Path, folders: list, what: str) -> Traversable:
    """A TOML file given by path (:func:`is_path`) or by name, looked up in ``folders`` in
    order; :class:`SpecError` naming the folders and what they hold when it is not found."""
    if is_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise SpecError(f"{what} file {str(path)!r} not found")
        return path
    for folder in folders:
        found = toml_files(folder).get(str(name_or_path))
        if found is not None:
            return found
    held = {str(f): sorted(toml_files(f)) for f in folders}
    raise SpecError(f"{what} {str(name_or_path)!r} not found; give a .toml path or one of the "
                    f"names in {held}")


def load_spec(name_or_path: str | Path, folder: str | Path | None = None) -> ModelSpec:
    """Load a spec by file path or by name: ``<folder>/<name>.toml`` when ``folder`` is given
    and holds it, else the shipped ``models/<name>.toml``; unknown keys raise."""
    folders = ([Path(folder)] if folder is not None else []) + [MODELS_DIR]
    path = find_toml(name_or_path, folders, "model spec")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from exc
    return spec_from_dict(raw, path=str(path))


def spec_from_dict(raw: dict, path: str = "") -> ModelSpec:
    """Build a :class:`ModelSpec` from the TOML tables ``model``, ``priors``, ``sampler``,
    ``convergence`` and ``answers``; unknown tables, keys or prior roles raise :class:`SpecError`."""
    where = path or "spec"
    allowed = {"model", "priors", "sampler", "convergence", "answers"}
    if set(raw) - allowed:
        raise SpecError(f"{where}: unknown table(s) {sorted(set(raw) - allowed)}; valid: {sorted(allowed)}")
    model = dict(raw.get("model", {}))
    if "name" not in model:
        raise SpecError(f"{where}: [model] needs a name")
    priors = dict(raw.get("priors", {}))
    check_priors(priors, where)
    try:
        sampler = SamplerSettings(**raw.get("sampler", {}))
        convergence = Convergence(**raw.get("convergence", {}))
        spec = ModelSpec(name=model.pop("name"), priors=priors, sampler=sampler,
                         convergence=convergence, answers=dict(raw.get("answers", {})),
                         path=path, **model)
    except TypeError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    if spec.sampler.backend not in BACKENDS:
        raise SpecError(f"{where}: sampler backend must be one of {sorted(BACKENDS)}, "
                        f"got {spec.sampler.backend!r}")
    return spec
