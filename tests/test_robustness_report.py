"""The robustness folder of a run and its "How robust is it?" report section (issue 17 item 4).

The pieces are checked against the closed forms they plot (the E-value bias factor, the
Cinelli-Hazlett bias, the Imai-Keele-Yamamoto rho curve), the missing pieces against their
"not computed" lines and their switch-on by name; the folder, the report section (headless
Chromium) and ``bayes-pool robustness RUN_DIR`` on frequentist-only ``psm``, ``mediate``
and ``did`` runs of small user files (no MCMC, seconds each).
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

import bayes_pool as bp
from bayes_pool import robustness
from bayes_pool import robustness_workflow as rw
from bayes_pool.cli import app
from bayes_pool.robustness_run import FOLDER, TABLE
from tests.test_report import _dom, _require_chromium

runner = CliRunner()


# --------------------------------------------------------------------------- pieces


def test_rosenbaum_piece_is_the_rbounds_breakdown_and_flips_a_negative_effect():
    d = np.random.default_rng(3).normal(0.4, 1.0, 300)
    up = rw.rosenbaum_piece(d, cell=rw._cell("psm", "knn", "t", "att"), estimate=d.mean(),
                            what="differences")
    want = robustness.rosenbaum_bounds(d, (1.0, 2.0)).attrs["breakdown_gamma"]
    assert up.breakdown == pytest.approx(want, rel=1e-9) and 1.5 < want < 10
    assert up.curve is None  # computed when written, not with the fit
    assert up.the_curve()["gamma"].iloc[-1] >= 1.5 * want  # it reaches past the breakdown
    down = rw.rosenbaum_piece(-d, cell=up.cell, estimate=-d.mean(), what="differences")
    assert down.breakdown == pytest.approx(want, rel=1e-9)
    np.testing.assert_allclose(down.the_curve()["hl_low"], -up.curve["hl_high"], atol=1e-9)
    assert "negative effect" in down.meaning


def test_e_value_piece_reaches_one_at_the_e_value():
    beta, low, high = 0.9, 0.3, 1.5  # log odds ratio and its 95% limits
    p = rw.e_value_piece(beta, low, high, cell=rw._cell("3", "(2)", "policy", "beta"))
    rr = np.sqrt(np.exp(beta))  # common outcome: sqrt(OR) (VanderWeele & Ding 2017)
    assert p.breakdown == pytest.approx(rr + np.sqrt(rr * (rr - 1)), rel=1e-12)
    g = p.breakdown
    assert rr / (g * g / (2 * g - 1)) == pytest.approx(1.0, rel=1e-12)
    # the plotted curve crosses 1 where the breakdown is
    cross = np.interp(1.0, p.curve["adjusted_rr"][::-1], p.curve["confounder_rr"][::-1])
    assert cross == pytest.approx(g, rel=2e-3)


def test_ols_piece_removes_the_estimate_at_the_robustness_value():
    est, se, dof = 2.0, 0.5, 400.0
    p = rw.ols_piece(est / se, dof, cell=rw._cell("4", "model_8", "x", "beta"), estimate=est,
                     se=se)
    rv = p.breakdown
    assert est - se * np.sqrt(dof) * rv / np.sqrt(1 - rv) == pytest.approx(0.0, abs=1e-9)
    cross = np.interp(0.0, p.curve["adjusted"][::-1], p.curve["partial_r2"][::-1])
    assert cross == pytest.approx(rv, rel=1e-2)


def _mediation_frame(n: int = 1500, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.binomial(1, 0.5, n)
    m = 0.6 * t + rng.normal(0, 1, n)
    y = 0.5 * t + 0.8 * m + rng.normal(0, 1, n)
    return pd.DataFrame({"t": t, "m": m, "y": y, "yb": (y > 0.8).astype(int)})


def _freq_mediation(frame, family):
    from bayes_pool.freq.mediation import MediationDesign, fit_mediation
    design = MediationDesign(outcome="y" if family == "gaussian" else "yb", treatment="t",
                             mediator="m", covariates=(), unit=None, time=None, family=family)
    return fit_mediation(design.prepare(frame), bootstrap=0, seed=1, ri_draws=0)


def test_linear_mediation_piece_is_the_closed_form_and_the_plain_estimate_at_rho_zero():
    freq = _freq_mediation(_mediation_frame(), "gaussian")
    (p,) = rw.mediation_pieces(freq)
    m, o = freq.mediator_step, freq.outcome_step
    want = robustness.mediation_rho_curve(m.coef["t"], o.coef["m"], np.sqrt(m.scale),
                                          np.sqrt(o.scale)).attrs["rho_at_zero"]
    assert p.computed and p.breakdown == pytest.approx(want, abs=1e-12)
    at_zero = p.curve.loc[np.isclose(p.curve["rho"], 0.0), "acme"].item()
    assert at_zero == pytest.approx(freq.effects["indirect"], rel=1e-6)


def test_binary_mediation_waits_for_its_function_and_uses_it_when_present(monkeypatch):
    freq = _freq_mediation(_mediation_frame(), "bernoulli")
    monkeypatch.delattr(robustness, "mediation_sensitivity_summary", raising=False)
    (missing,) = rw.mediation_pieces(freq)
    assert not missing.computed and "mediation_sensitivity_summary" in missing.status
    seen = {}

    def summary(frame, design):
        seen["design"] = design
        rho = np.linspace(-0.5, 0.5, 11)
        return pd.DataFrame({"rho": rho, "acme": 0.1 - rho}), {"rho_at_zero": 0.1}

    monkeypatch.setattr(robustness, "mediation_sensitivity_summary", summary, raising=False)
    (later,) = rw.mediation_pieces(freq)
    assert later.status == rw.PENDING and not seen  # computed when the run is written
    (p,) = rw.resolved([later])
    assert p.computed and p.breakdown == 0.1 and seen["design"].family == "bernoulli"

    def broken(frame, design):
        raise np.linalg.LinAlgError("singular probit information")

    monkeypatch.setattr(robustness, "mediation_sensitivity_summary", broken, raising=False)
    (failed,) = rw.resolved(rw.mediation_pieces(freq))  # an optional analysis never fails a run
    assert failed.status == "not computed: LinAlgError: singular probit information"


def _event_study(n: int = 3000, seed: int = 7):
    from bayes_pool.design.staggered import StaggeredDesign
    from bayes_pool.freq.event_study import fit_event_study
    from tests.conftest import make_panel
    frame, _ = make_panel(seed=seed, n=n, family="gaussian")
    adopt = {f"c{u:02d}": (2 if u < 3 else 3 if u < 6 else 0) for u in range(12)}
    frame["cohort"] = frame["county"].map(adopt)
    design = StaggeredDesign(outcome="y", treatment="treated", unit="county", time="wave",
                             cohort="cohort", covariates=("x1",), family="gaussian",
                             period_length=None, window=(-2, 1))
    return fit_event_study(design.prepare(frame), control="never")


def test_parallel_trends_waits_for_its_function_and_gets_pre_and_post_coefficients(monkeypatch):
    freq = _event_study()
    monkeypatch.delattr(robustness, "parallel_trends_summary", raising=False)
    (missing,) = rw.event_study_pieces(freq)
    assert not missing.computed and "parallel_trends_summary" in missing.status
    seen = {}

    def summary(coefs, cov, draws, pre, post, mbar_grid):
        seen.update(coefs=coefs, cov=cov, pre=pre, post=post, draws=draws)
        grid = np.asarray(mbar_grid)
        return (pd.DataFrame({"method": "frequentist", "mbar": grid, "lower": -grid,
                              "upper": 1 + grid, "mean": 0.5, "p_positive": np.nan}),
                {"frequentist": 0.7})

    monkeypatch.setattr(robustness, "parallel_trends_summary", summary, raising=False)
    (p,) = rw.resolved(rw.event_study_pieces(freq))
    coefs, _, pre, post = rw._event_coefficients(freq)
    times = sorted(freq.bin_n)
    assert [times[i] for i in seen["pre"]] == [k for k in times if k < 0] and seen["pre"]
    assert [times[i] for i in seen["post"]] == [k for k in times if k >= 0] and seen["post"]
    np.testing.assert_allclose(np.diag(seen["cov"]),
                               [freq.result.bse[f"Q('{n}')"] ** 2 for n in coefs.index])
    assert seen["draws"] is None  # no posterior given
    assert p.computed and p.breakdown == 0.7 and p.parameter == "Mbar"
    assert p.cell["column"] == "event_time_0" and p.estimate == coefs.iloc[post[0]]
    assert "confidence set first contains 0" in p.meaning  # no draws: the frequentist one


# --------------------------------------------------------------------------- runs


def _psm_csv(path):
    rng = np.random.default_rng(4)
    n = 1200
    age = rng.normal(0, 1, n)
    urban = rng.binomial(1, 0.5, n)
    treated = rng.binomial(1, expit(-1.0 + 0.8 * age + 0.5 * urban))
    score = 0.3 * treated + 1.5 * age + 1.0 * urban + rng.normal(0, 1, n)
    pd.DataFrame({"enrolled": treated, "wellbeing": score, "age_z": age, "urban": urban}
                 ).to_csv(path, index=False)
    return ["psm", "--data", str(path), "--treatment", "enrolled", "--outcome", "wellbeing",
            "--covariates", "age_z,urban", "--bootstrap", "10", "--frequentist-only"]


def _mediate_csv(path):
    _mediation_frame().to_csv(path, index=False)
    return ["mediate", "--data", str(path), "--treatment", "t", "--mediator", "m",
            "--outcome", "y", "--outcome-family", "gaussian", "--bootstrap", "10",
            "--frequentist-only"]


def _did_csv(path):
    from tests.conftest import make_panel
    make_panel(n=1500)[0].to_csv(path, index=False)
    return ["did", "--data", str(path), "--outcome", "y", "--treatment", "treated", "--unit",
            "county", "--time", "wave", "--covariates", "x1,x2", "--frequentist-only"]


RUNS = {"psm": (_psm_csv, "rosenbaum"), "mediate": (_mediate_csv, "mediation_rho"),
        "did": (_did_csv, "e_value")}


@pytest.mark.parametrize("command", sorted(RUNS))
def test_every_generic_run_has_its_robustness_section(command, tmp_path, outputs):
    """A did/psm/mediate run writes robustness/ and its report shows the section with the
    figure (Chromium); without the folder the report says how to make it, and
    `bayes-pool robustness RUN_DIR` makes it again, the same numbers."""
    chromium = _require_chromium()
    make, analysis = RUNS[command]
    res = runner.invoke(app, make(tmp_path / f"{command}.csv"))
    assert res.exit_code == 0, res.output
    (run,) = list((outputs / command).iterdir())
    table = pd.read_csv(run / FOLDER / TABLE)
    assert list(table["analysis"]) == [analysis] and table["status"].eq("computed").all()
    assert (run / FOLDER / table["figure"].iloc[0]).is_file()
    assert table["breakdown"].iloc[0] > 0

    dom = _dom(chromium, run / "report.html", tmp_path)
    assert dom.tables["robustness"]["rows"] == 1 + 1
    robust = [i for i in dom.images if i["figure"] == table["figure"].iloc[0][:-4]]
    assert len(robust) == 1 and robust[0]["data-loaded"] == "true"
    assert dom.tables["headline"]["rows"] == 1 + 1
    assert dom.ids.index("headline") < dom.ids.index("tables")

    shutil.rmtree(run / FOLDER)
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    assert "bayes-pool robustness RUN_DIR" in (run / "report.md").read_text()
    res = runner.invoke(app, ["robustness", str(run)])
    assert res.exit_code == 0, res.output
    again = pd.read_csv(run / FOLDER / TABLE)
    pd.testing.assert_frame_equal(again, table)
    assert "bayes-pool robustness RUN_DIR" not in (run / "report.md").read_text()


def test_robustness_of_a_result_needs_no_folder():
    frame = _mediation_frame()
    result = bp.mediate(frame, treatment="t", mediator="m", outcome="y", family="gaussian",
                        backends=("frequentist",), bootstrap=0)
    table = bp.how_robust(result)
    assert list(table["analysis"]) == ["mediation_rho"]
    assert table["breakdown"].iloc[0] == pytest.approx(
        rw.mediation_pieces(_freq_mediation(frame, "gaussian"))[0].breakdown, rel=1e-9)


def test_robustness_command_rejects_what_is_not_a_run(tmp_path):
    res = runner.invoke(app, ["robustness", str(tmp_path)])
    assert res.exit_code == 2 and "no manifest.json" in res.output
    (tmp_path / "manifest.json").write_text('{"command": "sensitivity"}')
    res = runner.invoke(app, ["robustness", str(tmp_path)])
    assert res.exit_code == 2 and "has no robustness analyses" in res.output

def _study_robustness_run(study_id: str, headline: list, out, seed: int = 5):
    """A built-in study's robustness refits (no MCMC) on its synthetic data of ``seed``,
    written with its published rows and headline as `bayes-pool run` writes them."""
    from bayes_pool import runs, studies
    from bayes_pool.published import load_published
    from bayes_pool.workflow import write_run
    record = studies.get(study_id)
    analysis = record.robustness(record.simulate(seed=seed).frame, seed=seed)
    analysis.facts["headline"] = headline  # as the run's pipeline records it
    analysis.estimates = pd.concat([load_published(study_id), analysis.estimates],
                                   ignore_index=True)
    with runs.run_folder(study_id, out=out) as folder:
        write_run(folder, analysis, study=study_id, title=record.title, synthetic=True,
                  key_term=record.key_term,
                  manifest={"command": "run", "seed": seed,
                            "data": {"kind": "synthetic", "seed": seed},
                            "invocation": {"command": "run",
                                           "args": {"study": study_id, "seed": seed}}})
    return out


def test_pooling_did_report_opens_with_table_3_and_its_breakdown_lines(tmp_path, outputs):
    """The study's robustness refits (no MCMC) written as `run pooling-did` writes them: the
    headline is Table 3 (2), "How robust is it?" holds the E-values of Table 3 and the lines
    still to come (binary mediation rho, Fig. 2 parallel trends) as "not computed"; the
    robustness command on that folder rebuilds the same lines from the manifest's seed."""
    from bayes_pool.studies.pooling_did.pipeline import HEADLINE
    chromium = _require_chromium()
    run = _study_robustness_run("pooling-did", HEADLINE, tmp_path / "run")
    table = pd.read_csv(run / FOLDER / TABLE, dtype={"table": str})
    e = table[table["analysis"] == "e_value"]
    assert list(e["column"]) == ["(1)", "(2)"] and (e["breakdown"] > 1).all()
    assert e["published"].notna().all()  # Table 3's published beta is marked
    # the binary-outcome rho lines (probit rho curve, issue 17)
    rho = table[table["analysis"] == "mediation_rho"]
    assert len(rho) == 2 and rho["status"].eq("computed").all()
    assert (rho["breakdown"].abs() < 1).all()  # a correlation
    assert list(table["analysis"]).count("parallel_trends") == 1
    for r in table.itertuples():  # a figure for every computed line, a reason for the rest
        if r.status == "computed":
            assert (run / FOLDER / r.figure).is_file()
        else:
            assert r.status.startswith("not computed: ") and len(r.status) > 30

    dom = _dom(chromium, run / "report.html", tmp_path)
    assert dom.tables["headline"]["rows"] == 2 + 1  # Table 3 (2): AME and beta
    assert "3 (2)" in dom.body_text and "0.096" in dom.body_text  # the published AME
    assert dom.tables["robustness"]["rows"] == len(table) + 1
    assert sum(i["figure"].startswith("e_value") for i in dom.images) == 2
    assert sum(i["figure"].startswith("mediation_rho") for i in dom.images) == 2

    shutil.rmtree(run / FOLDER)
    res = runner.invoke(app, ["robustness", str(run)])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_csv(run / FOLDER / TABLE, dtype={"table": str}), table)


