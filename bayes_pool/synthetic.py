"""A synthetic data set together with the truth that generated it.

Every study's generator returns a :class:`SyntheticData`, so recovery tests and the run
manifest can read the true values, and every output it feeds is labelled synthetic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class SyntheticData:
    """Generated frame (canonical columns), the truth behind it, and how it was made."""

    study: str
    frame: pd.DataFrame
    truth: dict = field(default_factory=dict)
    seed: int | None = None
    options: dict = field(default_factory=dict)
    synthetic: bool = True

    def write(self, directory: str | Path, stem: str = "synthetic") -> tuple[Path, Path]:
        """Write ``<stem>.csv`` and ``<stem>.truth.json`` (truth, seed, options) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data_path = directory / f"{stem}.csv"
        truth_path = directory / f"{stem}.truth.json"
        self.frame.to_csv(data_path, index=False, lineterminator="\n")
        meta = {"study": self.study, "synthetic": True, "seed": self.seed,
                "options": self.options, "truth": self.truth}
        truth_path.write_text(json.dumps(meta, indent=2, sort_keys=True, default=float) + "\n")
        return data_path, truth_path
