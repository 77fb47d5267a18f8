"""The public Python API (:mod:`bayes_pool.api`, :mod:`bayes_pool.results`).

Its tables are the rows the workflows and the commands produce for the same seed; its
arguments are checked before anything is fitted; its views (summary, diagnostics, plot) show
the table's own numbers; convergence is judged from the diagnostic columns, never the notes.
One real NUTS fit (2 chains x 200 draws); the rest is frequentist, Laplace or hand-made rows.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # the tests choose the backend; the library never does

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.special import expit  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import bayes_pool as bp  # noqa: E402
from bayes_pool import estimates  # noqa: E402
from bayes_pool.design import DiDDesign  # noqa: E402
from bayes_pool.errors import InputError, SpecError  # noqa: E402
from bayes_pool.specs import Convergence, load_spec  # noqa: E402
from bayes_pool.workflow import Analysis  # noqa: E402
from tests.conftest import make_panel  # noqa: E402

NUMERIC = ["estimate", "se", "ci_low", "ci_high", "p_value", "n_obs", "r_hat", "ess_bulk",
           "ess_tail", "divergences"]
TEXT = ["study", "table", "column", "term", "quantity", "source", "note"]
QUICK = dict(draws=200, tune=200, chains=2)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame, *, rtol: float = 0.0,
                     atol: float = 1e-10) -> None:
    """Same rows in the same order: text columns equal, numbers to the tolerance."""
    assert len(got) == len(want) > 0
    got, want = got.reset_index(drop=True), want.reset_index(drop=True)
    pd.testing.assert_frame_equal(got[TEXT], want[TEXT])
    np.testing.assert_allclose(got[NUMERIC].to_numpy(float), want[NUMERIC].to_numpy(float),
                               rtol=rtol, atol=atol)
    assert got["converged"].astype(object).tolist() == want["converged"].astype(object).tolist()


def _cli_table(args: list[str], outputs) -> pd.DataFrame:
    from bayes_pool.cli import app
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    (run_dir,) = [p for p in (outputs / args[0]).iterdir() if p.is_dir()]
    return estimates.read_csv(run_dir / "estimates.csv")


def did_panel(seed: int = 3, n: int = 800) -> pd.DataFrame:
    """The conftest panel plus a text covariate with three levels."""
    frame, _ = make_panel(seed=seed, n=n)
    rng = np.random.default_rng(seed)
    return frame.assign(sector=rng.choice(["farm", "factory", "service"], len(frame)))


def cross_section(seed: int = 7, n: int = 500) -> pd.DataFrame:
    """SYNTHETIC: a 0/1 treatment selected on age, education (text) and sex; a continuous
    mediator it moves by 0.6; outcomes ``y`` (ATT 0.5) and ``y_med`` (direct 0.3, mediator 0.5)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 6, n)
    educ = rng.choice(["none", "primary", "secondary"], n, p=[0.3, 0.5, 0.2])
    male = rng.binomial(1, 0.5, n)
    t = rng.binomial(1, expit(-0.5 + 0.05 * (age - 60) + 0.4 * male + 0.5 * (educ == "secondary")))
    m = 0.6 * t + rng.normal(0, 1, n)
    return pd.DataFrame({"t": t, "age": age, "educ": educ, "male": male, "m": m,
                         "y": 0.5 * t + 0.02 * age + 0.3 * male + rng.normal(0, 1, n),
                         "y_med": 0.3 * t + 0.5 * m + rng.normal(0, 1, n)})


def staggered_panel(seed: int = 41) -> pd.DataFrame:
    """SYNTHETIC balanced linear panel: 40 units x 6 periods, cohorts 3, 4, 5 and never."""
    rng = np.random.default_rng(seed)
    first = np.repeat([3, 4, 5, 0], [8, 8, 8, 16])
    level = rng.normal(0, 1, len(first))
    rows = [{"unit": f"u{i:02d}", "period": t, "first": g, "d": int(g > 0 and t >= g),
             "y": level[i] + 0.3 * t + (g > 0 and t >= g) * (1 + 0.5 * (t - g))
             + rng.normal(0, 0.5)}
            for i, g in enumerate(first) for t in range(1, 7)]
    return pd.DataFrame(rows)


