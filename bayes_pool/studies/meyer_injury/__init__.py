"""Meyer, Viscusi & Durbin (1995), workers' compensation and injury duration: a study declared
in ``study.toml`` (a study file, :mod:`bayes_pool.study_file`) with its ledger
``published.csv`` and the loader of its public data (:mod:`.data`)."""
