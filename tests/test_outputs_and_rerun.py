"""Where runs are written, where specs and prior sets come from, and which commands `rerun`
repeats (issue 15 part 4). No model is fitted here: each test takes well under a second."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bayes_pool
from bayes_pool import checkpoint, runs
from bayes_pool.cli import app
from bayes_pool.commands.invocation import INVOCATION_ARGS, invocation
from bayes_pool.commands.rerun import rerunnable
from bayes_pool.errors import SpecError
from bayes_pool.priors import available, load_prior_set, select
from bayes_pool.specs import MODELS_DIR, load_spec

runner = CliRunner()
PACKAGE = Path(bayes_pool.__file__).parent
SENSITIVITY_SET = '[set]\ndescription = "mine"\n[priors]\ntreatment = { dist = "Normal", mu = 0, sigma = 0.3 }\n'


def test_outputs_follow_the_current_directory_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "OUTPUTS_DIR", None)
    monkeypatch.delenv("BAYES_POOL_OUTPUTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert runs.outputs_dir() == tmp_path / "outputs"
    assert checkpoint.refits_dir("s") == tmp_path / "outputs" / "s" / ".refits"
    with runs.run_folder("s", seed=1) as partial:
        (partial / "x.txt").write_text("x")
    (done,) = (tmp_path / "outputs" / "s").iterdir()
    assert (done / "x.txt").read_text() == "x"
    monkeypatch.setenv("BAYES_POOL_OUTPUTS", "elsewhere")
    assert runs.outputs_dir() == tmp_path / "elsewhere"  # relative to the current directory
    monkeypatch.setattr(runs, "OUTPUTS_DIR", tmp_path / "fixed")
    assert runs.outputs_dir() == tmp_path / "fixed"


def test_simulate_writes_under_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "OUTPUTS_DIR", None)
    monkeypatch.delenv("BAYES_POOL_OUTPUTS", raising=False)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["simulate", "smi-psm", "--n", "300", "--seed", "5"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "outputs" / "smi-psm" / "synthetic" / "synthetic-seed5.csv").is_file()


def test_shipped_specs_are_package_resources():
    assert Path(str(MODELS_DIR)) == PACKAGE / "models"
    spec = load_spec("did_logit")
    assert Path(spec.path) == PACKAGE / "models" / "did_logit.toml"
    assert spec.family == "bernoulli" and "treatment" in spec.priors


def test_a_spec_from_a_users_folder_comes_first(tmp_path):
    shipped = (MODELS_DIR / "did_logit.toml").read_text()
    mine = shipped.replace("draws = 1000", "draws = 123")
    assert mine != shipped
    (tmp_path / "did_logit.toml").write_text(mine)
    assert load_spec("did_logit", folder=tmp_path).sampler.draws == 123
    assert load_spec(tmp_path / "did_logit.toml").sampler.draws == 123
    assert load_spec("did_linear", folder=tmp_path).family == "gaussian"  # shipped one
    with pytest.raises(SpecError, match="'nope' not found.*did_logit"):
        load_spec("nope", folder=tmp_path)


def test_prior_sets_from_a_folder_then_the_shipped_ones(tmp_path):
    (tmp_path / "mine.toml").write_text(SENSITIVITY_SET)
    assert available(tmp_path) == ["mine"]
    assert [p.name for p in select("all", tmp_path)] == ["mine"]
    assert [p.name for p in select("mine,sceptical", tmp_path)] == ["mine", "sceptical"]
    assert load_prior_set(str(tmp_path / "mine.toml")).priors["treatment"]["sigma"] == 0.3
    with pytest.raises(SpecError, match="'nope' not found.*mine.*sceptical"):
        select("nope", tmp_path)


def _written_invocations() -> set[str]:
    """Commands whose code writes an ``invocation`` record into a manifest: by name, or
    through ``commands.generic.write_analysis``, which records the command it is given."""
    sources = [PACKAGE / "cli.py", *sorted((PACKAGE / "commands").glob("*.py"))]
    calls = r'\b(?:invocation|write_analysis)\(\s*"(\w+)"'
    return {m for f in sources for m in re.findall(calls, f.read_text())}


def test_rerun_covers_every_command_that_records_an_invocation():
    written = _written_invocations()
    assert {"run", "did", "psm", "mediate", "sensitivity"} <= written
    assert set(rerunnable()) == written == set(INVOCATION_ARGS)
    for name, command in rerunnable().items():
        params = set(inspect.signature(command).parameters)
        assert set(INVOCATION_ARGS[name]) <= params, name
        assert "out_dir" in params, name


def test_rerun_of_sensitivity_hands_back_the_recorded_arguments(tmp_path, monkeypatch):
    """The invocation a sensitivity run records (relative paths made absolute) reaches the
    command again from another directory; --strict is refused, sensitivity has no exit 3."""
    import bayes_pool.commands.sensitivity as sens
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets" / "mine.toml").write_text(SENSITIVITY_SET)
    monkeypatch.chdir(tmp_path)
    scope = dict(study="pooling-did", model=None, priors="default,sets/mine.toml",
                 priors_dir=Path("sets"), data=Path("d.csv"), mapping=None, seed=9, draws=50,
                 tune=None, chains=2, workers=1, prior_draws=0, checks=False)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"invocation": invocation("sensitivity", scope)}))
    seen = {}
    monkeypatch.setattr(sens, "sensitivity", lambda **kw: seen.update(kw))
    monkeypatch.chdir(tmp_path / "sets")
    res = runner.invoke(app, ["rerun", str(manifest), "--out", "again"])
    assert res.exit_code == 0, res.output
    assert seen["priors"] == f"default,{tmp_path / 'sets' / 'mine.toml'}"
    assert seen["priors_dir"] == tmp_path / "sets" and seen["data"] == tmp_path / "d.csv"
    assert (seen["seed"], seen["draws"], seen["checks"], seen["out_dir"]) == (9, 50, False,
                                                                              Path("again"))
    assert "strict" not in seen
    res = runner.invoke(app, ["rerun", str(manifest), "--strict"])
    assert res.exit_code == 2 and "sensitivity has no convergence exit code" in res.output


def test_rerun_names_the_commands_it_repeats(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"invocation": {"command": "report", "args": {}}}))
    res = runner.invoke(app, ["rerun", str(manifest)])
    assert res.exit_code == 2 and "'report' cannot be rerun" in res.output
    assert "sensitivity" in res.output


@pytest.mark.slow  # two tiny prior-set fits, twice (about 80 s)
def test_sensitivity_rerun_from_another_directory_reproduces_its_tables(tmp_path, monkeypatch):
    """A real sensitivity run and its `rerun` from another directory (own outputs/, so no
    refit checkpoint of the first run is read back) write the same estimates and table."""
    from bayes_pool.studies.pooling_did import simulate
    monkeypatch.setattr(runs, "OUTPUTS_DIR", None)
    monkeypatch.delenv("BAYES_POOL_OUTPUTS", raising=False)
    simulate(seed=3, n=1500).frame.to_csv(tmp_path / "small.csv", index=False)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["sensitivity", "pooling-did", "--data", "small.csv", "--priors",
                              "default,sceptical", "--chains", "1", "--draws", "60", "--tune",
                              "60", "--prior-draws", "0", "--no-checks", "--workers", "1",
                              "--seed", "7"])
    assert res.exit_code == 0, res.output
    (first,) = [p for p in (tmp_path / "outputs" / "pooling-did").iterdir()
                if not p.name.startswith(".")]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    res = runner.invoke(app, ["rerun", str(first / "manifest.json"), "--out", "again"])
    assert res.exit_code == 0, res.output
    again = tmp_path / "elsewhere" / "again"
    for name in ("estimates.csv", "sensitivity.csv"):
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    assert (tmp_path / "elsewhere" / "outputs" / "pooling-did" / ".refits").is_dir()
    recorded = json.loads((again / "manifest.json").read_text())["invocation"]
    assert recorded["args"]["data"] == str(tmp_path / "small.csv")
