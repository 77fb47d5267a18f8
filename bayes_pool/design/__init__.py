"""Designs: column roles -> validated estimation sample, one module per design, no models.

Both backends (:mod:`bayes_pool.freq`, :mod:`bayes_pool.bayes`) consume the same prepared
sample, so they fit the same rows with the same terms. Modules: :mod:`.did` (two-way DiD and
the input checks every design shares), :mod:`.staggered` (event time and adoption cohorts),
:mod:`.mediation` (single mediator), :mod:`.psm` (propensity-score matching).

The DiD names are re-exported here, where they lived before the package split.
"""

from bayes_pool.design.did import (FAMILIES, DiDDesign, Family, PreparedDiD, check_binary,
                                   check_constant, check_numeric, check_separation,
                                   check_unit_sizes, check_varies, separation)

__all__ = ["FAMILIES", "DiDDesign", "Family", "PreparedDiD", "check_binary", "check_constant",
           "check_numeric", "check_separation", "check_unit_sizes", "check_varies",
           "separation"]
