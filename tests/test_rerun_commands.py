"""Byte-identical reruns (issue 18 item 2) and neutral labels of generic runs (item 4).

Every command, run twice with the same data and seed, writes the same ``estimates.csv``
bytes. These run in one process, where PyTensor's numba cache is warm for the second run;
the root cause of the reported difference (fast-math code compiled fresh vs loaded from
that cache) needs two processes and a cold cache, which ``tests/test_rerun_numerics.py``
covers. Each generic run is also checked to label its rows by the analysis, never by a
study's table number. ``run pooling-did`` twice is
``tests/test_pooling_did_table3.py::test_run_twice_same_seed_identical_estimates``; the
sensitivity and ``run smi-psm`` reruns are in the slow tier. The data are SYNTHETIC.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool.cli import app
from tests.conftest import make_panel, point_outputs
from tests.test_categorical import cross_section, panel_30x3

runner = CliRunner()
QUICK = ["--chains", "2", "--draws", "150", "--tune", "150"]
GENERIC_TABLES = {"did", "event_study", "staggered", "psm", "psm_balance", "mediator_model",
                  "outcome_model", "mediation"}


def _twice(tmp_path, monkeypatch, args: list[str]) -> pd.DataFrame:
    """Run ``args`` twice into separate folders (and separate outputs/, so no refit
    checkpoint of the first run is read back by the second); assert equal estimates bytes."""
    written = []
    for k in (1, 2):
        point_outputs(monkeypatch, tmp_path / f"outputs{k}")
        out = tmp_path / f"run{k}"
        res = runner.invoke(app, [*args, "--out", str(out)])
        assert res.exit_code == 0, res.output
        written.append((out / "estimates.csv").read_bytes())
    assert written[0] == written[1]
    est = pd.read_csv(tmp_path / "run1" / "estimates.csv")
    assert (est["source"] == "bayesian").any()
    return est


def _neutral(est: pd.DataFrame) -> None:
    """Generic rows are labelled by analysis: no table is a number or a study figure."""
    tables = set(est["table"].astype(str))
    assert tables <= GENERIC_TABLES, tables
    assert not any(re.fullmatch(r"\d+|fig\d+", t) for t in tables)


def _csv(tmp_path, frame: pd.DataFrame) -> str:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _did(path: str, family: str) -> list[str]:
    return ["did", "--data", path, "--outcome", "y", "--treatment", "treated", "--unit",
            "county", "--time", "wave", "--family", family, "--seed", "7", *QUICK]


def test_did_gaussian_30_units_3_periods_reruns_identically(tmp_path, monkeypatch):
    est = _twice(tmp_path, monkeypatch, _did(_csv(tmp_path, panel_30x3()), "gaussian"))
    _neutral(est)
    assert set(est["column"]) == {"gaussian"}


@pytest.mark.slow  # the gaussian did rerun (the one that differed) stays fast
def test_did_bernoulli_reruns_identically(tmp_path, monkeypatch):
    frame, _ = make_panel(seed=11, n=600)
    est = _twice(tmp_path, monkeypatch, [*_did(_csv(tmp_path, frame), "bernoulli"),
                                         "--covariates", "x1,x2"])
    _neutral(est)


@pytest.mark.slow  # moved out of the fast tier: minutes of sampling (fast tier <= ~10 min)
@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_did_staggered_and_event_study_rerun_identically(tmp_path, monkeypatch, family):
    if family == "gaussian":
        frame = panel_30x3()
    else:
        frame, _ = make_panel(seed=11, n=900)
        first = {f"c{u:02d}": (2 if u < 3 else 3 if u < 6 else 0) for u in range(12)}
        frame["cohort"] = frame["county"].map(first)
    est = _twice(tmp_path, monkeypatch, [*_did(_csv(tmp_path, frame), family), "--cohort",
                                         "cohort", "--staggered", "--event-study"])
    _neutral(est)
    assert {"did", "event_study", "staggered"} <= set(est["table"])


@pytest.mark.slow  # moved out of the fast tier: minutes of sampling (fast tier <= ~10 min)
def test_psm_reruns_identically(tmp_path, monkeypatch):
    path = _csv(tmp_path, cross_section(n=500))
    est = _twice(tmp_path, monkeypatch, [
        "psm", "--data", path, "--treatment", "enrolled", "--outcome", "score",
        "--covariates", "age_z,educ", "--bootstrap", "10", "--seed", "3", *QUICK])
    _neutral(est)
    assert {"psm", "psm_balance"} <= set(est["table"])


def test_mediate_binary_outcome_reruns_identically(tmp_path, monkeypatch):
    path = _csv(tmp_path, cross_section(n=500))
    est = _twice(tmp_path, monkeypatch, [
        "mediate", "--data", path, "--treatment", "enrolled", "--mediator", "m",
        "--outcome", "ybin", "--covariates", "age_z", "--bootstrap", "10", "--seed", "3",
        *QUICK])
    _neutral(est)


def test_table_and_column_options_relabel_generic_rows(tmp_path, outputs):
    path = _csv(tmp_path, cross_section(n=400))
    res = runner.invoke(app, ["mediate", "--data", path, "--treatment", "enrolled",
                              "--mediator", "m", "--outcome", "score", "--outcome-family",
                              "gaussian", "--bootstrap", "5", "--frequentist-only",
                              "--table", "T2", "--column", "(3)", "--out",
                              str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    est = pd.read_csv(tmp_path / "run" / "estimates.csv")
    steps = est[est["table"] != "mediation"]
    assert set(steps["table"]) == {"T2_mediator", "T2_outcome"}
    assert set(steps["column"]) == {"(3)"}


@pytest.mark.slow  # 6.5 min on the loaded 2-core machine: beyond a fast-tier budget
def test_sensitivity_reruns_identically(tmp_path, monkeypatch):
    from bayes_pool.studies.pooling_did import simulate
    path = tmp_path / "small.csv"
    simulate(seed=3, n=1200).frame.to_csv(path, index=False)
    _twice(tmp_path, monkeypatch, [
        "sensitivity", "pooling-did", "--data", str(path), "--priors", "sceptical",
        "--chains", "2", "--draws", "150", "--tune", "150", "--workers", "1",
        "--prior-draws", "50", "--seed", "7"])


@pytest.mark.slow
def test_run_smi_psm_reruns_identically(tmp_path, monkeypatch):
    est = _twice(tmp_path, monkeypatch, ["run", "smi-psm", "--seed", "5", *QUICK])
    assert np.isfinite(est["estimate"]).any()
