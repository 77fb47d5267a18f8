"""The `bayes-pool` commands, one module each.

A command module declares its command with ``@command("name")``
(:func:`bayes_pool.commands.common.command`); ``bayes_pool.cli`` calls :func:`register_all`
at import, so a new command is a new file here. ``common`` (consoles, option types, the
helpers every command uses), ``generic`` (the path of the commands on a user's file) and
``invocation`` (the record that ``rerun`` repeats) hold no command.
"""

from __future__ import annotations

import importlib
import pkgutil

HELPERS = frozenset({"common", "generic", "invocation"})
"""Modules of this package that hold no command."""

ORDER = ("simulate", "run", "compare", "did", "psm", "mediate", "rerun", "version", "report",
         "sensitivity", "robustness", "studies")
"""The order of ``bayes-pool --help``: a study's workflow, the generic analyses, then the
rest; a command not named here comes last."""


def register_all(app) -> None:
    """Import every command module of this package and add the commands they declare to
    ``app``, in ``ORDER``."""
    from bayes_pool.commands.common import COMMANDS
    for info in pkgutil.iter_modules(__path__):
        if info.name not in HELPERS:
            importlib.import_module(f"{__name__}.{info.name}")
    for name in sorted(COMMANDS, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        app.command(name)(COMMANDS[name])