def test_smi_psm_report_opens_with_the_knn_att_and_its_breakdown_lines(tmp_path, outputs):
    """Ma et al.'s robustness refits (no MCMC) written as `run smi-psm` writes them: the
    headline is Table 6's k-NN ATT, "How robust is it?" holds its Rosenbaum breakdown Gamma
    and Model 8's robustness value, each with its figure, in headless Chromium."""
    from bayes_pool.studies.smi_psm.pipeline import HEADLINE
    chromium = _require_chromium()
    run = _study_robustness_run("smi-psm", HEADLINE, tmp_path / "run")
    table = pd.read_csv(run / FOLDER / TABLE, dtype={"table": str})
    gamma = table[(table["analysis"] == "rosenbaum") & (table["column"] == "knn")]
    assert len(gamma) == 1 and gamma["status"].iloc[0] == "computed"
    assert gamma["breakdown"].iloc[0] >= 1.0 and gamma["published"].notna().all()
    rv = table[table["analysis"] == "robustness_value"]
    assert len(rv) == 1 and 0 < rv["breakdown"].iloc[0] < 1  # a partial R^2
    dom = _dom(chromium, run / "report.html", tmp_path)
    assert dom.tables["headline"]["rows"] == 1 + 1  # the k-NN ATT
    assert dom.tables["robustness"]["rows"] == len(table) + 1
    assert any(i["figure"].startswith("rosenbaum") for i in dom.images)
    assert any(i["figure"].startswith("robustness_value") for i in dom.images)
    assert dom.ids.index("headline") < dom.ids.index("tables")
