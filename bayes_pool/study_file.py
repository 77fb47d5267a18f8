"""A reanalysis declared in one TOML file: ``bayes-pool run path/to/study.toml``.

A study file names the data (a file with an optional column mapping, or a Python loader
``"module:function"``), the published ledger beside it (the columns of
``bayes_pool/studies/*/published.csv``) and a list of analyses, each one of the generic
analyses of :mod:`bayes_pool.api` (``did``, ``staggered``, ``event_study``, ``psm``,
``mediate``), a ``linear`` regression or a study's own ``python`` function, with its column
roles, options and the published table/column it answers. The format, key by key, is in
``docs/study_files.md``.

:func:`load` reads and checks the file (unknown keys, wrong types, unknown kinds, a missing
data or ledger file); :meth:`StudyFile.check` checks the ledger, the options against the
installed API and every role against the loaded data. Both raise
:class:`~bayes_pool.errors.SpecError` / :class:`~bayes_pool.errors.InputError` naming the key
or column, before any run folder exists. :mod:`bayes_pool.study_run` runs the analyses.
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_pool.errors import InputError, SpecError

STUDY_KEYS = {"id", "title", "citation", "synthetic", "published", "key_term", "key_table",
              "key_column", "labels"}
"""Keys of the ``[study]`` table (``id`` and ``title`` required)."""
DATA_KEYS = {"file", "mapping", "loader", "options"}
"""Keys of the ``[data]`` table: ``file`` (and ``mapping``) or ``loader`` (and ``options``)."""
TOP_KEYS = {"study", "data", "analysis"}

ROLE_KEYS = ("outcome", "treatment", "unit", "time", "cohort", "mediator", "cluster",
             "group")
"""Keys that name one column of the data."""
LIST_ROLE_KEYS = ("covariates", "categorical", "exact")
"""Keys that name a list of columns."""
COMMON_KEYS = {"name", "kind", "table", "column", "subset", "spec", "priors", "backends",
               "description"}
"""Keys every analysis takes (``name`` and ``kind`` required)."""

_DID = ("outcome", "treatment", "unit", "time", "covariates", "family", "categorical",
        "reference", "vcov", "cluster")
KINDS: dict[str, dict] = {
    "did": dict(keys={*_DID, "approx", "unit_effects"},
                required=("outcome", "treatment", "unit", "time")),
    "staggered": dict(keys={*_DID, "cohort", "control"},
                      required=("outcome", "treatment", "unit", "time", "cohort")),
    "event_study": dict(keys={*_DID, "cohort", "control", "window", "period_length"},
                        required=("outcome", "treatment", "unit", "time", "cohort")),
    "psm": dict(keys={"treatment", "outcome", "covariates", "categorical", "reference",
                      "exact", "bootstrap"}, required=("treatment", "outcome", "covariates")),
    "mediate": dict(keys={"treatment", "mediator", "outcome", "covariates", "family", "unit",
                          "time", "categorical", "reference", "bootstrap", "vcov", "cluster"},
                    required=("treatment", "mediator", "outcome")),
    "linear": dict(keys={"outcome", "treatment", "covariates", "vcov"},
                   required=("outcome", "treatment")),
    "python": dict(keys={"function", "options", *ROLE_KEYS, *LIST_ROLE_KEYS},
                   required=("function",)),
}
"""Analysis kinds, the options each takes and those it needs. ``did`` to ``mediate`` call
the :mod:`bayes_pool.api` function of their name with the options as arguments; ``linear``
is OLS with classical SEs beside a Bambi linear regression; ``python`` calls a study's own
``"module:function"`` (the code only that study needs) with the roles and ``options``."""


@dataclass
class AnalysisDecl:
    """One ``[[analysis]]`` entry: its name, kind, labels and the options passed on."""

    name: str
    kind: str
    table: str
    column: str | None
    options: dict
    subset: str | None = None
    spec: str | None = None
    priors: str | None = None
    backends: tuple[str, ...] = ("frequentist", "bayesian")
    description: str = ""

    def columns(self) -> list[tuple[str, str]]:
        """``(key, column)`` for every column the analysis names."""
        out = [(k, self.options[k]) for k in ROLE_KEYS if self.options.get(k)]
        for k in LIST_ROLE_KEYS:
            out += [(k, c) for c in self.options.get(k, ())]
        out += [("reference", c) for c in self.options.get("reference", {})]
        return out


@dataclass
class StudyFile:
    """A parsed study file (paths resolved against its folder)."""

    path: Path
    id: str
    title: str
    citation: str
    synthetic: bool
    published: Path | None
    key_term: str
    key_cell: dict
    """The headline estimate's ``table``, ``column`` and ``term`` (for the report)."""
    labels: dict
    data: dict
    analyses: list[AnalysisDecl] = field(default_factory=list)

    def select(self, names: tuple[str, ...] | None) -> StudyFile:
        """The study with only the analyses named (None: all); an unknown name is refused."""
        if not names:
            return self
        known = [a.name for a in self.analyses]
        bad = [n for n in names if n not in known]
        if bad:
            raise SpecError(f"--only: no analysis named {bad} in {self.path}; valid: {known}")
        self.analyses = [a for a in self.analyses if a.name in names]
        return self

    def key_analysis(self) -> AnalysisDecl:
        """The analysis that makes the headline estimate (``key_table``/``key_column``), for
        prior sensitivity and the report's headline."""
        cell = self.key_cell
        for a in self.analyses:
            if a.table == cell["table"] and (a.column or "") == cell["column"]:
                return a
        raise SpecError(f"{self.path}: no analysis answers the key estimate, table "
                        f"{cell['table']!r} column {cell['column']!r}")

    def load_data(self, data: Path | None = None, mapping: Path | None = None, *,
                  seed: int | None = None) -> tuple:
        """The data frame and its manifest record: ``data`` (a file given on the command line)
        overrides the file's ``[data]``. A loader that takes a ``seed`` (a parameter of that name
        or ``**kwargs``) which ``options`` leave unset is a generator: it gets the run's
        ``seed``; a generator may return a
        :class:`~bayes_pool.synthetic.SyntheticData`, whose truth goes into the record."""
        if data is not None or "file" in self.data:
            from bayes_pool.data import load as load_file
            path = data if data is not None else self.data["file"]
            loaded = load_file(path, mapping=mapping if data is not None
                               else self.data.get("mapping"))
            return loaded.frame, {"kind": "file", **loaded.manifest()}
        fn = callable_ref(self.data["loader"], "[data] loader")
        options = dict(self.data.get("options", {}))
        params = inspect.signature(fn).parameters
        if seed is not None and ("seed" in params or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())):
            options.setdefault("seed", seed)
        made = fn(**options)
        frame = getattr(made, "frame", made)
        if not isinstance(frame, pd.DataFrame):
            raise SpecError(f"[data] loader {self.data['loader']!r} returned "
                            f"{type(made).__name__}, not a pandas DataFrame")
        from bayes_pool.data.io import fingerprint
        # "path" and "format" are what the report's data-source block shows
        record = {"kind": "loader", "loader": self.data["loader"], "path": self.data["loader"],
                  "format": "Python loader", "options": options,
                  "fingerprint": fingerprint(frame), "n_rows": len(frame),
                  "n_columns": frame.shape[1]}
        if hasattr(made, "truth"):
            record.update(truth=made.truth, seed=options.get("seed"))
        return frame, record

    def check(self, frame: pd.DataFrame) -> None:
        """The ledger reads, every option is one the installed API takes, every role names a
        column of ``frame`` and every ``subset`` evaluates on it."""
        if self.published:
            from bayes_pool.study_run import read_ledger
            read_ledger(self.published, self.id)
        for a in self.analyses:
            check_api(a)
            where = f"{self.path}: analysis {a.name!r}"
            for key, col in a.columns():
                if col not in frame.columns:
                    raise InputError(f"{where}: key {key!r} names column {col!r}, which the "
                                     f"data does not have; columns: {sorted(frame.columns)}")
            subset(frame, a, where)

    def analyse(self, frame: pd.DataFrame, *, seed: int, draws=None, tune=None, chains=None,
                progress: Callable[[str], None] = lambda m: None, progressbar: bool = False):
        """Run the analyses and add the published rows (:func:`bayes_pool.study_run.analyse`)."""
        from bayes_pool.study_run import analyse
        return analyse(self, frame, seed=seed, sampler=(draws, tune, chains), progress=progress,
                       progressbar=progressbar)


