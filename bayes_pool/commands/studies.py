"""`bayes-pool studies`: list the built-in studies from their records."""

from __future__ import annotations

from bayes_pool.commands.common import command, flag, out


@command("studies")
def studies_cmd():
    """List the built-in studies: id, title, run parts and run options."""
    from rich.table import Table

    from bayes_pool import studies
    table = Table(title="Studies (bayes-pool run STUDY)")
    for col in ("id", "title", "parts (--only)", "options"):
        table.add_column(col)
    for s in studies.STUDIES.values():
        table.add_row(s.id, s.title, ", ".join(s.parts) or "–",
                      ", ".join(flag(o) for o in s.options) or "–")
    out.print(table)
