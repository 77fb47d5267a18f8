"""bayes_pool: Bayesian reanalysis of published health-insurance studies, without R.

Every analysis returns rows of one long estimates table (:mod:`bayes_pool.estimates`):
published numbers, frequentist replications and posterior summaries side by side.
"""

__version__ = "0.1.0"
