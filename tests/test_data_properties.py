"""Property-based tests (hypothesis) of the loader, the contracts and the design checks.

- any frame meeting a contract survives a round trip through csv, parquet and dta unchanged;
- any single corruption of a valid study frame (a code out of range, a missing value in a
  required column, a dropped column) is rejected with an InputError naming that column;
- the same for the generic DiD design;
- duplicated ids are counted exactly; one overlapping pair of rows removes separation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_pool.data import binary, check_unique, codes, contract, int_range, load, number
from bayes_pool.design import DiDDesign, separation
from bayes_pool.errors import InputError
from bayes_pool.studies import pooling_did
from bayes_pool.studies.pooling_did.contract import _COLUMNS, CODES, TREATMENT
from tests.conftest import make_panel

FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# ---- round trip through the readers -----------------------------------------------------

PROVINCES = ["Beijing", "Gansu", "Hebei", "Inner Mongolia"]
SCHEMA = contract(
    number("pid"),
    codes("province", PROVINCES),
    binary("treated"),
    codes("region", [1, 2, 3, 4]),
    int_range("srh", 1, 5, nullable=True),
    number("income", 0, 1e7, nullable=True),
)


@st.composite
def valid_frames(draw):
    n = draw(st.integers(1, 25))
    maybe = lambda s: st.one_of(s, st.just(np.nan))  # noqa: E731
    return pd.DataFrame({
        "pid": np.arange(1, n + 1, dtype="int64") * draw(st.integers(1, 1000)),
        "province": draw(st.lists(st.sampled_from(PROVINCES), min_size=n, max_size=n)),
        "treated": draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
        "region": draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)),
        "srh": np.array(draw(st.lists(maybe(st.integers(1, 5)), min_size=n, max_size=n)),
                        dtype="float64"),
        "income": draw(st.lists(maybe(st.floats(0, 1e7, allow_nan=False, allow_subnormal=False)),
                                min_size=n, max_size=n)),
    })


def _write(frame: pd.DataFrame, path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        pyreadstat.write_dta(frame, str(path))


@FAST
@given(frame=valid_frames(), fmt=st.sampled_from(["csv", "parquet", "dta"]))
def test_any_valid_frame_round_trips_unchanged(tmp_path, frame, fmt):
    path = tmp_path / f"data.{fmt}"
    _write(frame, path)
    loaded = load(path, schema=SCHEMA, unique="pid")
    assert list(loaded.frame.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(loaded.frame.reset_index(drop=True), frame,
                                  check_dtype=False, check_exact=True)
    assert loaded.manifest()["n_rows"] == len(frame) and len(loaded.fingerprint) == 64


# ---- single corruptions of a valid study frame --------------------------------------------

@pytest.fixture(scope="module")
def study_frame() -> pd.DataFrame:
    """A valid SYNTHETIC pooling-did frame; it passes the contract untouched."""
    frame = pooling_did.simulate(seed=3, n=300).frame
    pooling_did.prepare(frame)
    return frame


REQUIRED = [c for c, spec in _COLUMNS.items() if not spec.get("nullable")]
DROPPABLE = [c for c in _COLUMNS if c != TREATMENT]  # policy is derived when absent
CODED = sorted(CODES)
BOUNDED = sorted(c for c, spec in _COLUMNS.items() if "bounds" in spec)


def _out_of_range(column: str):
    if column == "province":
        return "Atlantis"
    if column in CODES:
        return max(CODES[column]) + 7
    lo, hi = _COLUMNS[column]["bounds"]
    return hi + abs(hi) + 100


corruptions = st.one_of(
    st.tuples(st.just("out_of_range"), st.sampled_from(CODED + BOUNDED)),
    st.tuples(st.just("missing"), st.sampled_from(REQUIRED)),
    st.tuples(st.just("dropped"), st.sampled_from(DROPPABLE)),
)


@FAST
@given(corruption=corruptions, row=st.integers(0, 299))
def test_any_single_corruption_of_the_study_frame_is_rejected_naming_the_column(
        study_frame, corruption, row):
    kind, column = corruption
    frame = study_frame.copy()
    if kind == "dropped":
        frame = frame.drop(columns=column)
    else:
        value = _out_of_range(column) if kind == "out_of_range" else np.nan
        if isinstance(value, str) or frame[column].dtype.kind in "iu":
            frame[column] = frame[column].astype(object)
        frame.iloc[row, frame.columns.get_loc(column)] = value
    with pytest.raises(InputError) as info:
        pooling_did.prepare(frame)
    message = str(info.value)
    assert f"'{column}'" in message
    if kind != "dropped":
        assert "1 row fails" in message or "rows fail" in message


# ---- the generic design -----------------------------------------------------------------

@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return make_panel(seed=4, n=300)[0]


DESIGN = DiDDesign(outcome="y", treatment="treated", unit="county", time="wave",
                   covariates=("x1", "x2"))


@FAST
@given(column=st.sampled_from(DESIGN.columns),
       kind=st.sampled_from(["missing", "dropped", "out_of_range"]),
       rows=st.lists(st.integers(0, 299), min_size=1, max_size=5, unique=True))
def test_any_single_corruption_of_a_did_design_is_rejected_naming_the_column(
        panel, column, kind, rows):
    DESIGN.check(panel)  # valid as it stands
    frame = panel.copy()
    if kind == "dropped":
        frame = frame.drop(columns=column)
    else:
        frame[column] = frame[column].astype(object)
        bad = np.nan if kind == "missing" else "?" if column.startswith("x") else 7
        frame.iloc[rows, frame.columns.get_loc(column)] = bad
    if kind == "missing" and column in ("x1", "x2"):
        # a missing covariate is not refused: exactly its rows leave the complete cases
        assert DESIGN.check(frame).n_obs == len(panel) - len(rows)
        return
    if kind == "out_of_range" and column in ("county", "wave"):
        # any label is a valid unit or period (7 becomes one more), but a unit seen in one
        # row only is refused as a likely mistyped code
        if column == "county" and len(rows) == 1:
            with pytest.raises(InputError, match="'county'.*'7' \\(1 row\\)"):
                DESIGN.check(frame)
        else:
            assert DESIGN.check(frame).n_obs == len(panel)
        return
    with pytest.raises(InputError) as info:
        DESIGN.check(frame)
    message = str(info.value)
    assert f"'{column}'" in message
    if kind != "dropped":
        assert f"{len(rows)} " in message


@FAST
@given(st.lists(st.integers(0, 15), min_size=1, max_size=40))
def test_duplicate_ids_are_counted_exactly(ids):
    frame = pd.DataFrame({"pid": ids})
    counts = pd.Series(ids).value_counts()
    n_dup_rows = int(counts[counts > 1].sum())
    if not n_dup_rows:
        check_unique(frame, "pid")
        return
    with pytest.raises(InputError) as info:
        check_unique(frame, "pid")
    assert f"{n_dup_rows} rows share {int((counts > 1).sum())} duplicated id(s)" in str(info.value)


@FAST
@given(x=st.lists(st.floats(-100, 100, allow_nan=False), min_size=4, max_size=40, unique=True),
       flip=st.booleans())
def test_a_threshold_outcome_is_separated_and_one_overlapping_pair_undoes_it(x, flip):
    x = np.sort(np.asarray(x))
    cut = x[len(x) // 2]
    y = (x >= cut).astype(int)
    if flip:
        y = 1 - y
    frame = pd.DataFrame({"x": x, "y": y})
    assert separation(frame, "y", "x").startswith("complete separation")
    # one row on each side with the other outcome: the outcomes now overlap in x
    overlap = pd.DataFrame({"x": [x[0], x[-1]], "y": [y[-1], y[0]]})
    assert separation(pd.concat([frame, overlap]), "y", "x") is None
