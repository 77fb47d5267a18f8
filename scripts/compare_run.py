"""Print the comparison of an earlier run: `python scripts/compare_run.py outputs/pooling-did/<run-id>`."""

import sys

from bayes_pool.cli import app

if __name__ == "__main__":
    app(["compare", *sys.argv[1:]])