# ---- the same rows as the commands and the workflows -----------------------------------------

def test_did_tidy_equals_the_commands_estimates_csv(tmp_path, outputs):
    """bp.did and `bayes-pool did` on the same file and seed: the same rows (frequentist and
    the Laplace posterior; the CSV keeps 10 significant digits). Text covariates with a
    reference level work as on the command line."""
    frame = did_panel()
    path = tmp_path / "user.csv"
    frame.to_csv(path, index=False)
    cli = _cli_table(["did", "--data", str(path), "--outcome", "y", "--treatment", "treated",
                      "--unit", "county", "--time", "wave", "--covariates", "x1,sector",
                      "--reference", "sector=farm", "--approx", "laplace", "--seed", "11"],
                     outputs)
    r = bp.did(pd.read_csv(path), outcome="y", treatment="treated", unit="county", time="wave",
               covariates=["x1", "sector"], reference={"sector": "farm"}, approx="laplace",
               seed=11)
    assert_same_rows(r.tidy(), cli, rtol=1e-9)
    assert {"sector_factory", "sector_service"} <= set(cli["term"])  # farm is the reference
    assert set(cli["source"]) == {"frequentist", "bayesian"}
    only = bp.did(frame, outcome="y", treatment="treated", unit="county", time="wave",
                  covariates=["x1"], approx="laplace", backends=("bayesian",), seed=11)
    assert set(only.tidy()["source"]) == {"bayesian"}


def test_psm_and_mediate_tidy_equal_the_commands_estimates_csv(tmp_path, outputs):
    """bp.psm and bp.mediate with backends=("frequentist",) against `bayes-pool psm/mediate
    --frequentist-only` on the same file and seed (bootstraps included)."""
    frame = cross_section()
    path = tmp_path / "cross.csv"
    frame.to_csv(path, index=False)
    cli = _cli_table(["psm", "--data", str(path), "--treatment", "t", "--outcome", "y",
                      "--covariates", "age,educ,male", "--bootstrap", "30", "--seed", "4",
                      "--frequentist-only"], outputs)
    r = bp.psm(frame, treatment="t", outcome="y", covariates=["age", "educ", "male"],
               bootstrap=30, seed=4, backends=("frequentist",))
    assert_same_rows(r.tidy(), cli, rtol=1e-9)
    assert {"psm", "psm_balance"} == set(cli["table"]) and r.idata is None
    cli = _cli_table(["mediate", "--data", str(path), "--treatment", "t", "--mediator", "m",
                      "--outcome", "y_med", "--covariates", "age,educ", "--outcome-family",
                      "gaussian", "--bootstrap", "30", "--seed", "4", "--frequentist-only"],
                     outputs)
    r = bp.mediate(frame, treatment="t", mediator="m", outcome="y_med",
                   covariates=["age", "educ"], family="gaussian", bootstrap=30, seed=4,
                   backends=("frequentist",))
    assert_same_rows(r.tidy(), cli, rtol=1e-9)
    assert {"indirect", "direct", "total"} <= set(cli.loc[cli["table"] == "mediation",
                                                          "quantity"])


