"""Prior sensitivity: the power-scaling diagnostic flags a conflicting prior and not the
default, and `bayes-pool sensitivity` refits under several sets and writes its files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool import checks, studies
from bayes_pool.bayes import did as bayes_did
from bayes_pool.cli import app
from bayes_pool.design import DiDDesign
from bayes_pool.priors import select
from bayes_pool.sensitivity import checkpoint_key, run_sensitivity
from bayes_pool.specs import load_spec
from bayes_pool.studies.pooling_did.synthetic import simulate

QUICK = dict(chains=2, draws=300, tune=300)
CONFLICT = {"treatment": {"dist": "Normal", "mu": 3.0, "sigma": 0.05}}


@pytest.fixture(scope="module")
def offset_panel(panel):
    """The generic panel plus a covariate far from zero (mean 10), which moves Bambi's
    reported intercept away from the sampled (centred) one."""
    frame, truth = panel
    frame = frame.iloc[:1500]
    rng = np.random.default_rng(11)
    frame = frame.assign(x3=10 + rng.normal(0, 1, len(frame)))
    design = DiDDesign(outcome="y", treatment="treated", unit="county", time="wave",
                       covariates=("x1", "x2", "x3"), family="bernoulli")
    return design.prepare(frame)


def _psense(prepared, spec):
    res = bayes_did.fit_did(prepared, spec.with_sampler(**QUICK), seed=5)
    summary, _ = checks.power_scaling(res.model, res.idata)
    return summary.set_index("variable")


def test_power_scaling_flags_conflicting_prior_not_default(offset_panel):
    spec = load_spec("did_logit")
    default = _psense(offset_panel, spec)
    # The true effect is 0.8 on the logit scale; Normal(3, 0.05) is tight and far from it.
    conflict = _psense(offset_panel, spec.with_priors(CONFLICT))
    assert conflict.loc["treated", "diagnosis"] == checks.CONFLICT
    assert conflict.loc["treated", "prior"] > 0.05
    assert default.loc["treated", "diagnosis"] == "✓"
    # No parameter of the default fit is prior-sensitive: with the intercept evaluated on
    # the wrong (uncentred) scale it would be, through x3.
    coefficients = ["Intercept", "treated", "x1", "x2", "x3", "C(wave)[2]", "C(wave)[3]"]
    assert (default.loc[coefficients, "prior"] < checks.PSENSE_THRESHOLD).all(), default


def _run(tmp_path, sets: str, workers: int, n: int = 1500) -> tuple:
    data = tmp_path / "small.csv"
    simulate(seed=3, n=n).frame.to_csv(data, index=False)
    result = CliRunner().invoke(app, [
        "sensitivity", "pooling-did", "--data", str(data), "--priors", sets,
        "--chains", "2", "--draws", "250", "--tune", "250", "--workers", str(workers),
        "--prior-draws", "100", "--seed", "7"])
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in (tmp_path / "outputs" / "pooling-did").iterdir()
                 if not p.name.startswith(".")]  # .refits/ keeps the finished prior sets
    table = pd.read_csv(folder / "sensitivity.csv").set_index("prior_set")
    return folder, table


def test_sensitivity_command_writes_files_and_sceptical_shrinks(tmp_path, outputs):
    folder, table = _run(tmp_path, "sceptical,vague", workers=1)
    files = {p.name for p in folder.iterdir()}
    assert {"sensitivity.csv", "sensitivity.png", "estimates.csv", "psense.csv", "psense.png",
            "prior_predictive.png", "posterior_predictive.png", "manifest.json", "report.html",
            "report.md"} <= files
    assert list(table.index) == ["sceptical", "vague"]
    assert table.loc["vague", "published"] == pytest.approx(0.096)
    assert ((table["ci_low"] <= table["mean"]) & (table["mean"] <= table["ci_high"])).all()
    # P(AME > 0) against the interval and moments shown next to it: the 95% equal-tailed
    # interval puts 2.5% of the 500 draws below ci_low and above ci_high (one draw, 0.002,
    # for the quantiles' interpolation), and Cantelli's inequality bounds the share on the
    # far side of 0 by sd^2 / (sd^2 + mean^2) (an SD with ddof = 1 only loosens it).
    for r in table.itertuples():
        lo, hi = (0.975, 1.0) if r.ci_low > 0 else (0.0, 0.025) if r.ci_high < 0 \
            else (0.025, 0.975)
        assert lo - 0.002 <= r.p_positive <= hi + 0.002, r
        far = r.sd**2 / (r.sd**2 + r.mean**2)
        assert (r.p_positive >= 1 - far) if r.mean > 0 else (r.p_positive <= far), r
    # Normal(0, 0.1) on the logit coefficient pulls the AME toward 0 and narrows it.
    assert abs(table.loc["sceptical", "mean"]) < 0.5 * abs(table.loc["vague", "mean"])
    assert table.loc["sceptical", "sd"] < table.loc["vague", "sd"]
    est = pd.read_csv(folder / "estimates.csv")
    assert set(est["column"]) == {"prior:sceptical", "prior:vague"}
    assert set(est["quantity"]) == {"ame", "beta"} and (est["source"] == "bayesian").all()
    assert est["r_hat"].notna().all()
    psense = pd.read_csv(folder / "psense.csv")
    assert set(psense["prior_set"]) == {"sceptical", "vague"}
    assert {"policy", "ame_policy", "1|province_sigma"} <= set(psense["variable"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["synthetic"] is False and manifest["command"] == "sensitivity"
    assert manifest["prior_sets"]["sceptical"]["applied"]["treatment"]["sigma"] == 0.1


@pytest.mark.slow  # two prior-set refits; fast tier <= ~10 min
def test_interrupted_sensitivity_resumes_without_refitting_finished_sets(tmp_path):
    target = studies.get("pooling-did").sensitivity_target(simulate(seed=3, n=1500).frame)
    spec = load_spec("did_logit").with_sampler(chains=2, draws=200, tune=200)
    sets = select("sceptical,vague")
    kw = dict(seed=7, workers=1, prior_draws=50, checks=True)

    def stop_after_1(message):
        if message.startswith("prior set 1/"):
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        run_sensitivity(target, spec, sets, refits_dir=tmp_path, progress=stop_after_1, **kw)
    (folder,) = tmp_path.iterdir()
    (first,) = folder.glob("task-*.json")
    stamp = first.stat().st_mtime_ns
    resumed = run_sensitivity(target, spec, sets, refits_dir=tmp_path, **kw)
    assert len(list(folder.glob("task-*.json"))) == 2 and first.stat().st_mtime_ns == stamp
    fresh = run_sensitivity(target, spec, sets, **kw)
    pd.testing.assert_frame_equal(resumed.table, fresh.table)
    pd.testing.assert_frame_equal(resumed.estimates, fresh.estimates)
    pd.testing.assert_frame_equal(resumed.psense, fresh.psense)
    for name, draws in fresh.prior_predictive.items():
        np.testing.assert_array_equal(resumed.prior_predictive[name]["effect"], draws["effect"])
    assert resumed.main_set == fresh.main_set == "sceptical"
    post = resumed.psense_tree["posterior"].to_dataset()
    np.testing.assert_array_equal(post["policy"].values,
                                  fresh.psense_tree["posterior"]["policy"].values)
    pd.testing.assert_frame_equal(resumed.posterior_predictive, fresh.posterior_predictive)
    # another seed or prior set is another run, never a stale result
    assert checkpoint_key(target, [{"name": "x", "spec": spec, "seed": 7}]) != \
        checkpoint_key(target, [{"name": "x", "spec": spec, "seed": 8}])


@pytest.mark.slow
def test_sensitivity_in_parallel_flags_conflict_file_not_default(tmp_path, outputs):
    """Through dask (2 workers), with a user prior set given as a file: on the study's data,
    whose covariates (age, log GDP) are far from 0, the default set is not prior-sensitive and
    the conflicting set is flagged."""
    conflict = tmp_path / "conflict.toml"
    conflict.write_text('[priors]\ntreatment = { dist = "Normal", mu = 3.0, sigma = 0.05 }\n')
    folder, table = _run(tmp_path, f"default,{conflict},sceptical", workers=2, n=2400)
    assert list(table.index) == ["default", "conflict", "sceptical"]
    psense = pd.read_csv(folder / "psense.csv").set_index(["prior_set", "variable"])
    assert psense.loc[("conflict", "policy"), "diagnosis"] == checks.CONFLICT
    default = psense.loc["default"]
    assert default.loc["policy", "diagnosis"] == "✓"
    fixed = ["Intercept", "policy", "age", "log_gdp_pc", "C(year)[2016]", "C(year)[2018]"]
    assert (default.loc[fixed, "prior"] < checks.PSENSE_THRESHOLD).all(), default


def test_unknown_prior_set_exits_2_before_any_folder(outputs):
    result = CliRunner().invoke(app, ["sensitivity", "pooling-did", "--priors", "default,nope"])
    assert result.exit_code == 2
    assert "nope" in result.output and "not found" in result.output
    assert not outputs.exists()
