"""Old home of the staggered-adoption design, now :mod:`bayes_pool.design.staggered`.

Kept only because ``studies/pooling_did/pipeline.py`` (owned elsewhere) still imports
:func:`cohort_from_mapping` from here; delete this module once that import moves.
"""

from bayes_pool.design.staggered import cohort_from_mapping

__all__ = ["cohort_from_mapping"]