def callable_ref(ref: str, where: str) -> Callable:
    """The function named by ``"module:function"``."""
    module, _, name = str(ref).partition(":")
    if not module or not name:
        raise SpecError(f"{where}: {ref!r} is not of the form 'module:function'")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"{where}: cannot import {ref!r} ({exc})") from None
    return fn


def subset(frame: pd.DataFrame, a: AnalysisDecl, where: str) -> pd.DataFrame:
    """The rows of ``frame`` the analysis's ``subset`` query keeps (all without one)."""
    if not a.subset:
        return frame
    try:
        out = frame.query(a.subset)
    except Exception as exc:  # pandas raises many kinds on a bad expression
        raise InputError(f"{where}: key 'subset' = {a.subset!r} does not evaluate on the data "
                         f"({type(exc).__name__}: {exc})") from None
    if out.empty:
        raise InputError(f"{where}: key 'subset' = {a.subset!r} keeps no rows")
    return out.reset_index(drop=True)


TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("id", "title", "citation", "published", "key_term", "file", "mapping",
                     "loader", "name", "kind", "subset", "spec", "priors", "description",
                     "function", *ROLE_KEYS), (str,)),
    **dict.fromkeys(("table", "column", "key_table", "key_column"), (str, int, float)),
    **dict.fromkeys(("labels", "options", "reference"), (dict,)),
    **dict.fromkeys(("backends", *LIST_ROLE_KEYS), (list, str)),
    "synthetic": (bool,),
}
"""The TOML type of each key whose type the format fixes (others are the API's to check)."""


