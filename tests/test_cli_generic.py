"""`bayes-pool psm` and `bayes-pool mediate` on user files that are not one of the studies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.special import expit
from typer.testing import CliRunner

from bayes_pool.figures import psm as psm_figs
from bayes_pool.cli import app
from tests.figures import keep_saved, points

runner = CliRunner()


def test_psm_on_user_csv_recovers_constant_att(tmp_path, outputs, monkeypatch):
    figs = keep_saved(monkeypatch, psm_figs)
    rng = np.random.default_rng(4)
    n = 2000
    age = rng.normal(0, 1, n)
    urban = rng.binomial(1, 0.5, n)
    treated = rng.binomial(1, expit(-1.0 + 0.8 * age + 0.5 * urban))
    score = 2.0 * treated + 1.5 * age + 1.0 * urban + rng.normal(0, 1, n)  # ATT = 2
    path = tmp_path / "clinic.csv"
    pd.DataFrame({"enrolled": treated, "wellbeing": score, "age_z": age, "urban": urban}
                 ).to_csv(path, index=False)
    res = runner.invoke(app, ["psm", "--data", str(path), "--treatment", "enrolled",
                              "--outcome", "wellbeing", "--covariates", "age_z,urban",
                              "--bootstrap", "30", "--frequentist-only"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / "psm").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    att = est[(est["quantity"] == "att") & (est["source"] == "frequentist")]
    assert set(att["column"]) == {"knn", "radius", "kernel"}
    for r in att.itertuples():
        assert abs(r.estimate - 2.0) < 2 * r.se, r
    # the love plot's markers are the balance rows of estimates.csv (|std. bias| before, after)
    ax = figs["psm_love_plot"].axes[0]
    bal = est[(est["quantity"] == "std_bias_pct") & (est["table"] == "psm_balance")]
    for label, col in (("before matching", "before"), ("after matching", "after")):
        rows = bal[bal["column"] == col].set_index("term")["estimate"].abs()
        labels = [t.get_text() for t in ax.get_yticklabels()]
        np.testing.assert_allclose(points(ax, label)[:, 0], rows.loc[labels], rtol=1e-6)


def test_psm_exact_on_user_csv_matches_within_cells(tmp_path, outputs):
    """--exact region adds column knn_exact: k-NN within the cells of region (ATT = 2)."""
    rng = np.random.default_rng(6)
    n = 2500
    age = rng.normal(0, 1, n)
    region = rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1])
    treated = rng.binomial(1, expit(-1.0 + 0.8 * age + 0.4 * (region == 3)))
    score = 2.0 * treated + 1.5 * age + 1.0 * region + rng.normal(0, 1, n)
    path = tmp_path / "regions.csv"
    pd.DataFrame({"enrolled": treated, "wellbeing": score, "age_z": age, "region": region}
                 ).to_csv(path, index=False)
    args = ["psm", "--data", str(path), "--treatment", "enrolled", "--outcome", "wellbeing",
            "--covariates", "age_z,region", "--bootstrap", "30", "--frequentist-only"]
    bad = runner.invoke(app, [*args, "--exact", "province"])
    assert bad.exit_code == 2 and "province" in bad.output
    assert not (outputs / "psm").exists()  # rejected before any run folder
    res = runner.invoke(app, [*args, "--exact", "region"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / "psm").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    att = est[(est["quantity"] == "att") & (est["source"] == "frequentist")]
    assert set(att["column"]) == {"knn", "radius", "kernel", "knn_exact"}
    for r in att.itertuples():
        assert abs(r.estimate - 2.0) < 2 * r.se, r
    ex = att[att["column"] == "knn_exact"].iloc[0]
    assert "within the cells of region" in ex["note"]
    bias = est[(est["table"] == "psm_balance") & (est["column"] == "after_knn_exact")
               & (est["quantity"] == "std_bias_pct")].set_index("term")["estimate"]
    assert bias["region"] == 0 and abs(bias["age_z"]) < 10
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["invocation"]["args"]["exact"] == "region"


def test_mediate_on_user_csv_recovers_indirect_effect(tmp_path, outputs):
    rng = np.random.default_rng(8)
    n = 3000
    t = rng.binomial(1, 0.5, n)
    m = 0.6 * t + rng.normal(0, 1, n)
    y = 1.0 * t + 0.8 * m + rng.normal(0, 1, n)  # linear: indirect = 0.6 * 0.8 = 0.48
    path = tmp_path / "study.csv"
    pd.DataFrame({"tx": t, "med": m, "out": y}).to_csv(path, index=False)
    res = runner.invoke(app, ["mediate", "--data", str(path), "--treatment", "tx",
                              "--mediator", "med", "--outcome", "out", "--outcome-family",
                              "gaussian", "--bootstrap", "100", "--frequentist-only"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / "mediate").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    ind = est[(est["quantity"] == "indirect") & (est["source"] == "frequentist")].iloc[0]
    assert ind["ci_low"] < 0.48 < ind["ci_high"]
    assert abs(ind["estimate"] - 0.48) < 2 * ind["se"]
