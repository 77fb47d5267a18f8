"""bayes_pool installs and runs like a library, outside the repository (issue 15 part 4).

A wheel is built from a copy of the source (so no build/ or egg-info lands in the tree),
installed with ``--no-deps`` into a fresh venv that sees this venv's dependencies through a
``.pth`` line, and used from an empty directory: ``bayes-pool did`` on a user CSV
(frequentist only), ``bayes-pool run pooling-did --only table2`` (fast tier) and ``--only
table3`` (slow tier: the Bayesian fits cut to one chain of 20 draws check the install, not the
sampler, but their compiles take minutes on a loaded machine) and ``python -c "import
bayes_pool"``. Outputs must land under that directory and nowhere near the source tree or the
installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import bayes_pool
from tests.conftest import make_panel

SOURCE = Path(bayes_pool.__file__).resolve().parents[1]
SEED = 4242
"""A seed no other test uses, so run folders of this test are recognisable anywhere."""


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Files under ``folder`` (bytecode caches aside) with their size and mtime."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _ours(folder: Path) -> list[Path]:
    """Run folders of this test's seed anywhere under ``folder``."""
    return sorted(folder.rglob(f"*-seed{SEED}-*")) if folder.is_dir() else []


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, wheel): the package built from a copy of the source and installed in a venv."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(SOURCE / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(SOURCE / "bayes_pool", src / "bayes_pool", symlinks=True, ignore=ignore)
    shutil.copytree(SOURCE / "models", src / "models", ignore=ignore)
    python = sys.executable
    subprocess.run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "--quiet", "-w", str(base / "dist"), str(src)],
                   check=True, capture_output=True, text=True)
    (wheel,) = (base / "dist").glob("bayes_pool-*.whl")
    venv = base / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    # A plain path line: the dependencies (and pip) of this venv, but not its editable finder.
    (purelib / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps",
                    "--no-index", "--ignore-installed", "--quiet", str(wheel)],
                   check=True, capture_output=True, text=True, env=_env())
    return venv, wheel


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BAYES_POOL_OUTPUTS")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"}


def _run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _installed_package(venv: Path, cwd: Path) -> Path:
    out = _run(venv, cwd, "python", "-c", "import bayes_pool; print(bayes_pool.__file__)")
    return Path(out.stdout.strip()).parent


def test_the_wheel_holds_specs_prior_sets_ledgers_and_the_template(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    specs = {f"bayes_pool/models/{p.name}" for p in (SOURCE / "models").glob("*.toml")}
    priors = {f"bayes_pool/models/priors/{p.name}"
              for p in (SOURCE / "models" / "priors").glob("*.toml")}
    assert "bayes_pool/models/did_logit.toml" in specs and "bayes_pool/models/priors/vague.toml" in priors
    assert specs | priors <= names
    assert {"bayes_pool/studies/pooling_did/published.csv",
            "bayes_pool/studies/smi_psm/published.csv",
            "bayes_pool/templates/report.html.j2"} <= names


def test_import_and_load_a_spec_from_an_empty_directory(installed, tmp_path):
    venv, _ = installed
    code = ("import bayes_pool as bp, bayes_pool.specs as s, bayes_pool.priors as p, "
            "bayes_pool.published as pub; spec = s.load_spec('did_logit'); "
            "print(bp.__file__); print(spec.path); print(spec.family, spec.sampler.draws); "
            "print(p.load_prior_set('sceptical').priors['treatment']['sigma']); "
            "print(len(pub.load_published('pooling-did')) > 0)")
    lines = _run(venv, tmp_path, "python", "-c", code).stdout.split("\n")
    site = venv.resolve() / "lib"
    assert Path(lines[0]).resolve().is_relative_to(site), lines[0]
    assert Path(lines[1]).resolve().is_relative_to(site), lines[1]
    assert lines[2:5] == ["bernoulli 1000", "0.1", "True"]
    assert list(tmp_path.iterdir()) == []  # importing writes nothing


@pytest.mark.parametrize("part", [
    "table2",  # descriptives only: the install, the packaged ledger and template, in seconds
    pytest.param("table3", marks=pytest.mark.slow),  # + two tiny NUTS fits (compiles: minutes)
])
def test_cli_runs_write_under_the_current_directory_only(installed, tmp_path, part):
    venv, _ = installed
    package = _installed_package(venv, tmp_path)
    before = {"package": _tree(package), "source": _tree(SOURCE / "bayes_pool"),
              "models": _tree(SOURCE / "models")}
    data = tmp_path / "panel.csv"
    make_panel(seed=3, n=600)[0].to_csv(data, index=False)
    work = tmp_path / "work"
    work.mkdir()
    _run(venv, work, "bayes-pool", "did", "--data", str(data), "--outcome", "y",
         "--treatment", "treated", "--unit", "county", "--time", "wave", "--covariates",
         "x1,x2", "--frequentist-only", "--seed", str(SEED))
    _run(venv, work, "bayes-pool", "run", "pooling-did", "--only", part, "--seed",
         str(SEED), "--chains", "1", "--draws", "20", "--tune", "20")

    (did,) = (work / "outputs" / "did").iterdir()
    est = pd.read_csv(did / "estimates.csv")
    assert set(est["source"]) == {"frequentist"} and len(est[est["term"] == "treated"]) == 2
    runs = [p for p in (work / "outputs" / "pooling-did").iterdir() if not p.name.startswith(".")]
    (run,) = runs
    est = pd.read_csv(run / "estimates.csv", dtype={"table": str})
    if part == "table3":
        fitted = est[(est["table"] == "3") & (est["term"] == "policy")]
        assert set(fitted["source"]) == {"published", "frequentist", "bayesian"}
        assert set(fitted["column"]) == {"(1)", "(2)"}
        manifest = json.loads((run / "manifest.json").read_text())
        assert Path(manifest["spec"]["path"]).resolve().is_relative_to(venv.resolve())
    else:  # Table 2's descriptives next to the packaged ledger's
        assert {"published", "frequentist"} <= set(est.loc[est["table"] == "2", "source"])
    assert (run / "report.html").is_file()  # the packaged template rendered
    assert {p.name for p in work.iterdir()} == {"outputs"}

    after = {"package": _tree(package), "source": _tree(SOURCE / "bayes_pool"),
             "models": _tree(SOURCE / "models")}
    assert after == before
    for folder in (package.parent, SOURCE):  # where outputs/ used to be computed from
        assert not _ours(folder / "outputs"), _ours(folder / "outputs")
    assert not (package.parent / "outputs").exists()
