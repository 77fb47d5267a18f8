r"""Composite indices from survey items by principal component analysis (scikit-learn).

Zhang & Chen (2024) build each social-integration index as follows: "principal component
analysis [is used] to measure the variance contribution rates of [the] basic indicators, and
then [they are] weighted". :func:`pca_index` implements the usual reading of that recipe:

1. z-score every item (mean 0, SD 1; on a reference subgroup when one is given, e.g. the
   untreated, so the index is in SD units of that group and does not move with the treated);
2. PCA of the z-scores (:class:`sklearn.decomposition.PCA`, i.e. of the correlation matrix),
   fitted on the reference rows;
3. retain components by the Kaiser rule (eigenvalue of the correlation matrix > 1, at least
   one) unless ``n_components`` says otherwise;
4. index = sum over retained components of (variance contribution share, renormalised over
   the retained components) x (component score).

.. math::

    I_i = \sum_{k \le K} w_k\, s_{ik}, \qquad
    s_{ik} = \sum_j v_{jk} z_{ij}, \qquad w_k = \lambda_k / \textstyle\sum_{l \le K} \lambda_l

Each component's sign is chosen so that its loadings sum to a positive number (higher item
values, higher index). *Units*: with one retained component -- always the case for two
positively correlated items -- the index is the first principal component score,
:math:`(z_1 + z_2)/\sqrt{2}` for a pair, with mean 0 and variance :math:`1 + r` (``r`` the
item correlation) in the reference group. Passing ``n_components=len(items)`` gives the
literal "all components weighted by their shares" reading instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from bayes_pool.errors import InputError


@dataclass(frozen=True)
class IndexResult:
    """A PCA index and how it was built.

    Attributes
    ----------
    index : pandas.Series
        The index on the input frame's index (NaN where an item is missing).
    loadings : pandas.DataFrame
        Items x components: the unit-norm eigenvectors (sign-fixed), i.e. score weights.
    shares : pandas.Series
        Variance contribution share of every component (sums to 1).
    weights : pandas.Series
        Weight of each retained component in the index (sums to 1).
    center, scale : pandas.Series
        Mean and SD used to z-score each item (of the reference rows).
    n_reference : int
        Complete rows the z-scoring and the PCA were fitted on.
    """

    index: pd.Series
    loadings: pd.DataFrame
    shares: pd.Series
    weights: pd.Series
    center: pd.Series
    scale: pd.Series
    n_reference: int

    @property
    def items(self) -> list[str]:
        return list(self.loadings.index)


def pca_index(frame: pd.DataFrame, items, *, reference=None, n_components: int | None = None,
              name: str = "index") -> IndexResult:
    """Variance-share weighted PCA index of ``items`` (see the module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame
        Data holding the item columns (numeric; missing values give a missing index).
    items : sequence of str
        Item columns, at least two.
    reference : array-like of bool, optional
        Rows whose means/SDs z-score the items and on which the PCA is fitted (e.g.
        ``frame["policy"] == 0``). Default: all complete rows.
    n_components : int, optional
        Number of components in the index; default the Kaiser rule (eigenvalue > 1).
    name : str
        Name of the returned index series.

    Returns
    -------
    IndexResult
    """
    items = list(items)
    if len(items) < 2:
        raise InputError(f"a PCA index needs at least two items, got {items}")
    missing = [c for c in items if c not in frame.columns]
    if missing:
        raise InputError(f"item column(s) {missing} not in the data; columns present: "
                         f"{sorted(map(str, frame.columns))}")
    for col in items:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            bad = sorted(frame[col].dropna().astype(str).unique()[:10])
            raise InputError(f"item column {col!r} must be numeric; found values such as {bad}")
    data = frame[items].astype(float)
    complete = data.notna().all(axis=1).to_numpy()
    ref = complete.copy()
    if reference is not None:
        ref &= np.asarray(reference, dtype=bool)
    if ref.sum() < len(items) + 1:
        raise InputError(f"only {int(ref.sum())} complete reference row(s) for items {items}")
    constant = [c for c in items if data.loc[ref, c].nunique() < 2]
    if constant:
        raise InputError(f"item column(s) {constant} are constant in the reference rows")

    scaler = StandardScaler().fit(data.loc[ref].to_numpy())
    z_ref = scaler.transform(data.loc[ref].to_numpy())
    pca = PCA().fit(z_ref)
    vectors = pca.components_.T.copy()  # items x components
    vectors *= np.where(vectors.sum(axis=0) < 0, -1.0, 1.0)
    shares = pca.explained_variance_ratio_
    if n_components is None:
        # eigenvalues of the correlation matrix: share x number of items
        n_components = max(1, int((shares * len(items) > 1.0).sum()))
    if not 1 <= n_components <= len(items):
        raise InputError(f"n_components must be between 1 and {len(items)}, got {n_components}")
    weights = shares[:n_components] / shares[:n_components].sum()

    scores = scaler.transform(data.loc[complete].to_numpy()) @ vectors[:, :n_components]
    index = pd.Series(np.nan, index=frame.index, name=name)
    index[complete] = scores @ weights
    comps = [f"PC{k + 1}" for k in range(len(items))]
    return IndexResult(
        index=index,
        loadings=pd.DataFrame(vectors, index=items, columns=comps),
        shares=pd.Series(shares, index=comps),
        weights=pd.Series(weights, index=comps[:n_components]),
        center=pd.Series(scaler.mean_, index=items),
        scale=pd.Series(scaler.scale_, index=items),
        n_reference=int(ref.sum()),
    )
