"""Simulation-based calibration (bayes_pool.calibration).

Fast tier: the machinery on a tiny model (normal mean, 5 observations): ranks lie in 0..L,
the correctly specified fit gives uniform ranks while a fit under a much narrower prior than
the one simulated from does not, results repeat exactly, the uniformity tests reject what
they should, sequential simulation uses each simulation's own mediator, and the benchmark
DiD problem's Bambi priors do not depend on the simulated outcome.

Slow tier: the real SBC of the benchmark DiD logit (correlated unit effects; without and with
the unit x time effect) and of the joint mediation model, with the settings of
``benchmarks/sbc.py``: the chi-square p-value of every ranked parameter > 0.01 and its ECDF
inside the 99% simultaneous band. Three to five parameters per model are tested at 0.01 each,
so a calibrated model fails the chi-square test by chance with probability at most 5%
(Bonferroni); the seed is fixed, so the outcome repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest

from bayes_pool import calibration as sbc


@dataclass(frozen=True)
class NormalMean(sbc.SBCProblem):
    """y_i ~ N(mu, 1), mu ~ N(0, prior_sd); the fit may use another prior SD."""

    n_obs: int = 5
    prior_sd: float = 3.0
    fit_prior_sd: float | None = None
    name: str = "normal_mean"

    @property
    def parameters(self):
        return {"mu": "mu"}

    @property
    def fit_overrides(self):
        return {} if self.fit_prior_sd is None else {"prior_sd": self.fit_prior_sd}

    def key(self):  # the wrong fit reuses the compiled model: only its data differ
        return f"normal_mean-{self.n_obs}-{self.prior_sd}"

    def build(self):
        import pymc as pm
        import pytensor

        sd = pytensor.shared(np.float64(self.prior_sd), name="prior_sd")
        y = pytensor.shared(np.zeros(self.n_obs), name="sbc_y")
        with pm.Model() as model:
            mu = pm.Normal("mu", 0.0, sd)
            pm.Normal("y", mu, 1.0, observed=y)
        return model, {"y": y}


@dataclass(frozen=True)
class Chain(sbc.SBCProblem):
    """m ~ N(a, 1) observed; y ~ N(b m, 0.01) observed with m as regressor (a mediator)."""

    name: str = "chain"
    sequential: tuple[str, ...] = ("y",)

    @property
    def parameters(self):
        return {"a": "a", "b": "b"}

    def build(self):
        import pymc as pm
        import pytensor

        m = pytensor.shared(np.zeros(20), name="sbc_m")
        y = pytensor.shared(np.zeros(20), name="sbc_y")
        with pm.Model() as model:
            a = pm.Normal("a", 0.0, 1.0)
            b = pm.Normal("b", 0.0, 1.0)
            pm.Normal("m", a, 1.0, observed=m)
            pm.Normal("y", b * m, 0.01, observed=y)
        return model, {"m": m, "y": y}


SETTINGS = sbc.SBCSettings(n_sims=40, thin_to=49, chains=2, draws=150, tune=150, bins=10,
                           seed=11)


@pytest.fixture(scope="module")
def tiny_runs():
    right = sbc.run_sbc(NormalMean(), SETTINGS, workers=1)
    wrong = sbc.run_sbc(NormalMean(fit_prior_sd=0.2), SETTINGS, workers=1)
    return right, wrong


def test_ranks_lie_in_0_to_L_and_every_simulation_is_kept(tiny_runs):
    right, _ = tiny_runs
    ranks = right.ranks
    assert len(ranks) == SETTINGS.n_sims
    assert (ranks["status"] == "ok").all()
    assert ranks["rank"].between(0, SETTINGS.thin_to).all()
    counts = right.counts()
    assert counts["simulations"] == SETTINGS.n_sims and counts["failed"] == 0
    # 2 x 150 draws miss the default ESS >= 400: counted, flagged, and still ranked
    short = ((ranks["ess_bulk"] < 400) | (ranks["ess_tail"] < 400)).sum()
    assert counts["ess_below"] == short > 0
    assert counts["not_converged"] == (~ranks["converged"]).sum() >= short
    # the truth varies across simulations as the prior N(0, 3) says
    assert 1.5 < ranks["truth"].std() < 4.5


def test_correct_fit_is_uniform_and_a_wrong_prior_is_not(tiny_runs):
    right, wrong = tiny_runs
    ok = right.summary().set_index("parameter").loc["mu"]
    bad = wrong.summary().set_index("parameter").loc["mu"]
    assert ok["chi2_p"] > 0.01 and ok["in_band"]
    # the fit's prior N(0, 0.2) pulls posteriors to 0: truths fall outside them, ranks pile
    # up at 0 and L (a U shape: PIT spread far above the uniform's)
    assert bad["chi2_p"] < 1e-6 and not bad["in_band"]
    assert bad["spread"] > 1.3 > ok["spread"]
    # the posterior under the correct prior is the conjugate one: mean 5 ybar / (5 + 1/9)
    r = right.ranks
    assert np.corrcoef(r["truth"], r["mean"])[0, 1] > 0.9


def test_sbc_repeats_exactly(tiny_runs):
    few = replace(SETTINGS, n_sims=6)
    first = sbc.run_sbc(NormalMean(), few, workers=1)
    again = sbc.run_sbc(NormalMean(), few, workers=1)
    pd.testing.assert_frame_equal(first.ranks.drop(columns="seconds"),
                                  again.ranks.drop(columns="seconds"))
    # the first simulations do not depend on how many there are
    pd.testing.assert_series_equal(first.ranks["truth"],
                                   tiny_runs[0].ranks["truth"].iloc[:6])


def test_interrupted_sbc_resumes_without_redoing_refits(tmp_path):
    few = replace(SETTINGS, n_sims=6)

    def stop_after_3(done, total):
        if done >= 3:
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt):
        sbc.run_sbc(NormalMean(), few, workers=1, progress=stop_after_3, refits_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    first = {p.name: p.stat().st_mtime_ns for p in folder.glob("task-*.json")}
    assert len(first) == 3
    resumed = sbc.run_sbc(NormalMean(), few, workers=1, refits_dir=tmp_path)
    assert sorted(p.name for p in folder.glob("task-*.json")) == \
        [f"task-{i:06d}.json" for i in range(6)]
    assert {p: folder.joinpath(p).stat().st_mtime_ns for p in first} == first  # not redone
    fresh = sbc.run_sbc(NormalMean(), few, workers=1)
    pd.testing.assert_frame_equal(resumed.ranks.drop(columns="seconds"),
                                  fresh.ranks.drop(columns="seconds"))
    # a fit the simulation does not match (another prior) is another calibration
    assert sbc.checkpoint_key(NormalMean(fit_prior_sd=0.2), few) != \
        sbc.checkpoint_key(NormalMean(), few) != sbc.checkpoint_key(NormalMean(), SETTINGS)


def test_failed_refit_is_counted_not_dropped():
    problem = NormalMean(fit_prior_sd=0.2)
    sim = sbc.Simulation(index=0, seed=1, truth={"mu": 0.0}, data={"y": np.zeros(5)})
    bad = sbc.Simulation(index=1, seed=2, truth={"mu": 0.0}, data={"y": np.zeros((5, 2))})
    rows = sbc._rows([sbc.refit(s, (problem, SETTINGS)) for s in (sim, bad)], problem)
    assert list(rows["status"]) == ["ok", "failed"]
    assert "rank" in rows.loc[1, "error"]  # nutpie: the shared variable's rank is wrong
    result = sbc.SBCResult(problem="normal_mean", settings=SETTINGS, ranks=rows)
    assert result.counts()["failed"] == 1 and result.counts()["simulations"] == 2
    summary = result.summary()
    assert summary.loc[0, "n"] == 1 and summary.loc[0, "in_band"] is None


def test_uniformity_tests():
    rng = np.random.default_rng(3)
    flat = rng.integers(0, 100, 500)
    u = sbc.uniformity(flat, 99, bins=20)
    assert u["chi2_df"] == 19 and u["n"] == 500
    assert u["chi2_p"] > 0.01 and u["in_band"] and abs(u["bias"]) < 0.05
    skewed = np.minimum(rng.integers(0, 100, 500), rng.integers(0, 100, 500))
    s = sbc.uniformity(skewed, 99, bins=20)
    assert s["chi2_p"] < 1e-6 and not s["in_band"] and s["bias"] < -0.1
    # too wide posteriors: truths rank in the middle (spread below 1)
    middle = rng.binomial(99, 0.5, 500)
    assert sbc.uniformity(middle, 99)["spread"] < 0.5
    # unequal bins when L + 1 is not a multiple: expected counts follow the bin widths
    assert sbc.uniformity(rng.integers(0, 50, 400), 49, bins=20)["chi2_p"] > 0.01
    with pytest.raises(ValueError, match="0..99"):
        sbc.uniformity([0, 100], 99)


def test_thin_and_rank():
    draws = np.arange(1000.0).reshape(2, 500)
    t = sbc.thin(draws, 99)
    assert len(t) == 99 and t[0] == 0 and t[-1] == 999
    assert np.all(np.diff(t) >= 10)
    assert sbc.rank(t, -1) == 0 and sbc.rank(t, 1e6) == 99 and sbc.rank(t, 500.5) == 50
    with pytest.raises(ValueError):
        sbc.thin(draws, 1001)


def test_sequential_simulation_uses_each_simulations_mediator():
    sims = sbc.simulate(Chain(), 4, seed=5)
    for s in sims:
        m, y = s.data["m"], s.data["y"]
        assert abs(m.mean() - s.truth["a"]) < 4 / np.sqrt(20)
        # y was drawn with the simulated m as regressor, not the placeholder zeros
        np.testing.assert_allclose(y, s.truth["b"] * m, atol=0.05)
    assert len({s.seed for s in sims}) == 4


def test_did_problem_priors_do_not_depend_on_the_outcome():
    """The simulation draws from the priors of the model built on the placeholder outcome;
    the toolkit's fit of a simulated outcome (build_model on it) must use the same priors."""
    from bayes_pool.bayes.did import build_model

    problem = sbc.did_logit_problem()
    # correlated unit effects (the default): the treatment's unit-mean coefficient is ranked
    assert set(problem.parameters) == {"treated", "Intercept", "unit_sd", "mean_treated"}
    timed = sbc.did_logit_problem(unit_time=True)
    assert timed.name == "did_logit_unit_time"
    assert timed.parameters["unit_period_sd"] == "1|unit:period_sigma"
    assert problem.prepared.frame["treated"].sum() > 0
    assert len(problem.prepared.switchers) == 3
    model, data = problem.build()
    assert set(data) == {"y"} and data["y"].name == "sbc_y"
    sims = sbc.simulate(problem, 2, seed=1)
    base = build_model(problem.prepared, problem.spec)
    frame = problem.prepared.frame.assign(y=sims[0].data["y"])
    refit = build_model(type(problem.prepared)(design=problem.prepared.design, frame=frame,
                                               n_input=len(frame), n_incomplete=0),
                        problem.spec)
    assert str(base).split("Priors:")[1] == str(refit).split("Priors:")[1]
    assert not np.array_equal(sims[0].data["y"], sims[1].data["y"])


