"""Fast check of the population-value module behind the recovery test (small n, SYNTHETIC):
it yields exactly the 50 published cells of Tables 3-7 plus the mediation effects, and its
cache returns the same values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_pool.published import load_published
from bayes_pool.studies.pooling_did.population import population_values

KEYS = ["table", "column", "term", "quantity"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("population")
    return population_values(n=6000, seed=3, cache_dir=folder), folder


def test_keys_cover_the_50_published_cells(small):
    values, _ = small
    published = load_published("pooling-did")
    published = published[published["table"].astype(str).isin(["3", "4", "5", "6", "7"])]
    merged = published[KEYS].merge(values, on=KEYS, how="left")
    assert len(merged) == 50
    assert merged[["estimate", "se"]].notna().all().all()
    assert not values.duplicated(KEYS).any()
    assert values.attrs["synthetic"] is True
    mediation = values[values["table"] == "mediation"]
    assert set(mediation["quantity"]) == {"indirect_ab", "indirect", "direct", "total",
                                          "proportion_mediated"}


def test_a_paths_near_the_generators_truth(small):
    """Table 4's ``a`` (index on policy) has a closed-form truth (0.165, 0.206 index units)."""
    values, _ = small
    paths = values.attrs["truth"]["main"]["mediator_paths"]
    for column, dim in {"(1)": "objective", "(2)": "subjective"}.items():
        a = values[(values["table"] == "4") & (values["column"] == column)].iloc[0]
        assert abs(a["estimate"] - paths[dim]["a"]) <= 3 * a["se"], (dim, a["estimate"])


def test_cache_returns_the_same_values(small):
    values, folder = small
    again = population_values(n=6000, seed=3, cache_dir=folder)
    assert len(list(folder.glob("*.csv"))) == 1
    pd.testing.assert_frame_equal(again, values, check_dtype=False, rtol=1e-10)
    assert again.attrs["truth"]["main"]["ame_policy"] == pytest.approx(
        values.attrs["truth"]["main"]["ame_policy"])
    assert np.isfinite(again["estimate"]).all()
