"""Long refit loops: the fast placebo refit is the statsmodels fit, finished draws survive an
interruption and a killed dask worker, results are byte-reproducible, and the Laplace
P(effect > 0) of a placebo draw agrees with full NUTS.

Data: a small generic staggered panel (``conftest.make_panel``, 12 counties, 3 waves, a known
effect) so every fit is cheap; the study-sized checks are in ``tests/test_placebo.py``.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_pool import checkpoint, estimates
from bayes_pool.checkpoint import Checkpoint
from bayes_pool.design import DiDDesign
from bayes_pool.freq import did as freq_did
from bayes_pool.freq.placebo import placebo
from bayes_pool.parallel import map_refits
from conftest import make_panel

WAVES = [1, 2, 3]


def _design(covariates=("x1", "x2")) -> DiDDesign:
    return DiDDesign(outcome="y", treatment="treated", unit="county", time="wave",
                     covariates=covariates, family="bernoulli")


@pytest.fixture(scope="module")
def prepared():
    frame, _ = make_panel(seed=21, n=2500, units=12, effect=0.0)
    return _design().prepare(frame)


def _assignment(frame, units, years):
    adopt = dict(zip(units, map(float, years)))
    a = frame["county"].astype(str).map(adopt).to_numpy(dtype=float)
    t = pd.to_numeric(frame["wave"]).to_numpy(dtype=float)
    return np.where(np.isnan(a), 0, (t >= a)).astype(int)


def test_fast_refit_equals_the_straightforward_statsmodels_loop(prepared):
    """Swapped column + warm start + analytic AME == formula logit + get_margeff, per draw."""
    r = placebo(prepared, seed=3, adoption_years=WAVES, n_draws=3, n_treated_units=3)
    for rec in r.draws.itertuples():
        D = _assignment(prepared.frame, rec.treated_units.split(";"),
                        rec.adoption_years.split(";"))
        ref = freq_did.fit_did(_design().prepare(prepared.frame.assign(treated=D)))
        key = "Q('treated')"
        me = ref.margeff.loc["treated"]
        got = np.array([rec.coef, rec.se, rec.p_value, rec.ame, rec.ame_se, rec.ame_p_value])
        want = np.array([ref.result.params[key], ref.result.bse[key], ref.result.pvalues[key],
                         me["ame"], me["se"], me["p_value"]])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
        assert rec.converged


def _stop_after(k):
    def progress(done, total):
        if done >= k:
            raise KeyboardInterrupt(f"simulated interruption after {done} of {total}")
    return progress


def test_interrupted_placebo_resumes_with_exactly_n_draws(prepared, tmp_path):
    kw = dict(seed=5, adoption_years=WAVES, n_draws=10, n_treated_units=3)
    with pytest.raises(KeyboardInterrupt):
        placebo(prepared, refits_dir=tmp_path, progress=_stop_after(4), **kw)
    (folder,) = tmp_path.iterdir()
    first = {p.name: p.stat().st_mtime_ns for p in folder.glob("task-*.json")}
    assert len(first) == 4
    resumed = placebo(prepared, refits_dir=tmp_path, **kw)
    assert resumed.resumed == 4 and resumed.checkpoint == str(folder)
    assert sorted(p.name for p in folder.glob("task-*.json")) == \
        [f"task-{i:06d}.json" for i in range(10)]
    # finished draws were read back, not redone
    assert {p: folder.joinpath(p).stat().st_mtime_ns for p in first} == first
    fresh = placebo(prepared, **kw)
    assert list(resumed.draws["draw"]) == list(range(10))
    pd.testing.assert_frame_equal(resumed.draws, fresh.draws, check_exact=True)


def test_checkpoint_key_changes_with_seed_data_and_settings(prepared, tmp_path):
    kw = dict(adoption_years=WAVES, n_draws=1, n_treated_units=3, refits_dir=tmp_path)
    a = placebo(prepared, seed=1, **kw).checkpoint
    assert placebo(prepared, seed=1, **kw).checkpoint == a
    assert placebo(prepared, seed=2, **kw).checkpoint != a
    assert placebo(prepared, seed=1, **{**kw, "n_treated_units": 4}).checkpoint != a
    other = _design(("x1",)).prepare(prepared.frame)
    assert placebo(other, seed=1, **kw).checkpoint != a
    assert checkpoint.refits_dir("s", outputs=tmp_path) == tmp_path / "s" / ".refits"


@pytest.fixture(scope="module")
def cluster():
    """One small local dask cluster (2 worker processes) for the tests below, reached through
    ``scheduler=`` as an external cluster would be."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as c:
        yield c


