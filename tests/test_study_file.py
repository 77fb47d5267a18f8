"""Study files (`bayes-pool run path/to/study.toml`): a malformed file exits 2 naming the key
or column before any run folder exists; a valid one writes the run layout of a built-in study
with its published rows, the comparison and the unanswered ledger rows in the notes.

The runs here are frequentist only (``backends = ["frequentist"]``): no model is sampled.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_pool import estimates, studies, study_file
from bayes_pool.cli import app

runner = CliRunner()

LEDGER = """\
study,table,column,row,term,quantity,estimate,se,ci_low,ci_high,p_value,n_obs,stars,flag,note
toy,1,ols,D,d,beta,0.50,0.10,,,,400,,,the effect
toy,1,ols,constant,intercept,beta,1.00,0.05,,,,400,,,
toy,abstract,text,elasticity,d,elasticity,,,0.3,0.4,,,,,a range in words
"""

STUDY = """\
[study]
id = "toy"
title = "A toy study"
citation = "Nobody (2026)"
published = "published.csv"

[data]
file = "data.csv"

[[analysis]]
name = "main"
kind = "linear"
table = "1"
column = "ols"
outcome = "y"
treatment = "d"
covariates = ["x"]
backends = ["frequentist"]
"""


@pytest.fixture()
def study_dir(tmp_path):
    """A folder with a valid study file, its data (400 rows) and its ledger."""
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"d": rng.integers(0, 2, n), "x": rng.normal(size=n)})
    frame["y"] = 1.0 + 0.5 * frame["d"] + 0.3 * frame["x"] + rng.normal(size=n)
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "published.csv").write_text(LEDGER)
    (tmp_path / "study.toml").write_text(STUDY)
    return tmp_path


def run(path, *args):
    return runner.invoke(app, ["run", str(path), *args], terminal_width=200)


BAD = {
    "unknown top-level key": (STUDY + "\n[extra]\nx = 1\n", "extra"),
    "unknown [study] key": (STUDY.replace('citation = ', 'autor = "x"\ncitation = '),
                            "autor"),
    "unknown analysis key": (STUDY.replace('outcome = "y"', 'outcome = "y"\noutcom = "y"'),
                             "outcom"),
    "unknown analysis kind": (STUDY.replace('kind = "linear"', 'kind = "regression"'),
                              "regression"),
    "missing data file": (STUDY.replace('file = "data.csv"', 'file = "nowhere.csv"'),
                          "nowhere.csv"),
    "role names a missing column": (STUDY.replace('covariates = ["x"]', 'covariates = ["age"]'),
                                    "'age'"),
    "treatment names a missing column": (STUDY.replace('treatment = "d"', 'treatment = "dd"'),
                                         "'dd'"),
    "missing required role": (STUDY.replace('outcome = "y"\n', ''), "outcome"),
    "missing ledger": (STUDY.replace('published = "published.csv"',
                                     'published = "ledger.csv"'), "ledger.csv"),
    "subset that does not evaluate": (STUDY.replace('table = "1"', 'table = "1"\nsubset = '
                                                    '"state == 1"'), "subset"),
    "option of another kind": (STUDY.replace('backends', 'cohort = "x"\nbackends'), "cohort"),
    "unknown prior set": (STUDY.replace('backends', 'priors = "vaguest"\nbackends'),
                          "vaguest"),
    "unknown backend": (STUDY.replace('["frequentist"]', '["freq"]'), "backends"),
    "python function that does not import": (
        STUDY.replace('kind = "linear"', 'kind = "python"\nfunction = "no_such_module:fit"')
        .replace('covariates = ["x"]\n', ''), "no_such_module:fit"),
    "value of the wrong type": (STUDY.replace('outcome = "y"', 'outcome = ["y"]'),
                                "'outcome' must be str"),
    "unknown spec": (STUDY.replace('backends', 'spec = "linear_regresion"\nbackends'),
                     "linear_regresion"),
    "no analyses": (STUDY[:STUDY.index("[[analysis]]")], "analysis"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_study_file_exits_2_naming_the_key_before_any_folder(case, study_dir,
                                                                       outputs):
    text, named = BAD[case]
    (study_dir / "study.toml").write_text(text)
    res = run(study_dir / "study.toml")
    assert res.exit_code == 2, res.output
    assert named in res.output, res.output
    assert not outputs.exists() or not any(outputs.rglob("*")), "a run folder was created"


def test_ledger_of_another_study_is_refused_before_any_folder(study_dir, outputs):
    (study_dir / "published.csv").write_text(LEDGER.replace("toy,", "other,"))
    res = run(study_dir / "study.toml")
    assert res.exit_code == 2 and "'study'" in res.output, res.output
    assert not outputs.exists()


def test_unknown_only_name_is_refused(study_dir, outputs):
    res = run(study_dir / "study.toml", "--only", "mian")
    assert res.exit_code == 2 and "mian" in res.output and "main" in res.output, res.output


def test_options_of_builtin_runs_are_refused_for_a_study_file(study_dir, outputs):
    res = run(study_dir / "study.toml", "--placebo-draws", "5")
    assert res.exit_code == 2 and "--placebo-draws" in res.output, res.output


def test_study_file_run_writes_published_rows_comparison_and_notes(study_dir, outputs):
    res = run(study_dir / "study.toml")
    assert res.exit_code == 0, res.output
    (folder,) = (outputs / "toy").iterdir()
    for name in ("estimates.csv", "comparison.csv", "comparison.md", "manifest.json",
                 "report.html", "report.md"):
        assert (folder / name).is_file(), name
    est = estimates.read_csv(folder / "estimates.csv")
    assert set(est["study"]) == {"toy"}
    pub = est[est["source"] == "published"]
    assert len(pub) == 3 and "row: D; the effect" in set(pub["note"])
    comp = pd.read_csv(folder / "comparison.csv")
    cell = comp[(comp["term"] == "d") & (comp["quantity"] == "beta")].iloc[0]
    assert cell["published"] == 0.5 and cell["published_se"] == 0.1
    assert cell["freq_diff_se"] == pytest.approx((cell["frequentist"] - 0.5) / 0.1)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["notes"] == ["published table abstract, column text, d elasticity: no "
                                 "analysis answers it"]
    assert manifest["study"] == "toy" and manifest["citation"] == "Nobody (2026)"
    assert manifest["key_estimate"] == {"table": "1", "column": "ols", "term": "d"}
    assert manifest["data"]["kind"] == "file" and manifest["data"]["n_rows"] == 400


def test_subset_and_labels_reach_the_rows(study_dir, outputs):
    text = STUDY.replace('table = "1"', 'table = "1"\nsubset = "x > 0"')
    (study_dir / "study.toml").write_text(text)
    declared = study_file.load(study_dir / "study.toml")
    frame = pd.read_csv(study_dir / "data.csv")
    declared.check(frame)
    out = declared.analyse(frame, seed=1)
    freq = out.estimates[(out.estimates["source"] == "frequentist")
                         & (out.estimates["quantity"] == "beta")]
    assert set(freq["n_obs"]) == {float((frame["x"] > 0).sum())}
    assert set(freq["table"]) == {"1"} and set(freq["column"]) == {"ols"}


def test_builtin_names_stay_builtin_studies():
    """``run pooling-did`` is still the built-in study; a shipped study file is found by id."""
    assert not study_file.is_study_file("pooling-did")
    assert not study_file.is_study_file("smi-psm")
    assert study_file.is_study_file("my/study.toml")
    assert set(studies.STUDY_FILES).isdisjoint(studies.STUDIES)
    declared = study_file.load(str(studies.STUDY_FILES["meyer-injury"]))
    assert declared.id == "meyer-injury" and declared.key_term == "afhigh"
    assert declared.key_analysis().name == "example_13_4"
    with pytest.raises(Exception, match="key estimate"):
        declared.select(("did_michigan",)).key_analysis()


def test_api_options_the_installed_api_lacks_are_named():
    """An option the API function does not take is refused by name, so a study file never
    runs with an option silently dropped; the options Meyer et al.'s DiDs use are taken."""
    from bayes_pool.errors import SpecError
    declared = study_file.load(str(studies.STUDY_FILES["meyer-injury"]))
    did = next(a for a in declared.analyses if a.name == "did_gaussian")
    study_file.check_api(did)  # vcov, unit_effects
    did.options = {**did.options, "bootstrap_reps": 99}
    with pytest.raises(SpecError, match="bootstrap_reps"):
        study_file.check_api(did)