def test_rank_histogram_figure(tiny_runs, tmp_path, monkeypatch):
    """What the figure shows: each histogram's bars are the counts of that model's ranks in
    the summary's bins, the panel titles carry the summary's chi-square p and band verdict,
    the axes are labelled, and the SYNTHETIC banner heads the title."""
    from matplotlib.patches import Rectangle

    from bayes_pool.figures import calibration as figures

    drawn = []

    def keep(fig, path):
        drawn.append(fig)
        fig.savefig(path, dpi=40)
        return path

    monkeypatch.setattr(figures, "save", keep)
    path = figures.rank_histograms(list(tiny_runs), tmp_path / "sbc.png", synthetic=True)
    assert path.exists()
    (fig,) = drawn
    assert fig._suptitle.get_text().startswith("SYNTHETIC DATA\nSimulation-based calibration")
    axes = np.array(fig.axes).reshape(2 * len(tiny_runs), -1)
    for k, res in enumerate(tiny_runs):
        summary = res.summary().set_index("parameter").loc["mu"]
        ranks = res.ranks.loc[res.ranks["status"] == "ok", "rank"].to_numpy(dtype=int)
        values = SETTINGS.thin_to + 1
        edges = np.round(np.linspace(0, values, int(summary["bins"]) + 1)).astype(int)
        hist, ecdf = axes[2 * k, 0], axes[2 * k + 1, 0]
        bars = [p.get_height() for p in hist.patches if isinstance(p, Rectangle)]
        np.testing.assert_array_equal(bars, np.histogram(ranks, bins=edges)[0])
        assert f"chi-square p = {summary['chi2_p']:.3f}" in hist.get_title()
        assert hist.get_xlabel() == f"rank of mu (0..{SETTINGS.thin_to})"
        assert hist.get_ylabel() == f"simulations (of {len(ranks)})"
        verdict = "inside" if summary["in_band"] else "OUTSIDE"
        assert ecdf.get_title().startswith(f"ECDF {verdict} the")
        assert ecdf.get_ylabel() == "ECDF - uniform CDF"
    # the right fit's ECDF is inside its band, the wrong prior's outside (as the table says)
    assert axes[1, 0].get_title().startswith("ECDF inside")
    assert axes[3, 0].get_title().startswith("ECDF OUTSIDE")


# ------------------------------------------------------------------------ slow tier ---

def _assert_calibrated(result: sbc.SBCResult):
    summary = result.summary()
    counts = result.counts()
    assert counts["failed"] == 0, result.ranks.loc[result.ranks["status"] != "ok", "error"]
    for _, row in summary.iterrows():
        assert row["chi2_p"] > 0.01, (row["parameter"], summary)
        assert row["in_band"], (row["parameter"], summary)


@pytest.mark.slow
@pytest.mark.parametrize("unit_time", [False, True])
def test_sbc_did_logit(unit_time):
    problem = sbc.did_logit_problem(unit_time=unit_time)
    _assert_calibrated(sbc.run_sbc(problem, sbc.BENCHMARK[problem.name]))


@pytest.mark.slow
def test_sbc_mediation():
    _assert_calibrated(sbc.run_sbc(sbc.mediation_problem(), sbc.BENCHMARK["mediation"]))
