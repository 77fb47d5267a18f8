"""A study is a declared record (issue 15, part 2): every built-in study is registered once
with its record, the records agree with what their packages hold, the CLI and the API read
them, and no module outside ``bayes_pool/studies/`` names a study."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bayes_pool import studies
from bayes_pool.errors import BayesPoolError, SpecError
from bayes_pool.published import ledger_path, load_ledger, study_ids

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_pool"
STUDY_NAMES = re.compile(r"pooling[-_]did|smi[-_]psm", re.IGNORECASE)
ALLOWED = {
    "event_time.py": "compatibility shim (layers engineer): its docstring names the study "
                     "pipeline that still imports it, and cohort_from_mapping's example",
    "design/staggered.py": "cohort_from_mapping's docstring example uses the built-in study's "
                           "adoption table (layers engineer's module)",
    "freq/mediation_ri.py": "the docstring explains why the test exists: three switching "
                            "provinces in the built-in DiD study (layers engineer's module)",
}
"""Modules outside studies/ that may name a built-in study, and why (docstrings only)."""


def test_no_module_outside_studies_names_a_study():
    """The core names no study: every text file of the package outside ``studies/`` is free
    of the study ids and folder names, except the allow-listed docstrings."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(PACKAGE).as_posix()
        if (not path.is_file() or rel.startswith("studies/") or rel in ALLOWED
                or path.suffix not in {".py", ".j2", ".toml", ".md"}):
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if STUDY_NAMES.search(line):
                offenders.append(f"{rel}:{no}: {line.strip()}")
    assert not offenders, "modules outside studies/ name a study:\n" + "\n".join(offenders)


def test_the_scan_would_catch_a_mention(tmp_path):
    """The pattern matches every spelling of both ids (so the test above can fail)."""
    for text in ('study == "pooling-did"', "from bayes_pool.studies.pooling_did import x",
                 "SMI-PSM", "smi_psm.pipeline"):
        assert STUDY_NAMES.search(text), text
    assert not STUDY_NAMES.search("pooling did not converge; psm")


def test_registry_lists_each_study_once_under_its_own_id():
    assert list(studies.STUDIES) == ["pooling-did", "smi-psm"]
    for key, record in studies.STUDIES.items():
        assert record.id == key and studies.get(key) is record
    with pytest.raises(SpecError, match=r"unknown study 'nope'; valid: \['pooling-did', "
                                        r"'smi-psm'\]"):
        studies.get("nope")


@pytest.mark.parametrize("study_id", list(studies.STUDIES))
def test_record_points_at_its_own_ledger(study_id):
    """``published`` is the ledger published.py reads for the id, and its rows are the
    study's; the ids with a ledger are exactly the registered ones."""
    record = studies.get(study_id)
    assert Path(str(record.published)) == Path(str(ledger_path(study_id)))
    ledger = load_ledger(study_id)
    assert len(ledger) > 0 and set(ledger["study"]) == {study_id}
    assert study_ids() == sorted([*studies.STUDIES, *studies.STUDY_FILES])


@pytest.mark.parametrize("study_id", list(studies.STUDIES))
def test_record_roles_and_key_term_are_columns_of_its_synthetic_data(study_id):
    record = studies.get(study_id)
    frame = record.simulate(seed=3, n=600).frame
    roles = record.roles
    needed = [roles.outcome, roles.treatment, record.key_term, *roles.controls,
              *(c for c in (roles.unit, roles.time) if c)]
    assert set(needed) <= set(frame.columns), sorted(set(needed) - set(frame.columns))
    assert set(record.labels) <= set(load_ledger(study_id)["table"]) | {"text", "abstract"}


def test_pooling_did_parts_are_its_pipelines_and_options_its_run_keywords():
    import inspect

    from bayes_pool.studies.pooling_did import pipeline
    record = studies.get("pooling-did")
    assert record.parts == tuple(pipeline.PARTS)
    assert set(record.options) <= set(inspect.signature(pipeline.run).parameters)
    smi = studies.get("smi-psm")
    assert smi.parts == () and smi.options == ()