def _unknown(table: dict, allowed: set, where: str) -> None:
    """Refuse keys outside ``allowed`` and values of the wrong type, naming the key."""
    bad = sorted(set(table) - allowed)
    if bad:
        raise SpecError(f"{where}: unknown key(s) {bad}; valid: {sorted(allowed)}")
    for key, value in table.items():
        types = TYPES.get(key)
        if types and not isinstance(value, types):
            raise SpecError(f"{where}: key {key!r} must be "
                            f"{' or '.join(t.__name__ for t in types)}, got {value!r}")


def _file(base: Path, value, key: str) -> Path:
    path = Path(value)
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"key {key!r}: file {path} does not exist")
    return path


def api_function(kind: str):
    import bayes_pool.api as api
    return getattr(api, kind)


def check_api(a: AnalysisDecl) -> None:
    """Refuse an option of the format that the installed :mod:`bayes_pool.api` function does
    not take yet (say ``vcov`` before the API has it, or ``family = "t"``), naming the key."""
    if a.kind in ("linear", "python"):
        return
    params = inspect.signature(api_function(a.kind)).parameters
    bad = sorted(set(a.options) - set(params))
    if bad:
        raise SpecError(f"analysis {a.name!r}: key(s) {bad} are study-file options that "
                        f"bayes_pool.api.{a.kind} of this version does not take; leave them "
                        "out or run only other analyses (--only)")
    from bayes_pool.api import DID_SPECS
    family = a.options.get("family")
    if a.kind in ("did", "staggered", "event_study") and family and family not in DID_SPECS:
        raise SpecError(f"analysis {a.name!r}: key 'family' = {family!r}; bayes_pool.api."
                        f"{a.kind} of this version takes {sorted(DID_SPECS)}")


