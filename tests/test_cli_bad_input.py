"""Bad input at the command line: every case exits 2 with a message naming the column, the
values, the row count and what to do, and leaves ``outputs/`` untouched.

Both entry points are tried: the study (``bayes-pool run pooling-did --data FILE``, the
canonical CLDS schema of :mod:`bayes_pool.studies.pooling_did.contract`) and the generic
``bayes-pool did``. A guard replaces :func:`bayes_pool.runs.run_folder`, so a case that got
as far as creating a run folder (and would compile or sample a model) fails loudly instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from typer.testing import CliRunner

from bayes_pool import runs
from bayes_pool.cli import app
from bayes_pool.studies.pooling_did import simulate
from bayes_pool.studies.pooling_did.contract import ADOPTION_YEAR
from tests.conftest import make_panel

runner = CliRunner()

SRH_LABELS = {1: "very unhealthy", 2: "relatively unhealthy", 3: "average", 4: "healthy",
              5: "very healthy"}
HEALTHY_BY_LABEL = ('{ "very healthy" = 1, "healthy" = 1, "average" = 0, '
                    '"relatively unhealthy" = 0, "very unhealthy" = 0 }')


@pytest.fixture(scope="module")
def study_frame() -> pd.DataFrame:
    """A valid SYNTHETIC pooling-did frame (2000 rows, all 29 provinces)."""
    return simulate(seed=2, n=2000).frame


@pytest.fixture(scope="module")
def panel_frame() -> pd.DataFrame:
    """A valid generic panel (county x wave, 0/1 outcome y, treatment treated)."""
    frame, _ = make_panel(seed=1, n=400)
    return frame.assign(pid=np.arange(1000, 1000 + len(frame)))


@pytest.fixture()
def outputs(outputs, monkeypatch):
    """The shared temporary outputs/ (tests/conftest.py), and a guard: no bad input may
    reach a run folder."""
    def guard(*args, **kwargs):
        raise AssertionError("bad input reached run_folder: a model would be fitted")
    monkeypatch.setattr(runs, "run_folder", guard)
    return outputs


def _run(path, mapping=None):
    args = ["run", "pooling-did", "--data", str(path)]
    return args + (["--mapping", str(mapping)] if mapping else [])


def _did(path, mapping=None, outcome="y", extra=()):
    args = ["did", "--data", str(path), "--outcome", outcome, "--treatment", "treated",
            "--unit", "county", "--time", "wave", "--covariates", "x1,x2", *extra]
    return args + (["--mapping", str(mapping)] if mapping else [])


def _csv(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _truncated_dta(tmp_path, frame):
    good = tmp_path / "good.dta"
    pyreadstat.write_dta(frame, str(good))
    bad = tmp_path / "truncated.dta"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return bad


def _corrupt_sav(tmp_path, frame):
    good = tmp_path / "good.sav"
    pyreadstat.write_sav(frame, str(good))
    raw = bytearray(good.read_bytes())
    raw[64:4096] = b"\xff" * (4096 - 64)  # overwrite the dictionary after the header
    bad = tmp_path / "corrupt.sav"
    bad.write_bytes(bytes(raw))
    return bad


def _first_rows_of(frame, column, n=1, keep=None):
    """``frame`` with only ``n`` rows left of the value ``keep`` of ``column``."""
    rows = frame.index[frame[column] == keep]
    return frame.drop(rows[n:])


# ---- the study: bayes-pool run pooling-did --data FILE -----------------------------------

def _study_missing_column(tmp, f):
    return _run(_csv(tmp, f.drop(columns="healthy"))), \
        ["'healthy'", "lacks 1 required column", "What to do", "[columns]"]


def _study_wrong_type(tmp, f):
    bad = f.assign(age=f["age"].astype(object))
    bad.loc[bad.index[:3], "age"] = "forty"
    return _run(_csv(tmp, bad)), ["'age'", "'forty'", "3 rows fail", "1 problem in 1 column",
                                  "What to do"]


def _study_out_of_range_code(tmp, f):
    bad = f.assign(education=f["education"].where(f.index % 100 != 0, 9))
    n = int((bad["education"] == 9).sum())
    return _run(_csv(tmp, bad)), ["'education'", "offending values: 9", f"{n} rows fail",
                                  "isin [0, 1, 2, 3, 4, 5]", "What to do", "[[recode]]"]


def _study_unlabelled_code(tmp, f):
    raw = f.drop(columns=["healthy"]).rename(columns={"self_rated_health": "qa301"})
    raw.loc[raw.index[[3, 8]], "qa301"] = 7  # a code without a value label
    path = tmp / "clds.dta"
    pyreadstat.write_dta(raw, str(path), variable_value_labels={"qa301": SRH_LABELS})
    mapping = tmp / "map.toml"
    mapping.write_text('[columns]\nself_rated_health = "qa301"\n\n[[recode]]\n'
                       'target = "healthy"\nsource = "self_rated_health"\nkind = "label_map"\n'
                       f"map = {HEALTHY_BY_LABEL}\n")
    return _run(path, mapping), ["self_rated_health", "7", "2 rows", "label"]


def _study_missing_required_values(tmp, f):
    return _run(_csv(tmp, f.assign(province=f["province"].where(f.index % 250 != 7)))), \
        ["'province'", "not null", "8 rows fail", "What to do"]


def _study_non_binary_outcome(tmp, f):
    bad = f.assign(healthy=f["healthy"].where(f.index % 400 != 0, 2))
    return _run(_csv(tmp, bad)), ["'healthy'", "offending values: 2", "5 rows fail",
                                  "What to do"]


def _study_treatment_never_varies(tmp, f):
    never = f[~f["province"].isin(ADOPTION_YEAR)]
    return _run(_csv(tmp, never)), ["'policy'", "never varies", f"all {len(never)} rows = 0",
                                    "What to do"]


def _study_single_row_province(tmp, f):
    return _run(_csv(tmp, _first_rows_of(f, "province", keep="Gansu"))), \
        ["'province'", "'Gansu' (1 row)", "What to do"]


def _study_separation(tmp, f):
    bad = f.assign(smoke=f["healthy"].astype(float))  # a "covariate" that is the outcome
    return _run(_csv(tmp, bad)), ["'smoke'", "perfectly predicts", "'healthy'",
                                  "complete cases", "every row with smoke <= 0 has healthy = 0 (",
                                  "What to do"]


def _study_empty_file(tmp, f):
    path = tmp / "clds.csv"
    path.write_bytes(b"")
    return _run(path), [str(path), "empty (0 bytes)", "Re-export"]


def _study_truncated_dta(tmp, f):
    path = _truncated_dta(tmp, f)
    return _run(path), [str(path), "truncated or corrupt", "re-export"]


def _study_corrupt_sav(tmp, f):
    path = _corrupt_sav(tmp, f)
    return _run(path), [str(path), "as sav", "re-export"]


def _study_mapping_names_absent_column(tmp, f):
    path = _csv(tmp, f.rename(columns={"self_rated_health": "qa301"}))
    mapping = tmp / "map.toml"
    mapping.write_text('[columns]\nself_rated_health = "qa3O1"\nprovince = "prov_hukou"\n')
    return _run(path, mapping), ["'qa3O1'", "'prov_hukou'", "qa301"]


def _study_duplicate_ids(tmp, f):
    bad = f.copy()
    bad.loc[bad.index[[10, 20]], "respondent_id"] = bad["respondent_id"].iloc[5]
    value = int(bad["respondent_id"].iloc[5])
    return _run(_csv(tmp, bad)), ["'respondent_id'", "unique", f"offending values: {value}",
                                  "3 rows fail", "What to do"]


STUDY_CASES = {name.removeprefix("_study_"): fn for name, fn in dict(globals()).items()
               if name.startswith("_study_")}


@pytest.mark.parametrize("case", sorted(STUDY_CASES))
def test_study_rejects_bad_input(case, study_frame, tmp_path, outputs):
    args, needles = STUDY_CASES[case](tmp_path, study_frame.copy())
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "error:" in res.output
    for needle in needles:
        assert needle in res.output, f"{needle!r} not in:\n{res.output}"
    assert " 0 rows" not in res.output  # no problem is reported without rows to show it
    assert not outputs.exists(), sorted(outputs.rglob("*"))


# ---- the generic command: bayes-pool did --data FILE --outcome ... -----------------------

def _did_missing_column(tmp, f):
    return _did(_csv(tmp, f), outcome="healthy"), \
        ["missing column(s) ['healthy']", "'y'", "What to do"]


def _did_wrong_type(tmp, f):
    bad = f.assign(x1=f["x1"].astype(object))
    bad.loc[bad.index[:4], "x1"] = "unknown"
    return _did(_csv(tmp, bad)), ["'x1'", "must be numeric", "4 row(s)", "'unknown'",
                                  "What to do"]


def _did_treatment_not_binary(tmp, f):
    return _did(_csv(tmp, f.assign(treated=f["treated"] + 1))), \
        ["'treated'", "must be 0/1", f"{int((f['treated'] == 1).sum())} row(s)", "'2'",
         "mapping file"]


def _did_unlabelled_code(tmp, f):
    raw = f.assign(srh=np.where(f["y"] == 1, 5, 2))
    raw.loc[raw.index[[0, 1, 2]], "srh"] = 9
    path = tmp / "panel.dta"
    pyreadstat.write_dta(raw.drop(columns="y"), str(path),
                         variable_value_labels={"srh": SRH_LABELS})
    mapping = tmp / "map.toml"
    mapping.write_text('[[recode]]\ntarget = "y"\nsource = "srh"\nkind = "label_map"\n'
                       f"map = {HEALTHY_BY_LABEL}\n")
    return _did(path, mapping), ["srh", "9", "3 rows", "label"]


def _did_missing_required_values(tmp, f):
    return _did(_csv(tmp, f.assign(wave=f["wave"].where(f.index % 50 != 0)))), \
        ["'wave'", "8 missing value(s) in 400 rows", "What to do"]


def _did_non_binary_outcome(tmp, f):
    bad = f.assign(y=f["y"].where(f.index > 2, 3))
    return _did(_csv(tmp, bad)), ["'y'", "must be 0/1", "3 row(s)", "'3'", "mapping file"]


def _did_treatment_never_varies(tmp, f):
    return _did(_csv(tmp, f.assign(treated=0))), \
        ["'treated'", "never varies", "all 400 rows = 0", "What to do"]


def _did_treatment_never_changes_within_units(tmp, f):
    bad = f.assign(treated=(f["county"] < "c03").astype(int))
    return _did(_csv(tmp, bad)), ["'treated'", "never changes within any 'county'",
                                  "What to do"]


def _did_single_row_unit(tmp, f):
    extra = f.iloc[[0]].assign(county="c99", pid=99999)
    return _did(_csv(tmp, pd.concat([f, extra]))), \
        ["'county'", "'c99' (1 row)", "in 401 rows", "What to do"]


def _did_separation_by_treatment(tmp, f):
    bad = f.assign(y=f["treated"])
    n1 = int(f["treated"].sum())
    return _did(_csv(tmp, bad)), ["'treated'", "perfectly predicts", "'y'",
                                  f"treated >= 1 has y = 1 ({n1} rows)", "What to do"]


def _did_quasi_separation_by_covariate(tmp, f):
    bad = f.assign(x2=f["x2"].where(f["y"] == 1, 0))  # x2 = 1 only among y = 1
    n = int((bad["x2"] == 1).sum())
    return _did(_csv(tmp, bad)), ["'x2'", "quasi-complete separation",
                                  f"every one of the {n} rows with x2 > 0 has y = 1",
                                  "What to do"]


def _did_constant_covariate(tmp, f):
    return _did(_csv(tmp, f.assign(x2=1))), ["'x2'", "constant", "all 400 rows = 1",
                                            "What to do"]


def _did_empty_file(tmp, f):
    path = tmp / "panel.parquet"
    path.write_bytes(b"")
    return _did(path), [str(path), "empty (0 bytes)", "Re-export"]


def _did_header_only_csv(tmp, f):
    path = tmp / "panel.csv"
    path.write_text(",".join(f.columns) + "\n")
    return _did(path), [str(path), "no data (0 rows", "Check that the export wrote the data"]


def _did_truncated_dta(tmp, f):
    path = _truncated_dta(tmp, f)
    return _did(path), [str(path), "truncated or corrupt", "re-export"]


def _did_corrupt_sav(tmp, f):
    path = _corrupt_sav(tmp, f)
    return _did(path), [str(path), "as sav", "re-export"]


def _did_mapping_names_absent_column(tmp, f):
    path = _csv(tmp, f.rename(columns={"y": "outcome_raw"}))
    mapping = tmp / "map.toml"
    mapping.write_text('[columns]\ny = "outcome_rw"\n')
    return _did(path, mapping), ["'outcome_rw'", "outcome_raw"]


def _did_duplicate_ids(tmp, f):
    bad = f.copy()
    bad.loc[bad.index[[7, 9]], "pid"] = 1003
    return _did(_csv(tmp, bad), extra=["--id", "pid"]), \
        ["'pid'", "3 rows share 1 duplicated id(s): 1003", "row positions (0-based) 3, 7, 9",
         "What to do"]


DID_CASES = {name.removeprefix("_did_"): fn for name, fn in dict(globals()).items()
             if name.startswith("_did_") and name != "_did"}


@pytest.mark.parametrize("case", sorted(DID_CASES))
def test_generic_did_rejects_bad_input(case, panel_frame, tmp_path, outputs):
    args, needles = DID_CASES[case](tmp_path, panel_frame.copy())
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "error:" in res.output
    for needle in needles:
        assert needle in res.output, f"{needle!r} not in:\n{res.output}"
    assert " 0 rows" not in res.output  # no problem is reported without rows to show it
    assert not outputs.exists(), sorted(outputs.rglob("*"))


def test_suite_covers_the_issue_list():
    """The issue's twelve kinds of bad input, each tried on at least one command."""
    kinds = {"missing_column", "wrong_type", "out_of_range_code", "unlabelled_code",
             "missing_required_values", "non_binary_outcome", "treatment_never_varies",
             "single_row", "separation", "empty_file", "truncated_dta", "corrupt_sav",
             "mapping_names_absent_column", "duplicate_ids"}
    names = set(STUDY_CASES) | set(DID_CASES)
    for kind in kinds:
        assert any(kind in name for name in names), kind
    assert len(STUDY_CASES) >= 12 and len(DID_CASES) >= 12


def test_valid_inputs_pass_the_same_checks(study_frame, panel_frame, tmp_path, outputs,
                                           monkeypatch):
    """The fixtures are valid: with the guard in place both commands get as far as the run
    folder, so every rejection above is due to its corruption."""

    class Reached(Exception):
        pass

    def stop(*args, **kwargs):
        raise Reached
    monkeypatch.setattr(runs, "run_folder", stop)
    for args in (_run(_csv(tmp_path, study_frame, "study.csv")),
                 _did(_csv(tmp_path, panel_frame, "panel.csv"), extra=["--id", "pid"])):
        res = runner.invoke(app, args)
        assert isinstance(res.exception, Reached), res.output


def test_run_option_a_study_does_not_have_is_refused(outputs):
    """`--only`/`--placebo-draws` belong to pooling-did; smi-psm refuses them by name
    instead of failing inside its pipeline."""
    res = runner.invoke(app, ["run", "smi-psm", "--only", "table4", "--placebo-draws", "5"])
    assert res.exit_code == 2, res.output
    assert "--only" in res.output and "--placebo-draws" in res.output and "smi-psm" in res.output
    assert not outputs.exists()
