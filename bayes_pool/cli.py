"""`bayes-pool`: the Typer app and its entry point; each command is a module of
:mod:`bayes_pool.commands`.

Every command checks its input before it creates anything under ``outputs/``; a rejected input
exits with code 2 and a message naming the column, the values and the row count.
"""

from __future__ import annotations

import inspect
import logging

import typer

from bayes_pool import runs
from bayes_pool.commands import register_all
from bayes_pool.commands.common import console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Bayesian reanalysis of published studies next to frequentist "
                       "replications and the published numbers.")
register_all(app)


def _reflowed(doc: str | None) -> str:
    """A docstring with each paragraph on one line: Typer keeps the source's line breaks in
    the command list and in all but the first paragraph, which would break sentences."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


for _info in app.registered_commands:
    _info.help = _reflowed(_info.help or _info.callback.__doc__)


def main():  # pragma: no cover
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except runs.RunInterrupted as exc:
        console.print(f"[bold red]{exc}[/]: the run folder was removed; earlier runs are untouched")
        raise SystemExit(130) from None


if __name__ == "__main__":  # pragma: no cover
    main()
