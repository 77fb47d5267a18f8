"""Commands no other test runs, with value assertions: `version`, `simulate`, `compare`, `psm`
and `mediate` with their Bayesian side, `did --family gaussian`, and the report of a real run
(the numbers report.md and report.html show equal estimates.csv).

Each world is SYNTHETIC with a known truth. A fast-tier "the interval holds the truth on seed
S" is a regression pin on that seed, not a coverage claim; posteriors are small (2 chains x
300 draws) and judged within 3 posterior SDs, which on its own seed is what a correct fit
shows with probability about 0.997.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

import bayes_pool
from bayes_pool import studies
from bayes_pool.cli import app
from tests.conftest import make_panel, point_outputs

runner = CliRunner()
SMALL = ["--draws", "300", "--tune", "300", "--chains", "2"]


def _invoke_run(tmp_path_factory, name: str, args: list[str], study: str | None = None):
    """Run a command with outputs/ in a temporary folder; return its result and run folder
    (under outputs/<study>, the command's name unless given)."""
    out = tmp_path_factory.mktemp(name) / "outputs"
    with pytest.MonkeyPatch.context() as mp:
        point_outputs(mp, out)
        res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    (folder,) = [p for p in (out / (study or args[0])).iterdir() if not p.name.startswith(".")]
    return res, folder


def _posterior(est: pd.DataFrame, **key) -> pd.Series:
    rows = est[est["source"] == "bayesian"]
    for k, v in key.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, (key, rows)
    return rows.iloc[0]


def _within_3_sd(row: pd.Series, truth: float) -> None:
    assert abs(row["estimate"] - truth) <= 3 * row["se"], (row.to_dict(), truth)
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    assert row[["r_hat", "ess_bulk", "ess_tail", "divergences"]].notna().all()
    assert row["r_hat"] < 1.05, row.to_dict()  # 2 x 300 draws: mixing, if not ESS 400


# ------------------------------------------------------------------- version, simulate ---

def test_version_is_the_installed_distributions():
    res = runner.invoke(app, ["version"])
    assert res.exit_code == 0
    assert res.output.strip() == bayes_pool.__version__ == importlib.metadata.version(
        "bayes_pool")


@pytest.mark.parametrize("study", ["pooling-did", "smi-psm"])
def test_simulate_writes_the_seeded_frame_and_its_truth(study, tmp_path, outputs):
    res = runner.invoke(app, ["simulate", study, "--seed", "5", "--n", "900",
                              "--out", str(tmp_path / "sim")])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC data: 900 rows" in res.output
    (csv,) = (tmp_path / "sim").glob("*.csv")
    (truth,) = (tmp_path / "sim").glob("*.json")
    assert csv.name == "synthetic-seed5.csv"
    expected = studies.get(study).simulate(seed=5, n=900)
    got = pd.read_csv(csv)
    assert list(got.columns) == list(expected.frame.columns)
    # CSV round trip: same values, dtypes as read back (text stays text, codes numbers)
    pd.testing.assert_frame_equal(got, pd.read_csv(io.StringIO(
        expected.frame.to_csv(index=False))), check_exact=False, rtol=1e-12)
    assert truth.name == "synthetic-seed5.truth.json"
    written = json.loads(truth.read_text())
    assert written["study"] == study and written["synthetic"] is True and written["seed"] == 5
    assert written["truth"] == json.loads(json.dumps(expected.truth, default=float))
    assert not outputs.exists()  # --out was honoured


def test_simulate_defaults_and_rejects_an_unknown_study(outputs):
    res = runner.invoke(app, ["simulate", "smi-psm", "--n", "400"])
    assert res.exit_code == 0, res.output
    (csv,) = (outputs / "smi-psm" / "synthetic").glob("*.csv")
    assert len(pd.read_csv(csv)) == 400
    bad = runner.invoke(app, ["simulate", "no-such-study"])
    assert bad.exit_code == 2 and "no-such-study" in bad.output


# ------------------------------------------------------------------ psm, Bayesian side ---

def _psm_world(seed: int = 21, n: int = 1500) -> tuple[pd.DataFrame, float]:
    """SYNTHETIC: selection on age, an effect 1 + age that grows with it, so the ATT (the
    treated's mean effect, about 1.4) differs from the ATE (about 1.0)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(0, 1, n)
    urban = rng.binomial(1, 0.5, n)
    treated = rng.binomial(1, expit(-0.8 + 0.8 * age + 0.4 * urban))
    effect = 1.0 + age
    y = 1.5 * age + 1.0 * urban + effect * treated + rng.normal(0, 1, n)
    frame = pd.DataFrame({"enrolled": treated, "wellbeing": y, "age_z": age, "urban": urban})
    return frame, float(effect[treated == 1].mean())


@pytest.fixture(scope="module")
def psm_run(tmp_path_factory):
    """Slow tier: the Bayesian side compiles three models (propensity, two outcome models)
    and re-matches every thinned draw: 1108 s at load ~40 on the shared 2 cores."""
    frame, att = _psm_world()
    path = tmp_path_factory.mktemp("psm-data") / "clinic.csv"
    frame.to_csv(path, index=False)
    res, folder = _invoke_run(tmp_path_factory, "psm", [
        "psm", "--data", str(path), "--treatment", "enrolled", "--outcome", "wellbeing",
        "--covariates", "age_z,urban", "--bootstrap", "20", "--seed", "11", *SMALL])
    return res, folder, att


@pytest.mark.slow
def test_psm_bayesian_atts_through_the_cli_hold_the_sample_att(psm_run):
    """Every Bayesian ATT (two-step matching, IPW, doubly robust, regression) within 3
    posterior SDs of the sample's true ATT; regression pin on seed 21/11."""
    _, folder, att = psm_run
    est = pd.read_csv(folder / "estimates.csv")
    bayes_att = est[(est["source"] == "bayesian") & (est["quantity"] == "att")]
    assert set(bayes_att["column"]) == {"knn", "radius", "kernel", "bayes_ipw", "bayes_dr",
                                        "bayes_regression"}
    for column in bayes_att["column"]:
        _within_3_sd(_posterior(est, quantity="att", column=column), att)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["invocation"]["args"]["frequentist_only"] is False
    assert manifest["spec"]["sampler"]["draws"] == 300


# -------------------------------------------------------------- report equals the table ---

class _Tables(HTMLParser):
    """Rows of every <table data-table=...> of a page, as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._key = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._key = dict(attrs).get("data-table")
            self.tables.setdefault(self._key, [])
        elif tag == "tr" and self._key:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._key].append(self._row)
            self._row = None
        elif tag == "table":
            self._key = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _markdown_table(text: str, title: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and title in line)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().strip("*") for c in line.strip("|").split(" | ")])
    return rows[2:]  # header and rule


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9eE.+-]", "", text.replace("−", "-")))


def test_report_shows_the_numbers_of_estimates_csv(did_run):
    """Every posterior row of estimates.csv appears once in the convergence table of
    report.md and report.html, with its mean, R-hat, ESS and divergences as written (to the
    shown precision: half a unit of the last printed digit)."""
    _, folder, _ = did_run
    est = pd.read_csv(folder / "estimates.csv")
    bayes = est[est["source"] == "bayesian"].reset_index(drop=True)
    md = _markdown_table((folder / "report.md").read_text(), "Convergence of every posterior")
    page = _Tables()
    page.feed((folder / "report.html").read_text())
    html = page.tables["convergence"][1:]
    assert len(md) == len(html) == len(bayes) > 0
    for shown in (md, html):
        for cells, r in zip(shown, bayes.itertuples(), strict=True):
            assert cells[1:4] == ["" if pd.isna(x) else str(x)
                                  for x in (r.column, r.term, r.quantity)]
            assert abs(_number(cells[4]) - r.estimate) <= 5e-4
            assert abs(_number(cells[5]) - r.r_hat) <= 5e-4
            assert abs(_number(cells[6]) - r.ess_bulk) <= 0.5
            assert abs(_number(cells[7]) - r.ess_tail) <= 0.5
            assert _number(cells[8]) == r.divergences
            assert cells[9].startswith("yes" if r.converged else "NOT CONVERGED")


def test_compare_prints_the_runs_numbers(did_run):
    """`bayes-pool compare RUN` prints the beta and AME rows of the key term (the treatment)
    with the frequentist and Bayesian values of estimates.csv."""
    _, folder, _ = did_run
    res = runner.invoke(app, ["compare", str(folder)])
    assert res.exit_code == 0, res.output
    assert folder.name in res.output and "SYNTHETIC" not in res.output.split("\n")[0]
    est = pd.read_csv(folder / "estimates.csv")
    shown = est[est["quantity"].isin(["beta", "ame"]) & (est["term"] == "treated")]
    assert len(shown) >= 2
    for r in shown.itertuples():
        assert f"{r.estimate:.3f}" in res.output, (r.column, r.source)
    missing = runner.invoke(app, ["compare", str(folder / "nothing")])
    assert missing.exit_code == 2 and "estimates.csv" in missing.output


# -------------------------------------------------------------- mediate, Bayesian side ---

def test_mediate_bayesian_through_the_cli_recovers_the_paths(tmp_path, outputs):
    """Linear world: a = 0.6, b = 0.8, direct 1.0, so indirect 0.48 and total 1.48; each
    Bayesian effect within 3 posterior SDs (regression pin on seed 8)."""
    rng = np.random.default_rng(8)
    n = 1500
    t = rng.binomial(1, 0.5, n)
    m = 0.6 * t + rng.normal(0, 1, n)
    y = 1.0 * t + 0.8 * m + rng.normal(0, 1, n)
    path = tmp_path / "study.csv"
    pd.DataFrame({"tx": t, "med": m, "out": y}).to_csv(path, index=False)
    res = runner.invoke(app, ["mediate", "--data", str(path), "--treatment", "tx",
                              "--mediator", "med", "--outcome", "out", "--outcome-family",
                              "gaussian", "--bootstrap", "20", *SMALL])
    assert res.exit_code == 0, res.output
    (folder,) = list((outputs / "mediate").iterdir())
    est = pd.read_csv(folder / "estimates.csv")
    for quantity, truth in (("indirect", 0.48), ("direct", 1.0), ("total", 1.48)):
        _within_3_sd(_posterior(est, table="mediation", quantity=quantity), truth)


# ------------------------------------------------------------ Gaussian DiD, Bayesian ---

@pytest.fixture(scope="module")
def did_run(tmp_path_factory):
    """`bayes-pool did --family gaussian` on the generic panel (effect 0.8, so the AME is 0.8
    too), seed 3; also the real run whose report and comparison are checked below."""
    frame, truth = make_panel(seed=3, n=1500, family="gaussian")
    path = tmp_path_factory.mktemp("did-data") / "panel.csv"
    frame.to_csv(path, index=False)
    res, folder = _invoke_run(tmp_path_factory, "did", [
        "did", "--data", str(path), "--outcome", "y", "--treatment", "treated", "--unit",
        "county", "--time", "wave", "--covariates", "x1,x2", "--family", "gaussian", *SMALL])
    return res, folder, truth


def test_did_gaussian_bayesian_recovers_the_effect(did_run):
    """Bayesian effect within 3 posterior SDs of 0.8 (regression pin on seed 3) and the
    frequentist twin within 3 SEs."""
    _, folder, truth = did_run
    est = pd.read_csv(folder / "estimates.csv")
    effect = est[(est["term"] == "treated") & (est["quantity"].isin(["beta", "ame"]))]
    bayes = effect[effect["source"] == "bayesian"]
    freq = effect[effect["source"] == "frequentist"]
    assert len(bayes) and len(freq)
    for row in bayes.itertuples():
        _within_3_sd(pd.Series(row._asdict()), truth["ame"])
    for row in freq.itertuples():
        assert abs(row.estimate - truth["ame"]) <= 3 * row.se, row


# ------------------------------------------------------------------------- run smi-psm ---

@pytest.mark.slow
def test_run_smi_psm_on_its_synthetic_data(tmp_path_factory):
    """`bayes-pool run smi-psm` end to end at 2 x 300 draws. Slow tier: the run has no switch
    for its latent-factor model or its 200 bootstrap replicates, so even small settings cost
    minutes (2 x 200 draws: 4 CPU-minutes, 47 minutes wall at load ~40). Truths come from the manifest's record of the generator:
    Model 8's OLS coefficient (population projection) and the sample ATT of Table 6, each
    within 3 SEs (regression pins on seed 2024); the report says SYNTHETIC."""
    res, folder = _invoke_run(tmp_path_factory, "smi", ["run", "smi-psm", "--seed", "2024",
                                                        *SMALL], study="smi-psm")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["command"] == "run"
    truth = manifest["data"]["truth"]
    est = pd.read_csv(folder / "estimates.csv", dtype={"table": str})
    assert {"published", "frequentist", "bayesian"} <= set(est["source"])
    model8 = est[(est["table"] == "4") & (est["column"] == "model_8")
                 & (est["term"] == "host_city_smi") & (est["quantity"] == "beta")]
    ols = model8[model8["source"] == "frequentist"].iloc[0]
    assert abs(ols["estimate"] - truth["ols_location_coefficient"]) <= 3 * ols["se"]
    _within_3_sd(model8[model8["source"] == "bayesian"].iloc[0],
                 truth["ols_location_coefficient"])
    knn = est[(est["table"] == "6") & (est["column"] == "knn") & (est["quantity"] == "att")
              & (est["source"] == "frequentist")].iloc[0]
    assert abs(knn["estimate"] - truth["att"]) <= 3 * knn["se"]
    bayes = est[est["source"] == "bayesian"]
    assert bayes[["r_hat", "ess_bulk", "ess_tail", "divergences"]].notna().all().all()
    assert "SYNTHETIC DATA" in (folder / "report.md").read_text()
    assert "SYNTHETIC DATA" in res.output
    # issue 17: the breakdown lines of the run's key estimates, and the report's section
    rob = pd.read_csv(folder / "robustness" / "robustness.csv", dtype={"table": str})
    gamma = rob[(rob["analysis"] == "rosenbaum") & (rob["column"] == "knn")].iloc[0]
    assert gamma["status"] == "computed" and gamma["breakdown"] >= 1.0
    assert (folder / "robustness" / gamma["figure"]).is_file()
    assert "How robust is it?" in (folder / "report.md").read_text()
