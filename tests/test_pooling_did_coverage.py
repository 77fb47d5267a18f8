"""Every published estimate of Zhang & Chen's Tables 3-7 gets a frequentist and a Bayesian
counterpart in the comparison: counted against the published-estimates file, on a small
synthetic sample with short chains (this checks coverage, not accuracy)."""

from __future__ import annotations

import pandas as pd
import pytest

from bayes_pool import compare
from bayes_pool.published import load_published
from bayes_pool.specs import load_spec
from bayes_pool.studies import pooling_did
from bayes_pool.studies.pooling_did.synthetic import simulate

TABLES = ["3", "4", "5", "6", "7"]


# The whole run of Tables 3-7 (about 2 minutes of sampling on 2 cores) is the slow tier's, so
# the fast tier keeps to its 10-minute budget; `make test-slow` runs it.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def comparison():
    main = simulate(seed=7, n=2400).frame
    wave_2012 = simulate(seed=8, n=1600, waves=(2012, 2014, 2016, 2018)).frame
    spec = load_spec("did_logit").with_sampler(chains=2, draws=60, tune=100)
    analysis = pooling_did.run(main, spec=spec, seed=1, frame_2012=wave_2012,
                               parts=("table3", "mediation", "table6", "table7"))
    comp = compare.comparison(analysis.estimates, tables=TABLES)
    comp.attrs["estimates"] = analysis.estimates
    return comp


def comparison_rows(est: pd.DataFrame, source: str) -> pd.DataFrame:
    return est.loc[est["source"] == source, compare.KEYS + ["note"]]


def test_every_published_cell_of_tables_3_to_7_has_both_replications(comparison):
    published = load_published("pooling-did")
    published = published[published["table"].astype(str).isin(TABLES)]
    keys = compare.KEYS
    merged = published[keys].merge(comparison, on=keys, how="left")
    assert len(merged) == len(published) == 50
    missing = {source: merged.loc[merged[source].isna(), keys[1:]].to_records(index=False).tolist()
               for source in ("published", "frequentist", "bayesian")}
    assert missing == {"published": [], "frequentist": [], "bayesian": []}
    # and each has its uncertainty: the frequentist SE, the Bayesian interval and diagnostics
    # a cell without an SE must say why (here: a small subgroup's logit that did not converge)
    freq = comparison_rows(comparison.attrs["estimates"], "frequentist")
    no_se = merged[merged["frequentist_se"].isna()].merge(freq, on=keys, how="left")
    assert no_se["note"].str.contains("NOT CONVERGED").all(), no_se[keys[1:] + ["note"]]
    no_ci = merged[merged[["bayes_ci_low", "bayes_ci_high", "r_hat", "ess_bulk"]].isna().any(axis=1)]
    assert no_ci.empty, no_ci[keys[1:]].to_string()
    assert (merged["bayes_ci_low"] <= merged["bayes_ci_high"]).all()


def test_counts_per_table(comparison):
    """The counts, table by table, match the published file (28, 2, 10, 6, 4)."""
    published = load_published("pooling-did")
    want = published[published["table"].astype(str).isin(TABLES)].groupby("table").size()
    have = (comparison.dropna(subset=["published", "frequentist", "bayesian"])
            .groupby("table").size())
    pd.testing.assert_series_equal(have.sort_index(), want.sort_index(), check_names=False)
