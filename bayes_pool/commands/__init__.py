"""Further `bayes-pool` commands, one module each.

Every module in this package defines ``register(app)``, which adds its command(s) to the Typer
app; ``bayes_pool.cli`` calls them all at import, so a new command is a new file here.
"""

from __future__ import annotations

import importlib
import pkgutil


def register_all(app) -> None:
    """Add the commands of every module in this package to ``app`` (in name order)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}").register(app)
