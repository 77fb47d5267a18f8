"""Named prior sets: TOML files in ``models/priors/`` that override a model spec's priors by role.

A set is data, so a user adds one by adding a file ``models/priors/<name>.toml``::

    [set]
    description = "sceptical: treatment ~ Normal(0, 0.1) on the logit scale"

    [priors]                 # roles of bayes_pool.specs.PRIOR_ROLES; others keep the spec's
    treatment = { dist = "Normal", mu = 0.0, sigma = 0.1 }

    [gaussian]               # optional: replaces roles for models of that family
    treatment = { dist = "Normal", mu = 0.0, sigma = { ref = "sd_y", times = 0.05 } }

A parameter may be a number or a reference ``{ ref = NAME, times = k }`` resolved when the set is
applied to a model and data (:data:`REFS`): the published estimate and SE of the cell being
re-analysed (read from the study's ledger, never typed twice) or the outcome's SD.
An empty ``[priors]`` (``default.toml``) keeps the spec's own priors.

The shipped sets are package data (``bayes_pool/models/priors``, read with
:mod:`importlib.resources`); every function also takes a ``folder`` of the user's own sets, and a
set may be named by its ``.toml`` path.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

from bayes_pool.errors import SpecError
from bayes_pool.specs import (MODELS_DIR, PRIOR_ROLES, ModelSpec, check_priors, design_family,
                               find_toml, toml_files)

PRIORS_DIR: Traversable = MODELS_DIR / "priors"
"""Where the shipped prior sets live (package data)."""

Folder = Traversable | str | Path

REFS: dict[str, str] = {
    "published_estimate": "the published estimate of the key coefficient (study ledger)",
    "published_se": "its published standard error",
    "sd_y": "the standard deviation of the outcome in the estimation sample",
}
"""Names a prior parameter may refer to, resolved per model and data."""

FAMILIES = ("bernoulli", "gaussian")
DEFAULT_SET = "default"


@dataclass(frozen=True)
class PriorSet:
    """A named set of prior overrides by role, with optional per-family replacements."""

    name: str
    description: str = ""
    priors: dict = field(default_factory=dict)
    families: dict = field(default_factory=dict)
    path: str = ""

    def for_family(self, family: str) -> dict:
        """The overrides for a model of ``family`` (references still unresolved); a
        Student-t model (``t``) takes the ``[gaussian]`` table: both are on the outcome's scale."""
        return {**self.priors, **self.families.get(design_family(family), {})}

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "priors": self.priors,
                "families": self.families, "path": self.path}


def available(folder: Folder | None = None) -> list[str]:
    """Names of the prior sets in ``folder`` (None: the shipped ones), ``default`` first."""
    names = sorted(toml_files(PRIORS_DIR if folder is None else folder))
    return sorted(names, key=lambda n: n != DEFAULT_SET)


def load_prior_set(name_or_path: str | Path, folder: Folder | None = None) -> PriorSet:
    """Load a set by ``.toml`` path or by name: ``<folder>/<name>.toml`` if ``folder`` holds
    it, else the shipped ``models/priors/<name>.toml``. Unknown names, tables, roles or
    references raise :class:`SpecError`."""
    folders = [PRIORS_DIR] if folder is None else [folder, PRIORS_DIR]
    path = find_toml(name_or_path, folders, "prior set")
    stem = path.name.removesuffix(".toml")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from exc
    allowed = {"set", "priors", *FAMILIES}
    if set(raw) - allowed:
        raise SpecError(f"{path}: unknown table(s) {sorted(set(raw) - allowed)}; "
                        f"valid: {sorted(allowed)}")
    where = f"prior set {stem!r} ({path})"
    priors = dict(raw.get("priors", {}))
    families = {f: dict(raw[f]) for f in FAMILIES if f in raw}
    for table in [priors, *families.values()]:
        check_priors(table, where)
        for role, prior in table.items():
            for key, value in (prior.items() if isinstance(prior, dict) else ()):
                if key != "dist":
                    _check_value(value, f"{where}, role {role!r}, parameter {key!r}")
    return PriorSet(name=stem, description=str(raw.get("set", {}).get("description", "")),
                    priors=priors, families=families, path=str(path))


def _check_value(value, where: str) -> None:
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a number or {{ ref = ..., times = ... }}, got {value!r}")
    if isinstance(value, (int, float)):
        return
    if not (isinstance(value, dict) and "ref" in value and set(value) <= {"ref", "times"}):
        raise SpecError(f"{where}: expected a number or {{ ref = NAME, times = k }}, got {value!r}")
    if value["ref"] not in REFS:
        raise SpecError(f"{where}: unknown reference {value['ref']!r}; valid: {sorted(REFS)}")


def select(which: str | None, folder: Folder | None = None) -> list[PriorSet]:
    """The sets named by ``"all"`` (or None: every set in ``folder``, by default the shipped
    ones) or a comma-separated list of names or ``.toml`` paths, in that order."""
    if which is None or which.strip() == "all":
        names = available(folder)
    else:
        names = [n.strip() for n in which.split(",") if n.strip()]
        if not names:
            raise SpecError(f"no prior set named in {which!r}; sets: {available(folder)}")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SpecError(f"prior set(s) {dup} named twice")
    return [load_prior_set(n, folder) for n in names]


def applicable(prior_set: PriorSet, family: str, roles: tuple[str, ...] | list[str]) -> bool:
    """Whether the set changes something in a model with these roles (the default always is)."""
    overrides = prior_set.for_family(family)
    return not overrides or bool(set(overrides) & set(roles))


def resolve(overrides: dict, refs: dict[str, float], where: str = "prior set") -> dict:
    """Replace every ``{ ref, times }`` parameter by ``times * refs[ref]``."""
    out = {}
    for role, prior in overrides.items():
        if not isinstance(prior, dict):
            out[role] = prior
            continue
        params = {}
        for key, value in prior.items():
            if isinstance(value, dict):
                name = value["ref"]
                if name not in refs or refs[name] is None or refs[name] != refs[name]:
                    raise SpecError(f"{where}: role {role!r} needs {name!r} ({REFS[name]}), "
                                    "which this model and data do not provide")
                value = float(value.get("times", 1.0)) * float(refs[name])
            params[key] = value
        out[role] = params
    return out


def apply_prior_set(spec: ModelSpec, prior_set: PriorSet, *, roles: tuple[str, ...] | list[str],
                    refs: dict[str, float] | None = None) -> ModelSpec:
    """The spec with the set's priors for the roles this model has (``roles``).

    Roles of the set the model does not have are ignored (a province-scale set on a model
    without provinces); a set none of whose roles the model has raises :class:`SpecError`.
    """
    bad = sorted(set(roles) - set(PRIOR_ROLES))
    if bad:
        raise SpecError(f"model roles {bad} are not prior roles; valid: {list(PRIOR_ROLES)}")
    if not applicable(prior_set, spec.family, roles):
        raise SpecError(f"prior set {prior_set.name!r} sets {sorted(prior_set.for_family(spec.family))}"
                        f", none of which model {spec.name!r} has (its roles: {sorted(roles)})")
    overrides = {r: p for r, p in prior_set.for_family(spec.family).items() if r in roles}
    resolved = resolve(overrides, refs or {}, where=f"prior set {prior_set.name!r}")
    return spec.with_priors(resolved)
