"""The invocation record a command writes into its manifest: the arguments that decide its
numbers, with paths made absolute, so that `bayes-pool rerun` can repeat it from anywhere."""

from __future__ import annotations

from pathlib import Path

PATH_ARGS = {"data", "mapping", "priors_dir", "published"}
TOML_ARGS = {"spec", "model", "priors"}
"""Arguments naming specs or prior sets: names, or .toml paths that a rerun must find from
any directory (comma lists for ``priors``)."""
GATE_ARGS = ["max_r_hat", "min_ess", "max_divergences"]
LABEL_ARGS = ["categorical", "reference", "table", "column"]
INVOCATION_ARGS = {
    "run": ["study", "data", "mapping", "seed", "spec", "draws", "tune", "chains", "only",
            "placebo_draws", "workers", "mediation_model", *GATE_ARGS],
    "did": ["data", "outcome", "treatment", "unit", "time_col", "covariates", "family",
            "mapping", "seed", "spec", "draws", "tune", "chains", "cohort", "staggered",
            "event_study", "control", "id_col", *GATE_ARGS, *LABEL_ARGS, "approx",
            "frequentist_only", "published", "vcov", "cluster", "unit_effects"],
    "psm": ["data", "treatment", "outcome", "covariates", "categorical", "reference", "exact",
            "mapping", "seed", "bootstrap", "draws", "tune", "chains", "frequentist_only",
            "id_col", *GATE_ARGS, "table", "published"],
    "mediate": ["data", "treatment", "mediator", "outcome", "covariates", "outcome_family",
                "unit", "time_col", "mapping", "seed", "bootstrap", "draws", "tune", "chains",
                "frequentist_only", "id_col", *GATE_ARGS, *LABEL_ARGS, "published", "vcov"],
    "sensitivity": ["study", "model", "priors", "priors_dir", "data", "mapping", "seed", "draws",
                    "tune", "chains", "workers", "prior_draws", "checks"],
}
"""The arguments of each command that decide its numbers: what ``rerun`` hands back."""


def invocation(command: str, scope: dict) -> dict:
    """The command and the arguments that decide its numbers, for ``rerun``."""
    args = {k: (str(scope[k]) if isinstance(scope[k], Path) else scope[k])
            for k in INVOCATION_ARGS[command]}
    for k in PATH_ARGS & set(args):
        if args[k] is not None:
            args[k] = str(Path(args[k]).resolve())
    for k in TOML_ARGS & set(args):
        if args[k] is not None:
            args[k] = ",".join(resolve_toml(x.strip()) for x in args[k].split(","))
    return {"command": command, "args": args}


def resolve_toml(name_or_path: str) -> str:
    """A spec or prior set name as given; a path to one, absolute."""
    from bayes_pool.specs import is_path
    return str(Path(name_or_path).resolve()) if is_path(name_or_path) else name_or_path


