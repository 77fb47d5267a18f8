"""Re-analyse a study (published vs frequentist vs Bayesian) into a new run folder.

`python scripts/reanalyse.py pooling-did` uses the synthetic default;
`python scripts/reanalyse.py pooling-did --data clds.dta --mapping my_mapping.toml` the real file.
"""

import sys

from bayes_pool.cli import app

if __name__ == "__main__":
    app(["run", *sys.argv[1:]])