def test_a_family_the_installed_api_lacks_is_named():
    from bayes_pool.errors import SpecError
    declared = study_file.load(str(studies.STUDY_FILES["meyer-injury"]))
    t = next(a for a in declared.analyses if a.name == "did_student_t")
    study_file.check_api(t)  # family = "t"
    t.options = {**t.options, "family": "poisson"}
    with pytest.raises(SpecError, match="'family' = 'poisson'"):
        study_file.check_api(t)


def test_study_file_run_reruns_from_its_manifest_to_the_same_estimates(study_dir, outputs,
                                                                        monkeypatch, tmp_path):
    """The manifest records the study file's absolute path, so `rerun` repeats the run from
    any directory with identical estimates."""
    monkeypatch.chdir(study_dir)
    assert run("study.toml", "--out", str(tmp_path / "first")).exit_code == 0
    monkeypatch.chdir(tmp_path / "first")
    res = runner.invoke(app, ["rerun", str(tmp_path / "first" / "manifest.json"), "--out",
                              str(tmp_path / "again")], terminal_width=200)
    assert res.exit_code == 0, res.output
    first = (tmp_path / "first" / "estimates.csv").read_bytes()
    assert (tmp_path / "again" / "estimates.csv").read_bytes() == first


def test_api_kinds_run_through_the_api_with_the_study_labels(tmp_path, panel):
    """did, psm and mediate analyses (frequentist only) on a generated panel (SYNTHETIC):
    the rows carry the study id and the file's table/column labels, and the DiD rows equal
    bp.did's on the same data."""
    import bayes_pool as bp
    frame, _ = panel
    frame = frame.assign(m=frame["x1"] + 0.3 * frame["treated"])
    frame.to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "study.toml").write_text("""\
[study]
id = "panel"
title = "generated panel"
synthetic = true
[data]
file = "panel.csv"
[[analysis]]
name = "did"
kind = "did"
table = "2"
column = "logit"
outcome = "y"
treatment = "treated"
unit = "county"
time = "wave"
covariates = ["x1"]
backends = ["frequentist"]
[[analysis]]
name = "match"
kind = "psm"
table = "5"
treatment = "treated"
outcome = "y"
covariates = ["x1", "x2"]
bootstrap = 20
backends = ["frequentist"]
[[analysis]]
name = "mediation"
kind = "mediate"
table = "4"
column = "m"
treatment = "treated"
mediator = "m"
outcome = "y"
covariates = ["x2"]
bootstrap = 20
backends = ["frequentist"]
""")
    declared = study_file.load(tmp_path / "study.toml")
    data = pd.read_csv(tmp_path / "panel.csv")
    declared.check(data)
    out = declared.analyse(data, seed=4)
    rows = out.estimates
    # the API's facts keep their depth (write_run reads divergences there), under the name
    assert out.facts["did_table2_logit"]["n_complete"] == len(data)
    assert set(rows["study"]) == {"panel"} and set(rows["source"]) == {"frequentist"}
    assert {"2", "5", "5_balance", "4_mediator", "4_outcome", "mediation"} <= set(rows["table"])
    did = rows[rows["table"] == "2"].reset_index(drop=True)
    direct = bp.did(data, outcome="y", treatment="treated", unit="county", time="wave",
                    covariates=["x1"], backends=["frequentist"], table="2",
                    column="logit").tidy()
    assert set(did["column"]) == {"logit"}
    pd.testing.assert_series_equal(did["estimate"], direct["estimate"].reset_index(drop=True))


def test_a_generator_loader_gets_the_run_seed(tmp_path, outputs):
    """A loader with a ``seed`` parameter is a generator: ``--seed`` reaches it, its truth is
    recorded, and the run is marked SYNTHETIC (smi-psm's generator, 300 rows)."""
    from bayes_pool.studies.smi_psm import simulate
    (tmp_path / "study.toml").write_text("""\
[study]
id = "gen"
title = "generated"
synthetic = true
[data]
loader = "bayes_pool.studies.smi_psm:simulate"
options = { n = 300 }
[[analysis]]
name = "ols"
kind = "linear"
outcome = "integration_index"
treatment = "host_city_smi"
backends = ["frequentist"]
""")
    declared = study_file.load(tmp_path / "study.toml")
    frame, record = declared.load_data(seed=5)
    pd.testing.assert_frame_equal(frame, simulate(seed=5, n=300).frame)
    assert record["seed"] == 5 and record["truth"] == simulate(seed=5, n=300).truth
    assert record["fingerprint"] != declared.load_data(seed=6)[1]["fingerprint"]
    res = run(tmp_path / "study.toml", "--seed", "5", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["data"]["seed"] == 5
