"""The `bayes-pool` commands, one module each.

Every command module defines ``register(app)``, which adds its command(s) to the Typer app;
``bayes_pool.cli`` calls them all at import, so a new command is a new file here. ``common``
(consoles, option types, the helpers every command uses), ``generic`` (the path of the
commands on a user's file) and ``invocation`` (the record that ``rerun`` repeats) hold no
command.
"""

from __future__ import annotations

import importlib
import pkgutil

HELPERS = frozenset({"common", "generic", "invocation"})
"""Modules of this package that hold no command."""

ORDER = ("simulate", "run", "compare", "did", "psm", "mediate", "rerun", "version", "report",
         "sensitivity", "studies")
"""The order of ``bayes-pool --help``: a study's workflow, the generic analyses, then the
rest; a module not named here comes last."""


def register_all(app) -> None:
    """Add the commands of every command module in this package to ``app``, in ``ORDER``."""
    names = {m.name for m in pkgutil.iter_modules(__path__)} - HELPERS
    for name in sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        importlib.import_module(f"{__name__}.{name}").register(app)
