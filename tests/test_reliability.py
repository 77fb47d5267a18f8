"""Reliability: interrupted runs, rerun from a manifest, and no microdata in outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool import runs
from bayes_pool.cli import app
from tests.conftest import make_panel

runner = CliRunner()
QUICK = ["--chains", "2", "--draws", "150", "--tune", "150"]


def _did_args(path):
    return ["did", "--data", str(path), "--outcome", "y", "--treatment", "treated",
            "--unit", "county", "--time", "wave", "--covariates", "x1,x2"]


@pytest.fixture()
def outputs(tmp_path, monkeypatch):
    out = tmp_path / "outputs"
    monkeypatch.setattr(runs, "OUTPUTS_DIR", out)
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_rerun_from_manifest_reproduces_estimates(tmp_path, outputs):
    frame, _ = make_panel(seed=21, n=1500)
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    assert runner.invoke(app, _did_args(path) + QUICK).exit_code == 0
    (first,) = list((outputs / "did").iterdir())
    res = runner.invoke(app, ["rerun", str(first / "manifest.json")])
    assert res.exit_code == 0, res.output
    second = next(p for p in (outputs / "did").iterdir() if p != first)
    assert (first / "estimates.csv").read_bytes() == (second / "estimates.csv").read_bytes()
    m1, m2 = (json.loads((p / "manifest.json").read_text()) for p in (first, second))
    assert m1["invocation"] == m2["invocation"] and m1["data"]["fingerprint"] == m2["data"]["fingerprint"]


def test_rerun_rejects_a_file_that_is_not_a_manifest(tmp_path, outputs):
    bad = tmp_path / "manifest.json"
    bad.write_text("{}")
    res = runner.invoke(app, ["rerun", str(bad)])
    assert res.exit_code == 2 and "invocation" in res.output


def test_killed_run_leaves_no_complete_folder_and_earlier_runs_untouched(tmp_path):
    frame, _ = make_panel(seed=3, n=2000)
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "outputs"
    env = {**os.environ, "BAYES_POOL_OUTPUTS": str(out)}
    cli = [sys.executable, "-m", "bayes_pool.cli"]
    subprocess.run(cli + _did_args(path) + QUICK, env=env, check=True, capture_output=True)
    (earlier,) = list((out / "did").iterdir())
    before = _snapshot(earlier)
    # A long run, terminated while it samples.
    proc = subprocess.Popen(cli + _did_args(path) + ["--draws", "20000", "--tune", "2000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "did").glob(".*.partial")):
        time.sleep(0.5)
    assert list((out / "did").glob(".*.partial")), "the run never started writing"
    time.sleep(8)  # well inside compilation or sampling
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    assert [p for p in (out / "did").iterdir()] == [earlier]  # nothing new, complete or partial
    assert _snapshot(earlier) == before


def test_outputs_hold_no_row_of_the_input(tmp_path, outputs):
    """Disclosure scan: no file a run writes contains a row of a (fake restricted) input."""
    frame, _ = make_panel(seed=5, n=800)
    rng = np.random.default_rng(0)
    frame["x1"] = np.round(rng.normal(0, 1, len(frame)) * 1e6 + 1234567.891, 3)  # distinctive
    path = tmp_path / "restricted.csv"
    frame.to_csv(path, index=False)
    assert runner.invoke(app, _did_args(path) + QUICK).exit_code == 0
    (run_dir,) = list((outputs / "did").iterdir())
    assert scan_for_rows(run_dir, frame) == []
    import xarray as xr
    with xr.open_datatree(run_dir / "idata.nc") as tree:
        groups = {node.name for node in tree.subtree}
    assert not groups & {"observed_data", "constant_data", "posterior_predictive", "log_likelihood"}


def scan_for_rows(folder: Path, frame: pd.DataFrame) -> list[str]:
    """Files under ``folder`` holding any distinctive input value (a row-level leak).

    Text files are searched for the formatted values; NetCDF files are opened and every
    variable's values compared with the input column.
    """
    import xarray as xr

    values = frame["x1"].to_numpy()
    needles = {f"{v:.3f}" for v in values[:200]}
    leaks = []
    for p in folder.rglob("*"):
        if p.suffix in {".csv", ".md", ".json", ".html", ".txt"}:
            text = p.read_text(errors="ignore")
            if any(n in text for n in needles):
                leaks.append(p.name)
        elif p.suffix == ".nc":
            tree = xr.open_datatree(p)
            for node in tree.subtree:
                for var in node.data_vars.values():
                    if np.isin(np.round(np.asarray(var, dtype=float).ravel(), 3),
                               np.round(values, 3)).any():
                        leaks.append(f"{p.name}:{node.path}/{var.name}")
            tree.close()
    return leaks


def test_disclosure_scan_catches_a_written_row(tmp_path):
    frame, _ = make_panel(seed=5, n=50)
    frame["x1"] = np.round(frame["x1"] * 1e6 + 1234567.891, 3)
    (tmp_path / "leak.csv").write_text(frame.head(1).to_csv(index=False))
    assert scan_for_rows(tmp_path, frame) == ["leak.csv"]
