"""The same DiD (frequentist TWFE and Bayesian hierarchical) on any data set, e.g.

`python scripts/did_on_my_data.py --data panel.csv --outcome y --treatment treated --unit county --time wave --covariates x1,x2`
"""

import sys

from bayes_pool.cli import app

if __name__ == "__main__":
    app(["did", *sys.argv[1:]])