@pytest.mark.parametrize("command, roles", [
    ("did", ["--outcome", "y", "--treatment", "treated", "--unit", "county", "--time", "wave"]),
    ("psm", ["--treatment", "treated", "--outcome", "x1", "--covariates", "x2"]),
    ("mediate", ["--treatment", "treated", "--mediator", "x1", "--outcome", "y"]),
])
def test_generic_commands_fit_through_the_api(command, roles, tmp_path, outputs, monkeypatch):
    """`did`, `psm` and `mediate` are clients of bp.did / bp.psm / bp.mediate: with the API
    function replaced, the command reaches the replacement (after its input checks, inside the
    run folder, which is removed again) with the whole frame and the backends chosen."""
    from bayes_pool.cli import app

    class Reached(Exception):
        pass

    seen = {}

    def replacement(data, **kwargs):
        seen.update(kwargs, n_rows=len(data))
        raise Reached
    monkeypatch.setattr(bp.api, command, replacement)
    frame, _ = make_panel(seed=3, n=300)
    frame.to_csv(tmp_path / "panel.csv", index=False)
    res = CliRunner().invoke(app, [command, "--data", str(tmp_path / "panel.csv"), *roles,
                                   "--seed", "9", "--frequentist-only"])
    assert isinstance(res.exception, Reached), res.output
    assert (seen["n_rows"], seen["treatment"], seen["seed"]) == (300, "treated", 9)
    assert seen["backends"] == ("frequentist",)
    assert not [p for p in (outputs / command).iterdir()]


def test_event_study_and_staggered_tidy_equal_the_workflows():
    """bp.event_study and bp.staggered give the workflow functions' rows, the event study's
    under the generic table label (event_study) that the command writes too."""
    from bayes_pool.staggered_workflow import analyse_event_study, analyse_staggered
    panel = staggered_panel()
    roles = dict(outcome="y", treatment="d", unit="unit", time="period", cohort="first",
                 family="gaussian", seed=9)
    es = bp.event_study(panel, backends=("frequentist",), **roles)
    want = analyse_event_study(panel, study="did", bayesian=False, **roles).estimates
    assert (want["table"] == "event_study").all()
    assert_same_rows(es.tidy(), want)
    st = bp.staggered(panel, backends="frequentist", **roles)
    assert_same_rows(st.tidy(), analyse_staggered(panel, study="did", bayesian=False,
                                                  **roles).estimates)
    assert {"etwfe", "twfe", "g3_t3"} <= set(st.tidy()["column"])


@pytest.mark.slow  # two NUTS compiles; the frequentist and Laplace rows are compared fast
def test_did_posterior_rows_equal_the_workflows_for_the_same_seed():
    """One small NUTS fit each way, same seed: the same posterior rows, one posterior
    (a DataTree with the treatment's draws), and diagnostics whose verdict follows from the
    columns (2 x 200 draws cannot reach ESS 400, so every row fails)."""
    from bayes_pool.workflow import analyse_did
    frame, _ = make_panel(seed=5, n=400)
    r = bp.did(frame, outcome="y", treatment="treated", unit="county", time="wave", seed=8,
               **QUICK)
    spec = load_spec("did_logit").with_sampler(**QUICK)
    want = analyse_did(frame, DiDDesign("y", "treated", "county", "wave"), spec, seed=8,
                       study="did", table="did", column="bernoulli").estimates
    assert_same_rows(r.tidy(), want)
    assert "treated" in r.idata["posterior"].data_vars
    diag = r.diagnostics()
    bayes = want[want["source"] == "bayesian"]
    assert len(diag) == len(bayes) == 2
    expect = ((bayes["r_hat"] <= 1.01) & (bayes["ess_bulk"] >= 400) & (bayes["ess_tail"] >= 400)
              & (bayes["divergences"] <= 0)).tolist()
    assert diag["converged"].tolist() == expect
    loose = r.diagnostics(max_r_hat=1.1, min_ess_bulk=50, min_ess_tail=50, max_divergences=5)
    expect = ((bayes["r_hat"] <= 1.1) & (bayes["ess_bulk"] >= 50) & (bayes["ess_tail"] >= 50)
              & (bayes["divergences"] <= 5)).tolist()
    assert loose["converged"].tolist() == expect


# ---- arguments are checked before anything is fitted -----------------------------------------

def _did(data=None, **changes):
    frame = make_panel(seed=1, n=200)[0] if data is None else data
    kw = dict(outcome="y", treatment="treated", unit="county", time="wave",
              backends=("frequentist",)) | changes
    return bp.did(frame, **kw)