def _declaration(raw: dict, i: int, base: Path) -> AnalysisDecl:
    where = f"[[analysis]] #{i + 1}"
    for key in ("name", "kind"):
        if key not in raw:
            raise SpecError(f"{where}: key {key!r} is missing")
    where = f"analysis {raw['name']!r}"
    kind = raw["kind"]
    if kind not in KINDS:
        raise SpecError(f"{where}: key 'kind' = {kind!r} is not an analysis kind; valid: "
                        f"{sorted(KINDS)}")
    options = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
    _unknown(options, KINDS[kind]["keys"] | COMMON_KEYS, f"{where} (kind {kind!r})")
    if kind == "python" and "function" in options:
        callable_ref(options["function"], f"{where}: key 'function'")
    if kind == "linear" and options.get("vcov", "iid") != "iid":
        raise SpecError(f"{where}: key 'vcov' = {options['vcov']!r}; a linear analysis has "
                        "classical (iid) SEs only")
    missing = [k for k in KINDS[kind]["required"] if not options.get(k)]
    if missing:
        raise SpecError(f"{where}: required key(s) {missing} missing for kind {kind!r}")
    for k in LIST_ROLE_KEYS:
        if isinstance(options.get(k), str):
            options[k] = [options[k]]
    spec = raw.get("spec")
    if spec and spec.endswith(".toml"):
        spec = str(_file(base, spec, f"{where}: spec"))
    if spec and kind == "mediate":
        from bayes_pool.bayes.mediation import load_mediation_spec
        load_mediation_spec(spec)  # an unknown name is refused here, listing the valid ones
    elif spec and kind != "python":
        from bayes_pool.specs import load_spec
        load_spec(spec)
    from bayes_pool.api import BACKENDS
    backends = raw.get("backends", list(BACKENDS))
    if not backends or set(backends) - set(BACKENDS):
        raise SpecError(f"{where}: key 'backends' = {backends!r}; a non-empty list of "
                        f"{list(BACKENDS)}")
    priors = raw.get("priors")
    if priors:
        if kind in ("psm", "mediate"):
            raise SpecError(f"{where}: key 'priors' applies to did, staggered, event_study, "
                            f"linear and python analyses, not {kind!r}")
        from bayes_pool.priors import load_prior_set
        if priors.endswith(".toml"):
            priors = str(_file(base, priors, f"{where}: priors"))
        load_prior_set(priors)  # an unknown name is refused here, listing the valid ones
    return AnalysisDecl(name=str(raw["name"]), kind=kind, table=str(raw.get("table", kind)),
                        column=str(raw["column"]) if "column" in raw else None,
                        options=options, subset=raw.get("subset"), spec=spec,
                        priors=priors, backends=tuple(backends),
                        description=raw.get("description", ""))


def load(path: str | Path) -> StudyFile:
    """Read and check a study file; raises SpecError/InputError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"study file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    base = path.parent
    _unknown(raw, TOP_KEYS, str(path))
    study, data = raw.get("study", {}), raw.get("data", {})
    _unknown(study, STUDY_KEYS, f"{path}: [study]")
    _unknown(data, DATA_KEYS, f"{path}: [data]")
    for key in ("id", "title"):
        if key not in study:
            raise SpecError(f"{path}: [study] key {key!r} is missing")
    if ("file" in data) == ("loader" in data):
        raise SpecError(f"{path}: [data] needs exactly one of 'file' or 'loader'")
    data = dict(data)
    if "file" in data:
        data["file"] = _file(base, data["file"], "[data] file")
        if "mapping" in data:
            data["mapping"] = _file(base, data["mapping"], "[data] mapping")
    decls = [_declaration(a, i, base) for i, a in enumerate(raw.get("analysis", []))]
    if not decls:
        raise SpecError(f"{path}: no [[analysis]] entries")
    names = [a.name for a in decls]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"{path}: analysis names {dup} are used more than once")
    published = _file(base, study["published"], "[study] published") \
        if "published" in study else None
    key_term = str(study.get("key_term", decls[0].options.get("treatment", "")))
    return StudyFile(path=path, id=str(study["id"]), title=str(study["title"]),
                     citation=str(study.get("citation", "")),
                     synthetic=bool(study.get("synthetic", False)), published=published,
                     key_term=key_term, key_cell={
                         "table": str(study.get("key_table", decls[0].table)),
                         "column": str(study.get("key_column", decls[0].column or "")),
                         "term": key_term},
                     labels=dict(study.get("labels", {})), data=data, analyses=decls)


def is_study_file(name: str) -> bool:
    """Whether a ``run`` argument names a study file rather than a built-in study id."""
    return name.endswith(".toml") or "/" in name or Path(name).is_file()
