"""``bayes-pool mediate`` with a logit outcome, both sides, on a confounded-levels world
(synthetic; :func:`tests.test_mediation_worlds.confounded_mediation`, seed 1).

One Bayesian fit serves two checks: issue 14's acceptance at the default seed (the joint
model's correlated random effects estimate what the fixed-effects steps estimate: every
path and natural effect within 0.25 posterior SD of the frequentist value on the same data)
and issue 19's CLI check (the logit mediation through the command recovers the truth).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool.cli import app
from tests.conftest import point_outputs
from tests.test_mediation_worlds import confounded_mediation

# (table, term, quantity) of the paths and natural effects, with the truth's key
CELLS = {("mediator_model", "d", "beta"): "a", ("outcome_model", "m", "beta"): "b",
         ("outcome_model", "d", "beta"): "d",
         ("mediation", "d", "indirect"): "indirect", ("mediation", "d", "direct"): "direct",
         ("mediation", "d", "total"): "total"}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mediate_cli")
    frame, truth = confounded_mediation(1)
    path = tmp / "confounded.csv"
    frame.to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as mp:
        point_outputs(mp, tmp / "outputs")
        res = CliRunner().invoke(app, [
            "mediate", "--data", str(path), "--treatment", "d", "--mediator", "m",
            "--outcome", "y", "--covariates", "x", "--unit", "region", "--time", "wave",
            "--outcome-family", "bernoulli", "--bootstrap", "50", "--chains", "2",
            "--draws", "500", "--tune", "500", "--min-ess", "200", "--seed", "11"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((tmp / "outputs" / "mediate").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv", dtype={"table": str})
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return est, manifest, truth


def _cell(est, source, key):
    table, term, quantity = key
    r = est[(est["source"] == source) & (est["table"] == table) & (est["term"] == term)
            & (est["quantity"] == quantity)]
    assert len(r) == 1, (source, key)
    return r.iloc[0]


def test_bayesian_logit_mediation_converged_and_correlated(cli_run):
    est, manifest, _ = cli_run
    bay = est[est["source"] == "bayesian"]
    assert bay["converged"].astype(bool).all(), \
        bay[["table", "term", "quantity", "r_hat", "ess_bulk", "ess_tail"]].to_string()
    assert (bay["r_hat"] < 1.01).all() and (bay["divergences"] == 0).all()
    assert manifest["facts"]["mediation_m"]["unit_structure"]["unit_effects"] == "correlated"
    assert "correlated random effects" in bay["note"].iloc[0]


@pytest.mark.parametrize("key", list(CELLS), ids=["/".join(k) for k in CELLS])
def test_bayesian_within_quarter_sd_of_fixed_effects(cli_run, key):
    """Issue 14: posterior mean within 0.25 posterior SD of the fixed-effects estimate."""
    est, _, _ = cli_run
    bay, freq = _cell(est, "bayesian", key), _cell(est, "frequentist", key)
    assert abs(bay["estimate"] - freq["estimate"]) < 0.25 * bay["se"], (bay["estimate"],
                                                                       freq["estimate"])


@pytest.mark.parametrize("source", ["frequentist", "bayesian"])
def test_logit_mediation_recovers_truth(cli_run, source):
    """Both sides within 2 SEs (posterior SD) of the world's truth: paths a, b, d on the
    model's scale, natural effects on the probability scale (one seed: a regression pin;
    the across-seed coverage is tests/test_mediation_identification.py, slow)."""
    est, _, truth = cli_run
    for key, name in CELLS.items():
        r = _cell(est, source, key)
        assert abs(r["estimate"] - truth[name]) < 2 * r["se"], (key, r["estimate"], truth[name])