@pytest.mark.parametrize("changes, error, message", [
    ({"backends": ("frequentist", "mcmc")}, SpecError, "backends must be a non-empty subset"),
    ({"backends": ()}, SpecError, "backends must be a non-empty subset"),
    ({"family": "poisson"}, SpecError, "family must be one of"),
    ({"approx": "vi"}, SpecError, "only approximation is 'laplace'"),
    ({"spec": "no_such_spec"}, SpecError, "model spec 'no_such_spec' not found"),
    ({"outcome": "health"}, InputError, r"missing column\(s\) \['health'\]"),
    ({"covariates": ["x1", 3]}, InputError, "covariates must be column names"),
    ({"data": {"y": [1, 0]}}, InputError, "data must be a pandas DataFrame, got dict"),
    ({"draws": 0}, SpecError, "draws must be an integer >= 1, got 0"),
    ({"tune": -5}, SpecError, "tune must be an integer >= 0, got -5"),
    ({"chains": 2.5}, SpecError, "chains must be an integer >= 1, got 2.5"),
    ({"seed": "2024"}, SpecError, "seed must be an integer >= 0, got '2024'"),
])
def test_bad_arguments_raise_named_errors(changes, error, message):
    with pytest.raises(error, match=message):
        _did(**changes)


def test_bad_arguments_of_the_other_analyses():
    panel = staggered_panel()
    with pytest.raises(SpecError, match=r"control must be one of \['never', 'notyet'\]"):
        bp.event_study(panel, outcome="y", treatment="d", unit="unit", time="period",
                       cohort="first", family="gaussian", control="everyone")
    with pytest.raises(InputError, match="'income'"):
        bp.psm(cross_section(n=200), treatment="t", outcome="y", covariates=["age", "income"],
               backends=("frequentist",))
    with pytest.raises(SpecError, match="family must be one of"):
        bp.mediate(cross_section(n=200), treatment="t", mediator="m", outcome="y_med",
                   family="probit")
    with pytest.raises(SpecError, match=r"unknown study 'card-krueger'; valid: \['pooling-did'"):
        bp.study("card-krueger")
    with pytest.raises(SpecError, match=r"bootstrap: not run options of study 'pooling-did'"):
        bp.study("pooling-did").run(bootstrap=10)


# ---- views: summary, diagnostics and plot show the table's numbers ---------------------------

def _hand_made() -> bp.Result:
    """A frequentist and two posterior rows with known diagnostics; the second posterior's
    note claims convergence its columns do not have (the verdict must follow the columns)."""
    common = dict(study="s", table="t", column="c", term="d", quantity="ame", n_obs=500)
    rows = [estimates.row(**common, source="frequentist", estimate=0.1234, se=0.0456,
                          ci_low=0.0340, ci_high=0.2128, p_value=0.0068),
            estimates.row(**common, source="bayesian", estimate=0.1187, se=0.0421,
                          ci_low=0.0361, ci_high=0.2013, r_hat=1.004, ess_bulk=812.0,
                          ess_tail=655.0, divergences=0, converged=True, note="fine"),
            estimates.row(**{**common, "column": "c2"}, source="bayesian", estimate=0.2,
                          se=0.05, ci_low=0.1, ci_high=0.3, r_hat=1.03, ess_bulk=150.0,
                          ess_tail=120.0, divergences=3, converged=False, note="converged")]
    return bp.Result(analysis=Analysis(estimates=estimates.frame(rows)), title="hand-made",
                     thresholds=Convergence(), shown={"term": ("d",)})


def test_summary_shows_each_rows_numbers_and_verdict():
    r = _hand_made()
    text = r.summary()
    rows = [line.split() for line in text.splitlines()]

    def row(column, source):
        (found,) = [t for t in rows if column in t and source in t]
        return found

    for shown in ("0.1234", "0.0456", "0.034", "0.2128", "0.0068"):
        assert shown in row("c", "frequentist"), shown
    for shown in ("0.1187", "0.0421", "0.0361", "0.2013", "1.004", "812", "655", "0"):
        assert shown in row("c", "Bayesian"), shown
    assert row("c", "Bayesian")[-1] == "yes"
    assert row("c2", "Bayesian")[-1] == "NO" and "1.03" in row("c2", "Bayesian")
    assert "1 posterior row(s) NOT CONVERGED" in text
    only = [line.split() for line in r.summary(column="c2").splitlines()]
    assert any("c2" in t for t in only) and not any("c" in t for t in only)


