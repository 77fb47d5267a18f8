"""docs/quickstart.py runs from top to bottom, as a user would run it, and its numbers are
the analyses' own: it is the executed documentation of the public API."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib
import numpy as np
import pytest

QUICKSTART = Path(__file__).resolve().parents[1] / "docs" / "quickstart.py"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """The quickstart's namespace and what it printed, run in an empty folder with the Agg
    backend (the test's choice: the library sets none)."""
    import contextlib
    import io
    import os

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder = tmp_path_factory.mktemp("quickstart")
    printed, cwd = io.StringIO(), os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(printed):
            namespace = runpy.run_path(str(QUICKSTART), run_name="__main__")
    finally:
        os.chdir(cwd)
    yield namespace, printed.getvalue(), folder
    plt.close("all")


def test_quickstart_fits_prints_and_draws_without_writing(quickstart):
    ns, printed, folder = quickstart
    assert list(folder.iterdir()) == []  # figures drawn, nothing written
    for name in ("did", "psm", "mediation"):
        result = ns[name]
        assert result.summary() in printed  # each summary printed as .summary() gives it
    assert isinstance(ns["fig"], matplotlib.figure.Figure)
    did_rows = ns["did_table"].set_index(["term", "quantity", "source"])
    assert {"frequentist", "bayesian"} == set(ns["did_table"]["source"])
    assert ns["did"].idata is not None and ns["psm"].idata is None
    assert set(ns["psm_table"]["table"]) == {"psm", "psm_balance"}
    assert len(ns["did_diagnostics"]) == (ns["did_table"]["source"] == "bayesian").sum()
    # the generated truths are where the intervals put them
    beta = did_rows.loc[("pooled", "beta", "frequentist")]
    assert beta["ci_low"] < ns["TRUE_BETA"] < beta["ci_high"]
    med = ns["mediation_table"].query("table == 'mediation' and quantity == 'direct'")
    assert ((med["ci_low"] < ns["TRUE_DIRECT"]) & (ns["TRUE_DIRECT"] < med["ci_high"])).all()
    att = ns["psm_table"].query("table == 'psm' and quantity == 'att'")
    assert ((att["ci_low"] < ns["TRUE_ATT"]) & (ns["TRUE_ATT"] < att["ci_high"])).all()


def test_quickstart_mediation_plot_shows_its_table(quickstart):
    """The last figure the quickstart draws is the mediation forest: its markers sit at the
    indirect, direct and total effects of the table."""
    ns, _, _ = quickstart
    ax = ns["ax"]
    table = ns["mediation_table"].query("table == 'mediation' and "
                                        "quantity in ('indirect', 'direct', 'total')")
    for source in ("frequentist", "bayesian"):
        (dots,) = [c for c in ax.collections if c.get_gid() == source]
        np.testing.assert_allclose(dots.get_offsets()[:, 0],
                                   table.loc[table["source"] == source, "estimate"])