def test_check_options_names_the_flags_not_of_the_study():
    record = studies.get("smi-psm")
    record.check_options({})
    with pytest.raises(SpecError, match=r"^--only, --placebo-draws: not run options of study "
                                        r"'smi-psm' \(valid: none\)"):
        record.check_options({"parts": ("x",), "placebo_draws": 3},
                             flag=lambda o: "--" + ("only" if o == "parts"
                                                    else o.replace("_", "-")))
    studies.get("pooling-did").check_options({"parts": ("table3",), "workers": 1})


def test_check_rejects_a_treatment_without_variation_by_its_role():
    """The record's roles drive the design check: a panel study's DiD check and a
    cross-section's 0/1 check both reject a treatment that never varies."""
    for study_id in studies.STUDIES:
        record = studies.get(study_id)
        frame = record.simulate(seed=4, n=3000).frame
        record.check(frame)  # the synthetic data pass
        flat = frame.assign(**{record.roles.treatment: 0})
        with pytest.raises(BayesPoolError, match=record.roles.treatment):
            record.check(flat)


def test_sensitivity_targets_come_from_the_records():
    """Each record builds its benchmark (``bayes-pool sensitivity``) on its own data: the
    key term is the record's, the marked published cell is in its ledger."""
    for study_id in studies.STUDIES:
        record = studies.get(study_id)
        target = record.sensitivity_target(record.simulate(seed=5, n=800).frame, seed=5)
        assert target.study == study_id and target.treatment == record.key_term
        assert np.isfinite(target.marked.value("estimate"))
        assert target.n_obs > 100


def test_run_rejects_options_of_another_study_before_any_folder(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bayes_pool.cli import app
    monkeypatch.setenv("BAYES_POOL_OUTPUTS", str(tmp_path / "outputs"))
    res = CliRunner().invoke(app, ["run", "smi-psm", "--only", "table2"])
    assert res.exit_code == 2
    assert "--only: not run options of study 'smi-psm'" in " ".join(res.output.split())
    assert not (tmp_path / "outputs").exists()


def test_studies_command_lists_the_records():
    from typer.testing import CliRunner

    from bayes_pool.cli import app
    res = CliRunner().invoke(app, ["studies"], terminal_width=200)
    assert res.exit_code == 0, res.output
    for record in studies.STUDIES.values():
        assert record.id in res.output
    assert "table2, table3, mediation" in res.output


def test_report_names_tables_by_the_run_manifest():
    """The report's table names: generic labels by the toolkit, a study's own labels from
    the run manifest (``table_names``, written from the record)."""
    from bayes_pool.report_tables import TABLE_NAMES, table_name
    names = TABLE_NAMES | dict(studies.get("pooling-did").labels)
    assert table_name("fig2", names) == "Figure 2 (event study)"
    assert table_name("fig2", TABLE_NAMES) == "fig2"
    assert table_name("event_study", TABLE_NAMES) == "Event study"
    assert table_name("3", TABLE_NAMES) == "Table 3"


def test_child_seeds_are_named_streams_of_the_root():
    """A part's seed depends on the root and the part's name only: the same on every call
    (pinned, so a change of the scheme shows), different across names and roots, and an
    unsigned 32-bit integer as every sampler takes."""
    from bayes_pool.seeds import child_seed
    assert child_seed(7, "frame_2012") == 4114495100
    assert child_seed(2024, "table3 (1)") == 4127147559
    names = ["table3 (1)", "table3 (2)", "mediation (1)", "fig2", "staggered", "placebo"]
    seeds = [child_seed(2024, n) for n in names]
    assert len(set(seeds)) == len(names) and all(0 <= s < 2**32 for s in seeds)
    assert child_seed(2025, "fig2") != child_seed(2024, "fig2")
