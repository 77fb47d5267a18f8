"""`bayes-pool run STUDY`: a study's reanalysis (published, frequentist, Bayesian) into a new
run folder. STUDY is a built-in study id, the id of a shipped study file, or the path of a
study file (:mod:`bayes_pool.study_file`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_pool import runs, studies, study_file
from bayes_pool.commands.common import (
    ChainsOpt, DrawsOpt, MaxDivOpt, MaxRhatOpt, MinEssOpt, OutOpt, SeedOpt, StrictOpt,
    StudyArg, TuneOpt, base_thresholds, command, convergence_record, fail, finish, flag, gate,
    load_user_data, print_comparison, say, spec_with_sampler, thresholds, with_convergence)
from bayes_pool.commands.invocation import invocation
from bayes_pool.errors import BayesPoolError, SpecError


@command("run")
def run(study: StudyArg,
        data: Annotated[Optional[Path], typer.Option(help="Survey file (.dta .sav .csv "
                                                     ".parquet); default: synthetic data.")] = None,
        mapping: Annotated[Optional[Path], typer.Option(help="TOML mapping raw -> canonical "
                                                        "columns and recodes.")] = None,
        seed: SeedOpt = 2024, spec: Annotated[Optional[str], typer.Option(
            help="Model spec name in models/ or a TOML path.")] = None,
        out_dir: OutOpt = None, draws: DrawsOpt = None, tune: TuneOpt = None,
        chains: ChainsOpt = None, strict: StrictOpt = False,
        only: Annotated[Optional[str], typer.Option(
            help="Comma-separated parts to run (default all), e.g. table2,table3.")] = None,
        placebo_draws: Annotated[Optional[int], typer.Option(
            help="Placebo refits (default 500, as the paper).")] = None,
        workers: Annotated[Optional[int], typer.Option(
            help="Parallel workers for refit loops (default: all cores; 1 = in-process).")] = None,
        mediation_model: Annotated[Optional[str], typer.Option(
            help="Bayesian mediator of a study's mediation part: index (the index as "
                 "observed, as the paper; default) or latent (measurement model of its "
                 "items, slower).")] = None,
        scheduler: Annotated[Optional[str], typer.Option(
            help="Existing dask scheduler for refit loops, e.g. tcp://host:8786 (default: "
                 "$DASK_SCHEDULER_ADDRESS, else a local cluster).")] = None,
        max_r_hat: MaxRhatOpt = None, min_ess: MinEssOpt = None,
        max_divergences: MaxDivOpt = None):
    """Re-analyse a study: published vs frequentist vs Bayesian, into a new run folder.

    STUDY is a built-in study id (`bayes-pool studies`), a shipped study file's id
    (meyer-injury) or the path of a study file (docs/study_files.md); for a study file
    --only names its analyses."""
    start = time.perf_counter()
    gates = thresholds(max_r_hat, min_ess, max_divergences)
    if study_file.is_study_file(study) or study in studies.STUDY_FILES:
        unused = {flag(k): v for k, v in dict(spec=spec, placebo_draws=placebo_draws,
                                               workers=workers, mediation_model=mediation_model,
                                               scheduler=scheduler).items() if v is not None}
        if unused:
            fail(SpecError(f"{', '.join(unused)}: not options of a study-file run (each "
                           "analysis names its spec in the file)"))
        return _run_file(study, data=data, mapping=mapping, seed=seed, out_dir=out_dir,
                         sampler=(draws, tune, chains), only=only, gates=gates, strict=strict,
                         start=start, scope=locals())
    extra = {k: v for k, v in dict(
        parts=tuple(p.strip() for p in only.split(",") if p.strip()) if only else None,
        placebo_draws=placebo_draws, workers=workers, scheduler=scheduler,
        mediation_model=mediation_model).items()
        if v is not None}
    try:
        record = studies.get(study)
        record.check_options(extra, flag=flag)
        model_spec = with_convergence(
            spec_with_sampler(spec or record.default_spec, draws, tune, chains)
            if record.default_spec or spec else None, gates)
        if data is None:
            say(f"No --data: generating the SYNTHETIC {study} data set (seed {seed})")
            sim = record.simulate(seed=seed)
            frame, synthetic = sim.frame, True
            source = {"kind": "synthetic", "seed": seed, "options": sim.options, "truth": sim.truth}
            if record.synthetic_extras is not None:
                extras = record.synthetic_extras(seed)
                extra.update(extras["run_kwargs"])
                source["extras"] = extras["manifest"]
        else:
            say(f"Loading {data}")
            loaded = load_user_data(data, mapping=mapping)
            frame, synthetic = record.prepare(loaded.frame, source=str(data)), False
            source = {"kind": "file", **loaded.manifest()}
        record.check(frame)  # reject bad input before any folder or model exists
        if synthetic:
            from bayes_pool.data.io import fingerprint
            source.update(fingerprint=fingerprint(frame), n_rows=len(frame))
        with runs.run_folder(study, out=out_dir, seed=seed) as folder:
            analysis = record.pipeline(frame, spec=model_spec, seed=seed, progress=say,
                               progressbar=sys.stderr.isatty(), **extra)
            analysis.estimates = gate(analysis.estimates, base_thresholds(model_spec), gates)
            say("Writing estimates, comparison, posterior and figures")
            from bayes_pool.workflow import write_run
            write_run(folder, analysis, study=study, title=record.title, synthetic=synthetic,
                      key_term=record.key_term, manifest={
                                "command": "run", "seed": seed, "data": source,
                                "table_names": dict(record.labels),
                                "invocation": invocation("run", locals()),
                                "convergence": convergence_record(model_spec, gates),
                                "spec": model_spec.to_dict() if model_spec else None,
                                "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    final = runs.last_run(study)
    print_comparison(final, synthetic, record.key_term)
    finish(final, analysis.estimates, strict)


def _run_file(study: str, *, data, mapping, seed, out_dir, sampler, only, gates, strict, start,
              scope):
    """`run` on a study file: every check (keys, files, columns) before the run folder."""
    from bayes_pool.workflow import write_run
    path = Path(str(studies.STUDY_FILES.get(study) or study))
    try:
        declared = study_file.load(path).select(
            tuple(p.strip() for p in only.split(",") if p.strip()) if only else None)
        frame, source = declared.load_data(data, mapping, seed=seed)
        synthetic = declared.synthetic and data is None  # --data replaces a generator
        declared.check(frame)
        with runs.run_folder(declared.id, out=out_dir, seed=seed) as folder:
            analysis = declared.analyse(frame, seed=seed, draws=sampler[0], tune=sampler[1],
                                        chains=sampler[2], progress=say,
                                        progressbar=sys.stderr.isatty())
            analysis.estimates = gate(analysis.estimates, base_thresholds(None), gates)
            for note in analysis.facts["notes"]:
                say(note)
            say("Writing estimates, comparison, posterior and figures")
            write_run(folder, analysis, study=declared.id, title=declared.title,
                      synthetic=synthetic, key_term=declared.key_term, manifest={
                          "command": "run", "seed": seed, "data": source,
                          "study_file": str(Path(path).resolve()),
                          "citation": declared.citation, "notes": analysis.facts["notes"],
                          "key_estimate": declared.key_cell,
                          "table_names": declared.labels,
                          "invocation": invocation("run", {**scope, "study": str(
                              Path(path).resolve()) if study not in studies.STUDY_FILES
                              else study}),
                          "convergence": convergence_record(None, gates),
                          "elapsed_seconds": round(time.perf_counter() - start, 1)})
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    final = runs.last_run(declared.id)
    print_comparison(final, synthetic, declared.key_term)
    finish(final, analysis.estimates, strict)
