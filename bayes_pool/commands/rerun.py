"""`bayes-pool rerun MANIFEST`: repeat an earlier run from the invocation in its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayes_pool.commands.common import OutOpt, StrictOpt, command, fail
from bayes_pool.commands.invocation import INVOCATION_ARGS, PATH_ARGS
from bayes_pool.errors import BayesPoolError


@command("rerun")
def rerun(manifest: Annotated[Path, typer.Argument(help="manifest.json of an earlier run.")],
          out_dir: OutOpt = None, strict: StrictOpt = False):
    """Repeat an earlier run from its manifest into a new folder.

    Same command (run, did, psm, mediate or sensitivity), data, seed, spec and sampler; with
    the same data and machine the estimates are identical."""
    import json
    try:
        recorded = json.loads(Path(manifest).read_text())
        invocation = recorded["invocation"]
    except (OSError, ValueError, KeyError) as exc:
        fail(BayesPoolError(f"{manifest}: not a bayes_pool run manifest with an 'invocation' "
                            f"record ({exc})"))
    commands = rerunnable()
    name = invocation.get("command")
    if name not in commands:
        fail(BayesPoolError(f"{manifest}: command {name!r} cannot be rerun; rerun repeats "
                            f"{sorted(commands)}"))
    args = {k: (Path(v) if k in PATH_ARGS and v is not None else v)
            for k, v in invocation["args"].items()}
    args["out_dir"] = out_dir
    if name == "sensitivity":
        if strict:
            fail(BayesPoolError("--strict: sensitivity has no convergence exit code; read "
                                "the converged column of its sensitivity.csv"))
    else:
        args["strict"] = strict
    commands[name](**args)


def rerunnable() -> dict:
    """The commands that record an invocation in their manifest, by name: the function of
    that name in ``bayes_pool.commands.<name>``, looked up when called."""
    import importlib
    return {name: getattr(importlib.import_module(f"bayes_pool.commands.{name}"), name)
            for name in INVOCATION_ARGS}
