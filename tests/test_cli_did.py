"""`bayes-pool did` on a user file that is not one of the studies, and input rejection."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool import runs
from bayes_pool.cli import app
from tests.conftest import make_panel

runner = CliRunner()
QUICK = ["--chains", "2", "--draws", "300", "--tune", "300"]


@pytest.fixture()
def outputs(tmp_path, monkeypatch):
    """Point the default outputs/ folder at a temporary one and return it."""
    out = tmp_path / "outputs"
    monkeypatch.setattr(runs, "OUTPUTS_DIR", out)
    return out


def _args(path):
    return ["did", "--data", str(path), "--outcome", "y", "--treatment", "treated",
            "--unit", "county", "--time", "wave", "--covariates", "x1,x2"]


def test_did_on_user_csv_writes_estimates(tmp_path, outputs):
    frame, truth = make_panel(seed=11)
    path = tmp_path / "user.csv"
    frame.to_csv(path, index=False)
    res = runner.invoke(app, _args(path) + QUICK + ["--seed", "5"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / "did").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    assert {"frequentist", "bayesian"} <= set(est["source"])
    row = est[(est.term == "treated") & (est.quantity == "ame")].set_index("source")
    # Both estimates recover the known AME of the generated panel.
    assert abs(row.loc["frequentist", "estimate"] - truth["ame"]) < 2 * row.loc["frequentist", "se"]
    assert abs(row.loc["bayesian", "estimate"] - truth["ame"]) < 2 * row.loc["bayesian", "se"]
    for col in ("r_hat", "ess_bulk", "ess_tail", "divergences"):
        assert row.loc["bayesian", col] == row.loc["bayesian", col]  # present, not NaN
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["synthetic"] is False and manifest["data"]["fingerprint"]
    assert (run_dir / "idata.nc").exists() and (run_dir / "forest.png").exists()


@pytest.mark.parametrize("mutate, needles", [
    (lambda f: f.drop(columns="x2"), ["x2"]),
    (lambda f: f.assign(y=f["y"].where(f.index > 2, 3)), ["'y'", "3", "3 row"]),
])
def test_did_rejects_bad_input_and_writes_nothing(tmp_path, outputs, mutate, needles):
    frame, _ = make_panel(seed=1, n=400)
    path = tmp_path / "bad.csv"
    mutate(frame).to_csv(path, index=False)
    res = runner.invoke(app, _args(path) + QUICK)
    assert res.exit_code == 2
    for needle in needles:
        assert needle in res.output
    assert not outputs.exists() or not any(outputs.rglob("*"))