def test_placebo_rows_are_byte_identical_across_runs_and_workers(prepared, cluster):
    """Seeds per draw depend on the draw index only: in-process and 2 dask workers agree."""
    kw = dict(seed=9, adoption_years=WAVES, n_draws=6, n_treated_units=3)

    def csv(result):
        buf = io.StringIO()
        estimates.write_csv(result.tidy(study="t"), buf)
        return buf.getvalue().encode() + result.draws.to_csv(index=False).encode()

    one = csv(placebo(prepared, workers=1, **kw))
    assert csv(placebo(prepared, workers=1, **kw)) == one
    assert csv(placebo(prepared, scheduler=cluster.scheduler_address, **kw)) == one


def _square_or_die(task, shared):
    """Test task: kills its own worker process the first time it meets task 3."""
    i, marker = task
    if i == 3 and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return {"i": i, "value": i * i + shared, "pid": os.getpid()}


def test_killed_dask_worker_loses_no_draw(tmp_path, cluster):
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "killed"
    store = Checkpoint(tmp_path / "ck")
    tasks = [(i, str(marker)) for i in range(8)]
    out = map_refits(_square_or_die, tasks, shared=100, scheduler=cluster.scheduler_address,
                     checkpoint=store)
    victim = int(marker.read_text())
    assert [r["i"] for r in out] == list(range(8))
    assert [r["value"] for r in out] == [i * i + 100 for i in range(8)]
    assert out[3]["pid"] != victim  # task 3 was re-run on another (or restarted) worker
    assert sorted(store.done()) == list(range(8)) and len(store) == 8


def test_laplace_prob_positive_agrees_with_nuts():
    """Laplace (unit SD at its marginal posterior mode, as the pipeline uses it) vs full NUTS on
    a placebo assignment (more draws, study-sized: the slow test in test_placebo.py).

    The claim checked is the approximation's stated accuracy (README: within a tenth of a
    posterior SD of NUTS at 30k and 170k rows): the Laplace mean within 0.1 NUTS SDs and its
    SD within 10% of NUTS's, each widened by 3 Monte Carlo SEs of the NUTS value (mean:
    sd / sqrt(ESS); SD: sd / sqrt(2 ESS)). P(effect > 0) = Phi(mean / SD) may then differ from
    the NUTS share by at most its change over that box of means and SDs, plus 3 Monte Carlo
    SEs of the share, sqrt(p(1 - p) / ESS)."""
    import arviz as az

    from bayes_pool.bayes.did import fit_did
    from bayes_pool.bayes.fast import laplace_model
    from bayes_pool.specs import load_spec

    frame, _ = make_panel(seed=4, n=1500, units=10, effect=0.25)
    prep = _design(("x1",)).prepare(frame)
    spec = load_spec("did_logit").with_sampler(chains=2, draws=300, tune=300)
    fast = laplace_model(prep, spec, seed=0)
    for D in (_assignment(prep.frame, ["c07", "c08"], ["2", "3"]),):
        approx = fast.fit(D)
        data = _design(("x1",)).prepare(prep.frame.assign(treated=D))
        nuts = fit_did(data, spec, seed=1)
        b = nuts.idata["posterior"]["treated"]
        p = float((np.asarray(b) > 0).mean())
        ess = float(az.ess(np.asarray(b)))
        mean, sd = float(b.mean()), float(b.std())
        d_mean = 0.1 * sd + 3 * sd / np.sqrt(ess)
        d_sd = 0.1 + 3 / np.sqrt(2 * ess)
        assert abs(approx.beta_mean - mean) <= d_mean, (approx, mean, sd, ess)
        assert abs(approx.beta_sd / sd - 1) <= d_sd, (approx, mean, sd, ess)
        corners = [stats.norm.cdf((mean + dm) / (sd * (1 + ds)))
                   for dm in (-d_mean, d_mean) for ds in (-d_sd, d_sd)]
        box = max(abs(c - stats.norm.cdf(mean / sd)) for c in corners)
        assert abs(approx.prob_positive - p) <= box + 3 * np.sqrt(p * (1 - p) / ess), (approx, p)
