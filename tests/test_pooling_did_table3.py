"""Table 3 of Zhang & Chen (2024) end to end on calibrated synthetic data with a known truth.

Real sampling (the default spec: 4 chains x 1000 draws, nutpie) is paid once per world in
session fixtures; the CLI runs use short chains and check structure and reproducibility.
"""

from __future__ import annotations

import json

import pandas as pd
import pyreadstat
import pytest
import xarray as xr
from typer.testing import CliRunner

from bayes_pool.cli import app
from bayes_pool.specs import load_spec
from bayes_pool.studies.pooling_did.pipeline import table3_design
from bayes_pool.studies.pooling_did.synthetic import DEFAULT_SEED, simulate
from bayes_pool.workflow import analyse_did

runner = CliRunner()
QUICK = ["--chains", "2", "--draws", "150", "--tune", "150", "--only", "table2,table3"]


def _policy(est: pd.DataFrame, source: str, quantity: str) -> pd.Series:
    rows = est[(est.source == source) & (est.term == "policy") & (est.quantity == quantity)]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.fixture(scope="session")
def world():
    return simulate(seed=DEFAULT_SEED)


@pytest.fixture(scope="session")
def table3_col2(world):
    return analyse_did(world.frame, table3_design("(2)"), load_spec("did_logit"),
                       seed=DEFAULT_SEED, study="pooling-did", table="3", column="(2)")


@pytest.fixture(scope="session")
def null_col2():
    null = simulate(seed=DEFAULT_SEED, policy_effect=0.0)
    assert null.truth["ame_policy"] == 0
    return analyse_did(null.frame, table3_design("(2)"), load_spec("did_logit"),
                       seed=DEFAULT_SEED, study="pooling-did", table="3", column="(2)")


def test_frequentist_ame_recovers_true_ame(world, table3_col2):
    freq = _policy(table3_col2.estimates, "frequentist", "ame")
    assert abs(freq["estimate"] - world.truth["ame_policy"]) < 2 * freq["se"]
    assert freq["n_obs"] <= world.truth["n_complete"]


def test_bayesian_ame_recovers_true_ame_and_converges(world, table3_col2):
    for quantity in ("ame", "beta"):
        post = _policy(table3_col2.estimates, "bayesian", quantity)
        assert post["r_hat"] <= 1.01
        assert post["ess_bulk"] >= 400 and post["ess_tail"] >= 400
        assert post["divergences"] == 0
        assert bool(post["converged"])
    post = _policy(table3_col2.estimates, "bayesian", "ame")
    assert abs(post["estimate"] - world.truth["ame_policy"]) < 2 * post["se"]
    assert post["ci_low"] < post["estimate"] < post["ci_high"]


@pytest.mark.slow  # one seed is a regression pin, not coverage (benchmarks/null_world_bayes.py)
def test_null_world_interval_covers_zero(null_col2):
    post = _policy(null_col2.estimates, "bayesian", "ame")
    assert post["ci_low"] < 0 < post["ci_high"]
    assert bool(post["converged"])


@pytest.mark.slow  # moved out of the fast tier: minutes of sampling (fast tier <= ~10 min)
def test_run_twice_same_seed_identical_estimates(outputs):
    for _ in range(2):
        res = runner.invoke(app, ["run", "pooling-did", "--seed", "11", *QUICK])
        assert res.exit_code == 0, res.output
    first, second = sorted((outputs / "pooling-did").iterdir())
    assert first != second  # a run never overwrites another
    assert (first / "estimates.csv").read_bytes() == (second / "estimates.csv").read_bytes()
    est = pd.read_csv(first / "estimates.csv")
    assert {"published", "frequentist", "bayesian"} <= set(est["source"])
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["seed"] == 11
    assert manifest["data"]["truth"]["ame_policy"] > 0
    assert "pymc" in manifest["versions"] and manifest["spec"]["sampler"]["draws"] == 150
    assert "SYNTHETIC DATA" in (first / "comparison.md").read_text()
    # comparison.csv holds the three sources of each cell as estimates.csv has them
    comp = pd.read_csv(first / "comparison.csv", dtype={"table": str, "column": str})
    cell = comp[(comp["table"] == "3") & (comp["column"] == "(2)") & (comp["term"] == "policy")
                & (comp["quantity"] == "ame")].iloc[0]
    for source, col in (("frequentist", "frequentist"), ("bayesian", "bayesian"),
                        ("published", "published")):
        row = est[(est["table"].astype(str) == "3") & (est["column"] == "(2)")
                  & (est["term"] == "policy") & (est["quantity"] == "ame")
                  & (est["source"] == source)].iloc[0]
        assert cell[col] == pytest.approx(row["estimate"], rel=1e-6), source
    with xr.open_datatree(first / "idata.nc") as tree:
        assert tree.attrs["synthetic"] == 1 and tree.attrs["seed"] == "11"
    assert "SYNTHETIC DATA" in res.output and "policy" in res.output
    assert not list((outputs / "pooling-did").glob(".*partial"))


def _as_survey_file(frame: pd.DataFrame, path) -> None:
    """Write the canonical frame as a Stata file with raw names and labelled health codes."""
    raw = frame.drop(columns=["healthy", "policy"]).rename(columns={
        "self_rated_health": "qhealth", "province": "hukou_prov", "year": "wave"})
    labels = {"qhealth": {1: "very unhealthy", 2: "relatively unhealthy", 3: "average",
                          4: "healthy", 5: "very healthy"}}
    pyreadstat.write_dta(raw, str(path), variable_value_labels=labels)


MAPPING = """
[columns]
self_rated_health = "qhealth"
province = "hukou_prov"
year = "wave"

[[recode]]
target = "healthy"
source = "self_rated_health"
kind = "label_map"
map = { "very healthy" = 1, "healthy" = 1, "average" = 0, "relatively unhealthy" = 0, "very unhealthy" = 0 }
"""


def test_run_on_survey_file_with_mapping(tmp_path, outputs, world):
    # Like the real CLDS file: raw names, labelled 5-level health, and no policy column
    # (the study derives it from the adoption years of Table 1, as the paper did).
    data = tmp_path / "clds_like.dta"
    _as_survey_file(world.frame, data)
    (tmp_path / "map.toml").write_text(MAPPING)
    res = runner.invoke(app, ["run", "pooling-did", "--data", str(data), "--mapping",
                              str(tmp_path / "map.toml"), *QUICK])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / "pooling-did").iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["synthetic"] is False and manifest["data"]["format"] == "dta"
    assert "SYNTHETIC" not in (run_dir / "comparison.md").read_text()


@pytest.mark.parametrize("mutate, needles", [
    (lambda f: f.drop(columns="province"), ["province"]),
    (lambda f: f.assign(education=f["education"].where(f.index > 3, 9)), ["education", "9", "4"]),
    (lambda f: f.assign(healthy=f["healthy"].where(f.index > 0, 2)), ["healthy", "2"]),
    (lambda f: f.assign(year=f["year"].astype(float).where(f.index > 1)), ["year"]),
])
def test_bad_file_exits_nonzero_and_writes_nothing(tmp_path, outputs, world, mutate, needles):
    path = tmp_path / "bad.csv"
    mutate(world.frame.copy()).to_csv(path, index=False)
    res = runner.invoke(app, ["run", "pooling-did", "--data", str(path), *QUICK])
    assert res.exit_code == 2, res.output
    for needle in needles:
        assert needle in res.output
    assert not outputs.exists() or not any(outputs.rglob("*"))
