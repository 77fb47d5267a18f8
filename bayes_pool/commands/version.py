"""`bayes-pool version`: print the package version."""

from __future__ import annotations

from bayes_pool import __version__
from bayes_pool.commands.common import command, out


@command("version")
def version():
    """Print the version."""
    out.print(__version__)
