"""Write a study's calibrated synthetic data set and its truth: `python scripts/simulate.py pooling-did`."""

import sys

from bayes_pool.cli import app

if __name__ == "__main__":
    app(["simulate", *sys.argv[1:]])
