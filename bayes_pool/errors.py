"""One exception class per kind of failure, so callers and tests can tell them apart.

The CLI turns any :class:`BayesPoolError` into a message and a non-zero exit code
before anything is written to ``outputs/``.
"""


class BayesPoolError(Exception):
    """Base class for errors the toolkit reports to the user."""


class InputError(BayesPoolError):
    """Input data failed the study's contract (missing column, bad codes, missing values ...).

    The message names the column, the offending values and how many rows.
    """


class MappingError(BayesPoolError):
    """A column-mapping file is malformed or names columns that are not in the data."""


class SpecError(BayesPoolError):
    """A model spec (TOML in ``models/``) is malformed or names unknown terms or priors."""


class ConvergenceError(BayesPoolError):
    """A posterior failed the convergence thresholds and ``--strict`` was asked for."""
