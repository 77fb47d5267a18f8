"""The propensity-score design: column roles, the complete-case sample and the score's design
matrix, as Ma et al. (2023) entered their covariates.

The frequentist matching (:mod:`bayes_pool.freq.psm`) and the Bayesian propensity models
(:mod:`bayes_pool.bayes.propensity`) both consume :class:`PreparedPSM`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_pool.errors import InputError


@dataclass(frozen=True)
class PSMDesign:
    """Column roles of a matching analysis.

    ``categorical`` covariates are dummy-coded in the propensity model; the others enter
    linearly, as given.
    """

    treatment: str
    outcome: str
    covariates: tuple[str, ...]
    categorical: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        if not self.covariates:
            raise InputError("a propensity model needs at least one covariate")
        unknown = set(self.categorical) - set(self.covariates)
        if unknown:
            raise InputError(f"categorical={sorted(unknown)} are not among the covariates "
                             f"{list(self.covariates)}")

    @property
    def columns(self) -> list[str]:
        return [self.treatment, self.outcome, *self.covariates]

    def prepare(self, frame: pd.DataFrame) -> PreparedPSM:
        """Check the columns and codes, drop incomplete rows, build the propensity design."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise InputError(f"column(s) {missing} not in the data; columns present: "
                             f"{list(frame.columns)[:30]}")
        for c in self.columns:
            if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]):
                if c in self.categorical:
                    continue
                raise InputError(f"column {c!r} must be numeric, got dtype {frame[c].dtype}")
        data = frame[self.columns].dropna().reset_index(drop=True)
        n_incomplete = len(frame) - len(data)
        t = data[self.treatment]
        bad = sorted(set(t.unique()) - {0, 1})
        if bad:
            raise InputError(f"treatment {self.treatment!r} must be coded 0/1; found values "
                             f"{bad[:10]} in {int((~t.isin([0, 1])).sum())} rows")
        n1 = int((t == 1).sum())
        if n1 < 2 or len(data) - n1 < 2:
            raise InputError(f"treatment {self.treatment!r} has {n1} treated and "
                             f"{len(data) - n1} control rows among {len(data)} complete rows; "
                             "matching needs at least 2 of each")
        for c in self.covariates:
            if data[c].nunique() < 2:
                raise InputError(f"covariate {c!r} is constant ({data[c].iloc[0]!r}) in all "
                                 f"{len(data)} complete rows; drop it")
        return PreparedPSM(design=self, frame=data, exog=self._exog(data),
                           n_input=len(frame), n_incomplete=n_incomplete)

    def _exog(self, data: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for c in self.covariates:
            if c in self.categorical:
                d = pd.get_dummies(data[c], prefix=c, prefix_sep="_", drop_first=True,
                                   dtype=float)
                d.columns = [_safe(name) for name in d.columns]
                parts.append(d)
            else:
                parts.append(data[[c]].astype(float))
        return pd.concat(parts, axis=1)


def _safe(name: str) -> str:
    """Identifier-safe dummy name (``reason_2.0`` -> ``reason_2``)."""
    name = name[:-2] if name.endswith(".0") else name
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)


@dataclass
class PreparedPSM:
    """The complete-case sample and its propensity design matrix (no constant)."""

    design: PSMDesign
    frame: pd.DataFrame
    exog: pd.DataFrame
    n_input: int
    n_incomplete: int

    @property
    def t(self) -> np.ndarray:
        return self.frame[self.design.treatment].to_numpy(dtype=int)

    @property
    def y(self) -> np.ndarray:
        return self.frame[self.design.outcome].to_numpy(dtype=float)

    @property
    def n_obs(self) -> int:
        return len(self.frame)

    def cells(self, columns: tuple[str, ...] | list[str]) -> np.ndarray:
        """Cell number (0, 1, ...) of each row by the values of ``columns``, for exact matching.

        The columns must be propensity covariates, so that they are complete in the analysed
        sample and the balance table shows what matching exactly on them did.
        """
        columns = list(columns)
        if not columns:
            raise InputError("exact matching needs at least one covariate to match exactly on")
        unknown = [c for c in columns if c not in self.design.covariates]
        if unknown:
            raise InputError(f"exact={unknown} are not among the propensity covariates "
                             f"{list(self.design.covariates)}; exact matching is on covariates")
        return self.frame.groupby(columns, sort=True).ngroup().to_numpy()

    def resample(self, idx: np.ndarray) -> PreparedPSM:
        """The rows ``idx`` (a bootstrap replicate)."""
        return PreparedPSM(design=self.design, frame=self.frame.iloc[idx].reset_index(drop=True),
                           exog=self.exog.iloc[idx].reset_index(drop=True),
                           n_input=len(idx), n_incomplete=0)