def test_diagnostics_and_converged_read_columns_not_notes():
    r = _hand_made()
    diag = r.diagnostics()
    assert diag["column"].tolist() == ["c", "c2"]
    assert diag["converged"].tolist() == [True, False]
    # the limits the second row meets: it passes only when all four are relaxed
    assert r.diagnostics(max_r_hat=1.05, min_ess_bulk=100, min_ess_tail=100,
                         max_divergences=3)["converged"].tolist() == [True, True]
    assert r.diagnostics(max_r_hat=1.05, min_ess_bulk=100, min_ess_tail=100,
                         max_divergences=2)["converged"].tolist() == [True, False]
    table = r.tidy()
    verdict = estimates.converged(table, {"max_r_hat": 1.01, "min_ess_bulk": 800})
    assert verdict.isna().tolist() == [True, False, False]  # frequentist: no verdict
    assert verdict.tolist()[1:] == [True, False]
    assert estimates.converged(table, {"min_ess_bulk": 900}).tolist()[1:] == [False, False]
    with pytest.raises(ValueError, match="unknown convergence threshold"):
        estimates.converged(table, {"max_rhat": 1.01})


def test_plot_draws_the_tables_values_without_writing(tmp_path, monkeypatch):
    """The forest plot's markers sit at the estimates and its bars span the intervals; the
    unconverged posterior is hollow; the event-study path is the beta per event time."""
    monkeypatch.chdir(tmp_path)
    r = _hand_made()
    fig, ax = r.plot()
    assert isinstance(fig, matplotlib.figure.Figure) and ax.figure is fig
    by = {c.get_gid(): c for c in ax.collections if c.get_gid()}
    table = r.tidy()
    for source in ("frequentist", "bayesian"):
        rows = table[table["source"] == source]
        np.testing.assert_allclose(by[source].get_offsets()[:, 0], rows["estimate"])
    faces = by["bayesian"].get_facecolors()
    assert faces[0][:3].tolist() != [1.0, 1.0, 1.0] and faces[1][:3].tolist() == [1.0, 1.0, 1.0]
    bars = [c.get_segments() for c in ax.collections if c.get_gid() is None]
    for segments, source in zip(bars, ("frequentist", "bayesian"), strict=True):
        rows = table[table["source"] == source]
        np.testing.assert_allclose([s[:, 0] for s in segments],
                                   rows[["ci_low", "ci_high"]].to_numpy())
    es = bp.event_study(staggered_panel(), outcome="y", treatment="d", unit="unit",
                        time="period", cohort="first", family="gaussian",
                        backends=("frequentist",))
    fig, ax = es.plot()
    (path,) = [c for c in ax.collections if c.get_gid() == "frequentist"]
    beta = es.tidy().query("quantity == 'beta'")
    k = beta["column"].str.replace("event_time_", "").astype(float)
    np.testing.assert_allclose(path.get_offsets()[:, 0] + 0.08, k.sort_values())
    np.testing.assert_allclose(path.get_offsets()[:, 1], beta.loc[k.sort_values().index,
                                                                   "estimate"])
    assert list(tmp_path.iterdir()) == []  # nothing written


# ---- a published study -------------------------------------------------------------------------

