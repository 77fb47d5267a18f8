"""`bayes-pool did` on a user file that is not one of the studies, and input rejection."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from bayes_pool import report
from bayes_pool.cli import app
from tests.conftest import make_panel
from tests.figures import forest_rows, keep_saved

runner = CliRunner()
QUICK = ["--chains", "2", "--draws", "300", "--tune", "300"]


def _args(path):
    return ["did", "--data", str(path), "--outcome", "y", "--treatment", "treated",
            "--unit", "county", "--time", "wave", "--covariates", "x1,x2"]


def test_did_on_user_csv_writes_estimates(tmp_path, outputs, monkeypatch):
    figs = keep_saved(monkeypatch, report)
    frame, truth = make_panel(seed=11)
    path = tmp_path / "user.csv"
    frame.to_csv(path, index=False)
    # 2 x 300 draws: judged at ESS >= 200 (a third of the draws), R-hat and divergences as
    # the default gate
    res = runner.invoke(app, _args(path) + QUICK + ["--seed", "5", "--min-ess", "200"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / "did").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    assert {"frequentist", "bayesian"} <= set(est["source"])
    row = est[(est.term == "treated") & (est.quantity == "ame")].set_index("source")
    # Both estimates recover the known AME of the generated panel.
    assert abs(row.loc["frequentist", "estimate"] - truth["ame"]) < 2 * row.loc["frequentist", "se"]
    assert abs(row.loc["bayesian", "estimate"] - truth["ame"]) < 2 * row.loc["bayesian", "se"]
    bayes = row.loc["bayesian"]
    assert str(bayes["converged"]) == "True", bayes["note"]
    assert bayes["r_hat"] <= 1.01 and bayes["divergences"] == 0
    assert min(bayes["ess_bulk"], bayes["ess_tail"]) >= 200
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["synthetic"] is False and manifest["data"]["fingerprint"]
    # what the other outputs hold: the posterior behind the beta row, the forest plot's marker
    beta = est[(est.term == "treated") & (est.quantity == "beta")].set_index("source")
    with xr.open_datatree(run_dir / "idata.nc") as tree:
        (fit,) = tree.children  # one Bayesian fit: its posterior under /<fit>/posterior
        mean = float(tree[fit]["posterior"]["treated"].mean())
    assert mean == pytest.approx(beta.loc["bayesian", "estimate"], rel=1e-6)
    shown = forest_rows(figs["forest"].axes[0], "bayesian")
    (label,) = [k for k in shown if "treated (ame)" in k]
    assert shown[label] == pytest.approx(bayes["estimate"])


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


def test_did_approx_laplace_recovers_the_ame_and_agrees_with_nuts(tmp_path, outputs):
    """--approx laplace (the stated approximation for data too large for NUTS): the AME is
    recovered, and it agrees with NUTS on the same panel -- means within 0.3 posterior SD
    (approximation plus NUTS Monte Carlo error of ~0.05 SD at 2 x 300 draws), SDs within 25%
    (the unit SD is fixed at its mode, so the approximation may be a little narrower)."""
    from bayes_pool.design import DiDDesign
    from bayes_pool.specs import load_spec
    from bayes_pool.workflow import analyse_did

    frame, truth = make_panel(seed=11)
    path = tmp_path / "user.csv"
    frame.to_csv(path, index=False)
    res = runner.invoke(app, _args(path) + ["--approx", "laplace", "--seed", "5"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / "did").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    lap = est[(est.source == "bayesian") & (est.term == "treated")].set_index("quantity")
    assert set(lap.index) == {"beta", "ame"}
    ame = lap.loc["ame"]
    assert "Laplace" in ame["note"] and ame["converged"] and ame["divergences"] == 0
    assert ame["r_hat"] != ame["r_hat"]  # no MCMC diagnostics to report: left empty
    assert abs(ame["estimate"] - truth["ame"]) < 2 * ame["se"]
    assert ame["ci_low"] < ame["estimate"] < ame["ci_high"]

    design = DiDDesign(outcome="y", treatment="treated", unit="county", time="wave",
                       covariates=("x1", "x2"))
    spec = load_spec("did_logit").with_sampler(chains=2, draws=300, tune=300)
    nuts = analyse_did(frame, design, spec, seed=5, study="did", table="did",
                       column="bernoulli").estimates
    ref = nuts[(nuts.source == "bayesian") & (nuts.term == "treated")].set_index("quantity")
    for q in ("beta", "ame"):
        assert abs(lap.loc[q, "estimate"] - ref.loc[q, "estimate"]) < 0.3 * ref.loc[q, "se"], q
        assert 0.8 < lap.loc[q, "se"] / ref.loc[q, "se"] < 1.25, q


def test_threshold_overrides_judge_mcmc_rows_and_leave_laplace_rows_alone():
    """--max-r-hat and friends re-judge MCMC rows; a Laplace row has no R-hat or ESS to judge
    (NaN would fail every gate), so it keeps its optimiser's verdict and note."""
    from bayes_pool import estimates
    from bayes_pool.commands.common import gate
    from bayes_pool.specs import Convergence
    common = dict(study="did", table="did", column="bernoulli", term="treated", quantity="ame",
                  source="bayesian", estimate=0.1, se=0.02)
    est = estimates.frame([
        estimates.row(**common, note="NUTS", r_hat=1.02, ess_bulk=900, ess_tail=900,
                      divergences=0, converged=True),
        estimates.row(**common, note="Laplace approximation", divergences=0, converged=True),
        estimates.row(**common, note="Laplace approximation; optimiser did not converge",
                      divergences=0, converged=False)])
    out = gate(est, Convergence(), {"max_r_hat": 1.01})
    assert list(out["converged"]) == [False, True, False]
    assert "NOT CONVERGED" in out.loc[0, "note"]
    assert list(out.loc[1:, "note"]) == list(est.loc[1:, "note"])
    assert list(gate(est, Convergence(), {"max_r_hat": 1.05})["converged"]) == \
        [True, True, False]


def test_did_approx_refuses_unknown_method_and_gaussian(tmp_path, outputs):
    frame, _ = make_panel(seed=1, n=400)
    path = tmp_path / "user.csv"
    frame.to_csv(path, index=False)
    res = runner.invoke(app, _args(path) + ["--approx", "vi"])
    assert res.exit_code == 2 and "laplace" in res.output
    res = runner.invoke(app, _args(path) + ["--approx", "laplace", "--family", "gaussian"])
    assert res.exit_code == 2 and "bernoulli" in res.output
    assert not outputs.exists() or not any(outputs.rglob("*"))
