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


# ---- convergence gating from the command line ----------------------------------------------

def test_strict_thresholds_flag_posteriors_everywhere_and_strict_exits_3(tmp_path, outputs):
    """--min-ess far above what 2 x 100 draws can give: every posterior row is NOT converged
    in estimates.csv, comparison.md and the manifest, and --strict exits 3 (the run is kept)."""
    frame, _ = make_panel(seed=8, n=400, units=6)
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    res = runner.invoke(app, _did_args(path) + ["--chains", "2", "--draws", "100", "--tune",
                                                "100", "--min-ess", "100000", "--strict"])
    assert res.exit_code == 3, res.output
    assert "NOT CONVERGED" in res.output
    (run_dir,) = list((outputs / "did").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    bayes = est[est["source"] == "bayesian"]
    assert len(bayes) and not bayes["converged"].any()
    assert (bayes["ess_bulk"] < 100000).all()  # the rows fail for the reason given
    assert bayes["note"].str.contains("NOT CONVERGED").all()
    assert bayes["note"].str.contains("ESS bulk >= 100000").all()
    assert est.loc[est["source"] == "frequentist", "converged"].isna().all()
    md = (run_dir / "comparison.md").read_text()
    treated_rows = [line for line in md.splitlines() if "| treated |" in line]
    assert treated_rows and all(line.rstrip().endswith("**NO** |") for line in treated_rows)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["invocation"]["args"]["min_ess"] == 100000
    assert manifest["convergence"]["thresholds"]["min_ess_bulk"] == 100000
    assert manifest["convergence"]["thresholds"]["min_ess_tail"] == 100000
    assert manifest["convergence"]["overridden"] == ["min_ess_bulk", "min_ess_tail"]
    assert manifest["spec"]["convergence"]["min_ess_bulk"] == 100000
    assert manifest["diagnostics"]["all_converged"] is False


def test_rerun_passes_the_recorded_thresholds(tmp_path, monkeypatch):
    """`rerun` hands the recorded gating flags back to the command (no refit needed to see it)."""
    import bayes_pool.commands.did as did_command
    from bayes_pool.commands.invocation import INVOCATION_ARGS
    manifest = tmp_path / "manifest.json"
    args = {k: None for k in INVOCATION_ARGS["did"]}
    args.update(data=str(tmp_path / "x.csv"), max_r_hat=1.05, min_ess=123.0, max_divergences=4)
    manifest.write_text(json.dumps({"invocation": {"command": "did", "args": args}}))
    seen = {}
    monkeypatch.setattr(did_command, "did", lambda **kw: seen.update(kw))
    assert runner.invoke(app, ["rerun", str(manifest)]).exit_code == 0
    assert (seen["max_r_hat"], seen["min_ess"], seen["max_divergences"]) == (1.05, 123.0, 4)


def _posterior_rows(**cols):
    from bayes_pool import estimates
    base = dict(study="s", table="t", column="c", term="d", quantity="ame", source="bayesian",
                estimate=0.1, se=0.1)
    n = len(next(iter(cols.values())))
    return estimates.frame([{**base, **{k: v[i] for k, v in cols.items()}} for i in range(n)])


def test_gate_overrides_only_the_thresholds_given():
    """A row judged by its own spec keeps that verdict for the criteria not overridden."""
    from bayes_pool.commands.common import gate
    from bayes_pool.specs import Convergence
    est = _posterior_rows(
        r_hat=[1.001, 1.03, 1.001, 1.001], ess_bulk=[900, 900, 300, 300],
        ess_tail=[900, 900, 300, 300], divergences=[0, 0, 0, 2],
        converged=[True, False, False, False],
        note=["", "NOT CONVERGED (R-hat/ESS/divergences fail the thresholds)", "NOT CONVERGED (x)",
              "NOT CONVERGED (x)"])
    base = Convergence()
    assert gate(est, base, {}) is est
    looser = gate(est, base, {"min_ess_bulk": 200, "min_ess_tail": 200})
    # row 1 still fails R-hat, row 2 now passes, row 3 still has divergences
    assert looser["converged"].tolist() == [True, False, True, False]
    assert looser["note"][2] == ""
    assert "ESS bulk >= 200" in looser["note"][1] and looser["note"][1].count("NOT CONVERGED") == 1
    stricter = gate(est, base, {"max_r_hat": 1.0005})
    assert stricter["converged"].tolist() == [False, False, False, False]
    allow_div = gate(est, base, {"max_divergences": 5, "min_ess_bulk": 200,
                                 "min_ess_tail": 200})
    assert allow_div["converged"].tolist() == [True, False, True, True]


# ---- concurrent runs -------------------------------------------------------------------------

def test_two_runs_started_at_once_write_two_complete_folders(tmp_path):
    """Two processes, same command and seed, started together: two different finished run
    folders, no partial folder left, and the same numbers in both."""
    rng = np.random.default_rng(3)
    n = 300
    t = rng.binomial(1, 0.5, n)
    m = 0.5 * t + rng.normal(0, 1, n)
    pd.DataFrame({"tx": t, "med": m, "out": 0.4 * t + 0.7 * m + rng.normal(0, 1, n)}
                 ).to_csv(tmp_path / "study.csv", index=False)
    out = tmp_path / "outputs"
    env = {**os.environ, "BAYES_POOL_OUTPUTS": str(out)}
    cmd = [sys.executable, "-m", "bayes_pool.cli", "mediate", "--data", str(tmp_path / "study.csv"),
           "--treatment", "tx", "--mediator", "med", "--outcome", "out", "--outcome-family",
           "gaussian", "--bootstrap", "20", "--frequentist-only", "--seed", "9",
           "--max-r-hat", "1.05", "--min-ess", "50"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]
    outs = [p.communicate(timeout=240)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    folders = sorted((out / "mediate").iterdir())
    assert len(folders) == 2 and not [f for f in folders if f.name.startswith(".")]
    named = {Path(line.split("Run written to ", 1)[1].strip()).name
             for text in outs for line in text.splitlines() if "Run written to " in line}
    assert named == {f.name for f in folders}  # each process reports its own folder
    for f in folders:
        assert {"estimates.csv", "manifest.json", "comparison.md"} <= {p.name for p in f.iterdir()}
    a, b = ((f / "estimates.csv").read_bytes() for f in folders)
    assert a == b
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["invocation"]["args"]["max_r_hat"] == 1.05
    assert manifest["invocation"]["args"]["min_ess"] == 50
    assert manifest["convergence"]["thresholds"]["max_r_hat"] == 1.05


def test_threshold_flags_reach_every_kind_of_spec():
    """The flags replace the [convergence] of a plain spec and of the mediation spec alike."""
    from bayes_pool.bayes.mediation import load_mediation_spec
    from bayes_pool.commands.common import thresholds, with_convergence
    from bayes_pool.specs import load_spec
    gates = thresholds(1.02, 800.0, None)
    assert gates == {"max_r_hat": 1.02, "min_ess_bulk": 800.0, "min_ess_tail": 800.0}
    for spec in (load_spec("did_logit"), load_spec("propensity_logit"), load_mediation_spec()):
        changed = with_convergence(spec, gates).convergence
        assert (changed.max_r_hat, changed.min_ess_bulk, changed.min_ess_tail) == (1.02, 800, 800)
        assert changed.max_divergences == spec.convergence.max_divergences
    assert with_convergence(load_spec("did_logit"), {}) == load_spec("did_logit")


def test_same_seed_same_second_gets_distinct_folders_and_a_shared_out_is_refused(tmp_path,
                                                                                outputs):
    """Run ids carry a random suffix, so two runs of one seed never share a folder; two runs
    told to write to the same --out at once: the second is refused with a clear message."""
    with runs.run_folder("did", seed=1) as a, runs.run_folder("did", seed=1) as b:
        assert a != b
        (a / "x").write_text("a")
        (b / "x").write_text("b")
    finished = sorted(p.name for p in (outputs / "did").iterdir())
    assert len(finished) == 2 and not any(n.startswith(".") for n in finished)
    target = tmp_path / "mine"
    with runs.run_folder("did", out=target) as first:
        with pytest.raises(FileExistsError, match="another run is writing"):
            with runs.run_folder("did", out=target):
                pass
        (first / "estimates.csv").write_text("ok")
    assert (target / "estimates.csv").read_text() == "ok"