def test_study_run_passes_seed_spec_extras_and_data_to_the_studys_pipeline(monkeypatch):
    """As `bayes-pool run`: the synthetic data and extras of the seed (or the user's frame
    through the study's prepare), the default spec with the sampler overrides, the run
    options; the result says whether the data were synthetic. The pipeline is replaced by a
    recorder (the real one runs in the next test)."""
    import dataclasses

    from bayes_pool import studies
    from bayes_pool.studies import pooling_did
    from bayes_pool.synthetic import SyntheticData
    seen = {}
    from bayes_pool.seeds import child_seed
    seed_2012 = child_seed(7, "frame_2012")
    frames = {s: pd.DataFrame({"seed": [s]}) for s in (7, seed_2012)}
    simulate = lambda seed, **kw: SyntheticData(  # noqa: E731
        study="pooling-did", frame=frames[seed], seed=seed)
    monkeypatch.setattr(pooling_did, "simulate", simulate)  # what synthetic_extras calls

    def run(frame, **kwargs):
        seen.update(frame=frame, **kwargs)
        return Analysis(estimates=estimates.frame([estimates.row(
            study="pooling-did", table="3", column="(1)", term="policy", quantity="ame",
            source="published", estimate=0.05, se=0.01)]))

    monkeypatch.setitem(studies.STUDIES, "pooling-did", dataclasses.replace(
        studies.get("pooling-did"), simulate=simulate, pipeline=run,
        prepare=lambda frame, source=None: frame.assign(prepared=1)))
    r = bp.study("pooling-did").run(seed=7, draws=50, chains=2, parts=("table3",))
    assert seen["frame"] is frames[7] and seen["frame_2012"] is frames[seed_2012]
    assert (seen["seed"], seen["parts"]) == (7, ("table3",))
    assert seen["spec"].name == "did_logit"
    assert (seen["spec"].sampler.draws, seen["spec"].sampler.chains) == (50, 2)
    assert r.synthetic and r.summary().startswith("SYNTHETIC DATA — Zhang & Chen (2024)")
    seen.clear()
    r = bp.study("pooling-did").run(pd.DataFrame({"seed": [1]}), seed=3)
    assert seen["frame"]["prepared"].tolist() == [1] and "frame_2012" not in seen
    assert not r.synthetic and seen["seed"] == 3 and "SYNTHETIC" not in r.summary()


def test_study_run_table2_holds_the_published_rows_and_the_replication():
    """The real pipeline on synthetic data, the descriptives only: every published row of
    the study, the frequentist Table 2, and the default plot showing the published AMEs."""
    from bayes_pool.published import load_published
    r = bp.study("pooling-did").run(seed=7, parts=("table2",))
    table = r.tidy()
    published = load_published("pooling-did")
    assert_same_rows(table[table["source"] == "published"], published)
    freq = table[table["source"] == "frequentist"]
    assert set(freq["table"]) == {"2"} and len(freq) > 0 and r.idata is None
    fig, ax = r.plot()
    (dots,) = [c for c in ax.collections if c.get_gid() == "published"]
    ame = published[(published["term"] == "policy") & published["quantity"].isin(
        ["ame", "att", "indirect"])]
    np.testing.assert_allclose(dots.get_offsets()[:, 0], ame["estimate"])


def test_api_page_is_what_the_docstrings_give():
    """docs/api.md is written from the docstrings (python docs/api_page.py): it must not fall
    behind the code."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "docs" / "api_page.py"
    spec = importlib.util.spec_from_file_location("api_page", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PAGE.read_text() == module.page(), "run: python docs/api_page.py"
    assert "bp.mediate(" in module.page() and "Result.diagnostics(" in module.page()


def test_importing_the_package_and_its_figures_keeps_the_users_matplotlib_backend():
    """A notebook's backend survives: no module chooses one (figures are drawn outside
    pyplot), so importing the API and every figure module leaves MPLBACKEND's choice."""
    import os
    import subprocess
    import sys
    code = ("import matplotlib, pkgutil, importlib, bayes_pool, bayes_pool.figures, "
            "bayes_pool.report\n"
            "for m in pkgutil.iter_modules(bayes_pool.figures.__path__):\n"
            "    importlib.import_module('bayes_pool.figures.' + m.name)\n"
            "print(matplotlib.get_backend())")
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "svg"
