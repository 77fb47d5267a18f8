"""`bayes-pool sensitivity RUN_DIR` on a did, a psm and a mediate run, and `bp.sensitivity`.

Each run is made frequentist-only (seconds: the refits are what is tested), then refitted
under two prior sets at 2 chains x 100 draws with few prior predictive draws. The sceptical
set shrinks the treatment's effect toward zero; the run's ledger marks the published cell and
centres the optimistic set; the files land in RUN_DIR/sensitivity/<sets>/ and the run's
report gains them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool.cli import app
from bayes_pool.published import LEDGER_COLUMNS
from tests.conftest import make_panel

runner = CliRunner()
TINY = ["--draws", "100", "--tune", "100", "--chains", "2", "--prior-draws", "50",
        "--workers", "1"]
FILES = ["sensitivity.csv", "psense.csv", "estimates.csv", "sensitivity.png", "psense.png",
         "prior_predictive.png", "posterior_predictive.png", "manifest.json", "report.md"]


def _data(tmp_path, seed=11, n=1200):
    frame, _ = make_panel(seed=seed, n=n)
    frame["m"] = frame["x1"] + 0.8 * frame["treated"] + \
        np.random.default_rng(seed).normal(size=len(frame))
    path = tmp_path / "user.csv"
    frame.to_csv(path, index=False)
    return path


def _run(command, outputs, args):
    """A frequentist-only run of ``command``; its folder."""
    res = runner.invoke(app, [command, *args, "--frequentist-only"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / command).iterdir())
    return run_dir


def _sensitivity(run_dir, priors, checks=True):
    """Refit the run under ``priors``; with ``checks``, power-scaling and the predictive
    checks too (the psm run skips them: its linear model's checks are the smi-psm study's,
    tested in test_sensitivity.py)."""
    res = runner.invoke(app, ["sensitivity", str(run_dir), "--priors", priors, *TINY,
                              *([] if checks else ["--no-checks", "--prior-draws", "0"])])
    assert res.exit_code == 0, res.output
    folder = run_dir / "sensitivity" / priors.replace(",", "-")
    for name in FILES if checks else ["sensitivity.csv", "sensitivity.png", "report.md"]:
        assert (folder / name).is_file(), name
    table = pd.read_csv(folder / "sensitivity.csv").set_index("prior_set")
    assert list(table.index) == priors.split(",")
    if checks:
        psense = pd.read_csv(folder / "psense.csv")
        assert set(psense["prior_set"]) == set(priors.split(","))
    assert f"sensitivity/{priors.replace(',', '-')}/" in (run_dir / "report.md").read_text()
    return folder, table, json.loads((folder / "manifest.json").read_text())


def test_sensitivity_of_a_did_run_uses_its_ledger(tmp_path, outputs):
    data = _data(tmp_path)
    ledger = tmp_path / "published.csv"
    pd.DataFrame([["paper", "2", "(1)", "r", "treated", q, est, se, "", "", "", 1200, "", "", ""]
                  for q, est, se in [("beta", "0.700", "0.250"), ("ame", "0.150", "0.050")]],
                 columns=LEDGER_COLUMNS).to_csv(ledger, index=False)
    run_dir = _run("did", outputs, [
        "--data", str(data), "--outcome", "y", "--treatment", "treated", "--unit", "county",
        "--time", "wave", "--covariates", "x1,x2", "--table", "2", "--column", "(1)",
        "--published", str(ledger)])
    folder, table, manifest = _sensitivity(run_dir, "default,optimistic")
    assert (table["quantity"] == "ame").all() and (table["published"] == 0.15).all()
    # the optimistic set is centred on the ledger's beta with its SE
    applied = manifest["prior_sets"]["optimistic"]["applied"]["treatment"]
    assert applied == {"dist": "Normal", "mu": 0.7, "sigma": 0.25}
    assert table.loc["optimistic", "sd"] < table.loc["default", "sd"]
    assert manifest["invocation"]["args"]["study"] == str(run_dir.resolve())
    assert manifest["data"]["fingerprint"] == json.loads(
        (run_dir / "manifest.json").read_text())["data"]["fingerprint"]


def test_sensitivity_of_a_psm_run_shrinks_under_the_sceptical_set(tmp_path, outputs):
    data = _data(tmp_path, seed=5)
    run_dir = _run("psm", outputs, ["--data", str(data), "--treatment", "treated",
                                    "--outcome", "m", "--covariates", "x1,x2",
                                    "--bootstrap", "5"])
    folder, table, manifest = _sensitivity(run_dir, "default,sceptical", checks=False)
    assert (table["quantity"] == "beta").all()
    assert manifest["model"]["description"].startswith("linear regression of m on treated")
    # the regression recovers the 0.8 built into m; the sceptical Normal(0, tau), tau =
    # 0.05 sd(m), combines with it as a normal prior with a normal likelihood does (the
    # default prior is nearly flat): precision-weighted mean and SD
    default = table.loc["default"]
    assert default["ci_low"] < 0.8 < default["ci_high"]
    tau = 0.05 * pd.read_csv(data)["m"].std()
    assert manifest["prior_sets"]["sceptical"]["applied"]["treatment"]["sigma"] == \
        pytest.approx(tau)
    weight = tau ** 2 / (tau ** 2 + default["sd"] ** 2)
    assert table.loc["sceptical", "mean"] == pytest.approx(weight * default["mean"], abs=0.05)
    assert table.loc["sceptical", "sd"] == pytest.approx(np.sqrt(weight) * default["sd"],
                                                         rel=0.2)
    assert "optimistic" not in manifest["prior_sets"]


def test_sensitivity_of_a_mediate_run_refits_the_indirect_effect(tmp_path, outputs):
    data = _data(tmp_path, seed=3, n=600)
    run_dir = _run("mediate", outputs, [
        "--data", str(data), "--treatment", "treated", "--mediator", "m", "--outcome", "y",
        "--covariates", "x2", "--unit", "county", "--time", "wave", "--bootstrap", "0"])
    folder, table, manifest = _sensitivity(run_dir, "default,sceptical")
    assert (table["quantity"] == "indirect").all()
    assert table.loc["default", "p_positive"] > 0.95
    assert abs(table.loc["sceptical", "mean"]) < 0.5 * table.loc["default", "mean"]
    applied = manifest["prior_sets"]["sceptical"]["applied"]
    # the set's logit prior in the outcome equation, its Gaussian one (0.05 SD of the
    # standardised mediator) in the mediator equation
    assert applied["outcome"]["treatment"]["sigma"] == 0.1
    assert applied["mediator"]["treatment"]["sigma"] == pytest.approx(0.05)
    est = pd.read_csv(folder / "estimates.csv")
    assert set(est["quantity"]) == {"indirect", "direct", "total"}


def test_sensitivity_refuses_a_run_it_cannot_refit(tmp_path, outputs):
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    res = runner.invoke(app, ["sensitivity", str(folder), *TINY])
    assert res.exit_code == 2 and "manifest.json" in res.output
    (folder / "manifest.json").write_text(json.dumps({"invocation": {"command": "run"}}))
    res = runner.invoke(app, ["sensitivity", str(folder), *TINY])
    assert res.exit_code == 2 and "bayes-pool sensitivity STUDY" in res.output
    assert not (folder / "sensitivity").exists()
    res = runner.invoke(app, ["sensitivity", str(tmp_path / "gone"), *TINY])
    assert res.exit_code == 2 and "no such run folder" in res.output
    # a run whose data file changed since: refused, naming the fingerprints
    data = _data(tmp_path, n=400)
    run_dir = _run("did", outputs, ["--data", str(data), "--outcome", "y", "--treatment",
                                    "treated", "--unit", "county", "--time", "wave"])
    pd.read_csv(data).iloc[:-1].to_csv(data, index=False)
    res = runner.invoke(app, ["sensitivity", str(run_dir), *TINY])
    assert res.exit_code == 2 and "differ from the run's" in res.output
    assert not (run_dir / "sensitivity").exists()


def test_api_sensitivity_of_a_result_matches_the_command(tmp_path, outputs):
    """bp.sensitivity(result) refits the same model with the same seed as the command on the
    run folder: the same numbers."""
    import bayes_pool as bp
    data = _data(tmp_path, seed=5)
    run_dir = _run("psm", outputs, ["--data", str(data), "--treatment", "treated",
                                    "--outcome", "m", "--covariates", "x1,x2",
                                    "--bootstrap", "5", "--seed", "9"])
    frame = pd.read_csv(data)
    r = bp.psm(frame, treatment="treated", outcome="m", covariates=["x1", "x2"], bootstrap=5,
               seed=9, backends="frequentist")
    kwargs = dict(priors="sceptical", draws=100, tune=100, chains=2, prior_draws=0,
                  checks=False)
    from_result = bp.sensitivity(r, **kwargs).table
    from_folder = bp.sensitivity(run_dir, **kwargs).table
    pd.testing.assert_frame_equal(from_result, from_folder)
    with pytest.raises(bp.InputError, match="records no analysis call"):
        bp.sensitivity(object())


@pytest.mark.slow  # a third model kind beside the fast tier's three: about a minute of sampling
def test_sensitivity_of_a_staggered_did_run_refits_the_overall_att(tmp_path, outputs):
    frame, _ = make_panel(seed=11, n=900)
    frame["cohort"] = frame["county"].map(
        {f"c{u:02d}": (2 if u < 3 else 3 if u < 6 else 0) for u in range(12)})
    data = tmp_path / "staggered.csv"
    frame.to_csv(data, index=False)
    run_dir = _run("did", outputs, [
        "--data", str(data), "--outcome", "y", "--treatment", "treated", "--unit", "county",
        "--time", "wave", "--covariates", "x1,x2", "--cohort", "cohort", "--staggered"])
    folder, table, manifest = _sensitivity(run_dir, "default,sceptical")
    assert (table["quantity"] == "att").all()
    assert manifest["model"]["description"].startswith("extended TWFE (bernoulli, notyet")
    assert table.loc["default", "p_positive"] > 0.95
    assert abs(table.loc["sceptical", "mean"]) < 0.5 * table.loc["default", "mean"]
    est = pd.read_csv(folder / "estimates.csv")
    assert set(est["column"]) == {"prior:default", "prior:sceptical"}  # overall ATT, no cells
