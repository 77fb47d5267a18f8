"""`bayes-pool sensitivity STUDY|RUN_DIR`: refit a study's benchmark model, or the key model of
a did/psm/mediate run, under every prior set."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from bayes_pool.commands.common import (command, console, fail, load_user_data, out, say,
                                        spec_with_sampler)
from bayes_pool.commands.invocation import invocation


@command("sensitivity")
def sensitivity(
        study: Annotated[str, typer.Argument(
            help="Study id (bayes-pool studies lists them), or the folder of a did, psm or "
                 "mediate run.")],
        model: Annotated[Optional[str], typer.Option(
            help="Model spec name in models/ or a TOML path (default: the spec of the study's "
                 "benchmark model).")] = None,
        priors: Annotated[str, typer.Option(
            help="Prior sets: 'all' or a comma list of names or .toml paths, e.g. "
                 "default,vague,sceptical. Names are looked up in --priors-dir, else among the "
                 "shipped sets (models/priors/).")] = "all",
        priors_dir: Annotated[Optional[Path], typer.Option(
            help="A folder of your own prior sets (<name>.toml files, the format of "
                 "models/priors/); 'all' then means every set in it.")] = None,
        data: Annotated[Optional[Path], typer.Option(
            help="Survey file (.dta .sav .csv .parquet); default: synthetic data (a run's: "
                 "the file its manifest names; give this if it moved).")] = None,
        mapping: Annotated[Optional[Path], typer.Option(
            help="TOML mapping raw -> canonical columns and recodes.")] = None,
        seed: Annotated[Optional[int], typer.Option(
            help="Root random seed (generator and sampler; default 2024, a run's own).")] = None,
        draws: Annotated[Optional[int], typer.Option(help="Posterior draws per chain.")] = None,
        tune: Annotated[Optional[int], typer.Option(help="Tuning steps per chain.")] = None,
        chains: Annotated[Optional[int], typer.Option(help="Chains.")] = None,
        workers: Annotated[Optional[int], typer.Option(
            help="Parallel fits (default: all cores; 1 = in-process).")] = None,
        prior_draws: Annotated[int, typer.Option(
            help="Prior predictive draws per prior set (0: no prior predictive check).")] = 500,
        checks: Annotated[bool, typer.Option(
            "--checks/--no-checks", help="Power-scaling diagnostics of every fit and the "
                                         "posterior predictive check of the first set's.")] = True,
        out_dir: Annotated[Optional[Path], typer.Option(
            "--out", help="Write the run here instead of a new folder under outputs/.")] = None):
    """Refit a study's benchmark model, or a run's key model, under each prior set.

    Writes sensitivity.csv/.png, estimates.csv, power-scaling (psense.csv/.png) and the prior
    and posterior predictive checks into a new run folder; for a did, psm or mediate run
    folder (its data, roles, spec and sampler re-read from its manifest), into
    RUN_DIR/sensitivity/<prior sets>/, and the run's report gains a sensitivity section.
    Finished prior sets are kept in outputs/<study or command>/.refits/, so the same command
    run again after an interruption refits only the sets not yet done."""
    from bayes_pool.errors import BayesPoolError
    from bayes_pool.priors import select
    start = time.perf_counter()
    try:
        sets = select(priors, priors_dir)
        from bayes_pool import studies
        run_mode = study not in studies.STUDIES  # a study id wins over a folder of that name
        if run_mode and ("/" in study or study.startswith(".")) and not Path(study).is_dir():
            raise BayesPoolError(f"{study}: no such run folder (give a did, psm or mediate "
                                 "run's folder, or a study id: bayes-pool studies)")
        if run_mode and Path(study).is_dir():
            study = str(Path(study).resolve())
            seed, label, folder_out, target, spec, source, synthetic, title = _of_run(
                Path(study), model=model, data=data, mapping=mapping, seed=seed, draws=draws,
                tune=tune, chains=chains, out_dir=out_dir, priors=priors)
        else:
            seed = 2024 if seed is None else seed
            target, spec, source, synthetic, title = _of_study(
                study, model=model, data=data, mapping=mapping, seed=seed, draws=draws,
                tune=tune, chains=chains)
            label, folder_out = study, out_dir
        result, folder = _write(label, target, spec, sets, source=source, synthetic=synthetic,
                                title=title, seed=seed, workers=workers,
                                prior_draws=prior_draws, checks=checks, out_dir=folder_out,
                                start=start, invocation=invocation("sensitivity", locals()))
    except (BayesPoolError, ValueError, FileExistsError) as exc:
        fail(exc)
    _print(result, synthetic, out)
    out.print(f"Run written to {folder}")
    if not result.table["converged"].all():
        console.print("[bold yellow]warning:[/] some prior sets' posteriors fail the convergence "
                      "thresholds (converged = False in sensitivity.csv)")


def _of_study(study: str, *, model, data, mapping, seed, draws, tune, chains):
    """A built-in study's benchmark target on its synthetic data or the user's file."""
    from bayes_pool import studies
    from bayes_pool.errors import BayesPoolError
    record = studies.get(study)
    if record.sensitivity_target is None:
        raise BayesPoolError(f"study {study!r} declares no benchmark model for sensitivity")
    spec = spec_with_sampler(model or record.default_spec, draws, tune, chains)
    if data is None:
        say(f"No --data: generating the SYNTHETIC {study} data set (seed {seed})")
        sim = record.simulate(seed=seed)
        frame, synthetic = sim.frame, True
        source = {"kind": "synthetic", "seed": seed, "options": sim.options}
        from bayes_pool.data.io import fingerprint
        source.update(fingerprint=fingerprint(frame), n_rows=len(frame))
    else:
        say(f"Loading {data}")
        loaded = load_user_data(data, mapping=mapping)
        frame, synthetic = record.prepare(loaded.frame, source=str(data)), False
        source = {"kind": "file", **loaded.manifest()}
    return record.sensitivity_target(frame, seed=seed), spec, source, synthetic, record.title


def _of_run(run_dir: Path, *, model, data, mapping, seed, draws, tune, chains, out_dir, priors):
    """A did/psm/mediate run's key model on its own data (re-read from the file its manifest
    names, or ``data``), its seed and sampler unless given; written into the run's
    ``sensitivity/<prior sets>`` folder (with a run id if that exists) unless ``out_dir``."""
    from bayes_pool import sensitivity_runs
    call = sensitivity_runs.from_run_folder(run_dir, data=data, mapping=mapping)
    say(f"Re-reading the data of the {call.command} run {run_dir.name}")
    call.args.update({k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items()
                      if v is not None})
    target, spec = sensitivity_runs.target(call, spec=model)
    seed = call.args.get("seed", 2024) if seed is None else seed
    from bayes_pool.runs import new_run_id
    name = "-".join(Path(p.strip()).name.removesuffix(".toml") for p in priors.split(","))
    folder = run_dir / "sensitivity" / (name or "all")
    if folder.exists():  # runs never overwrite: a second run of the same sets gets its own
        folder = folder.with_name(f"{folder.name}-{new_run_id(seed)}")
    return (seed, call.command, out_dir or folder, target, spec, call.source, False,
            f"{call.command} run {run_dir.name}")


def _write(label: str, target, spec, sets, *, source, synthetic, title, seed, workers,
           prior_draws, checks, out_dir, start, invocation):
    """Refit ``target`` under ``sets`` into a new run folder (under outputs/LABEL, or
    ``out_dir``), with its manifest and report; a folder inside a run folder also adds itself
    to that run's report. Returns the result and the folder."""
    from bayes_pool import runs
    from bayes_pool.checkpoint import refits_dir
    from bayes_pool.report_page import write_report
    from bayes_pool.sensitivity import run_sensitivity, write_sensitivity
    with runs.run_folder(label, out=out_dir, seed=seed) as folder:
        s = spec.sampler
        say(f"Refitting {target.description} under {len(sets)} prior set(s) "
            f"({s.chains} chains x {s.draws} draws each)"
            + (" on SYNTHETIC data" if synthetic else ""))
        result = run_sensitivity(target, spec, sets, seed=seed, workers=workers,
                                 prior_draws=prior_draws, checks=checks, progress=say,
                                 refits_dir=refits_dir(label))
        for name, why in result.skipped.items():
            say(f"prior set {name!r} skipped: {why}")
        say("Writing the sensitivity table, forest plot and checks")
        paths = write_sensitivity(folder, result, synthetic=synthetic, title=title)
        runs.write_manifest(folder, {
            "command": "sensitivity", "study": label, "seed": seed, "data": source,
            "synthetic": synthetic, "key_term": target.treatment,
            "model": {"description": target.description, "spec": spec.to_dict(),
                      "key_quantity": target.key_quantity, "n_obs": target.n_obs},
            "published": {"marked": vars(target.marked) if target.marked else None,
                          "centre": vars(target.centre) if target.centre else None},
            "prior_sets": {p.name: {**p.to_dict(), "applied": result.specs.get(p.name)}
                           for p in sets},
            "skipped_prior_sets": result.skipped, "workers": workers,
            "diagnostics": {"all_converged": bool(result.table["converged"].all()),
                            "max_r_hat": float(result.table["r_hat"].max()),
                            "min_ess_bulk": float(result.table["ess_bulk"].min()),
                            "divergences": dict(zip(result.table["prior_set"],
                                                    result.table["divergences"].astype(int)))},
            "invocation": invocation,
            "files": sorted(p.name for p in paths.values()) + ["manifest.json", "report.html",
                                                               "report.md"],
            "elapsed_seconds": round(time.perf_counter() - start, 1)})
        write_report(folder)
    folder = runs.last_run(label)
    run_dir = folder.parent.parent
    if folder.parent.name == "sensitivity" and (run_dir / "manifest.json").is_file():
        say(f"Adding the sensitivity results to the report of {run_dir.name}")
        write_report(run_dir)
    return result, folder


def _print(result, synthetic: bool, out) -> None:
    from rich.table import Table
    t = result.target
    table = Table(title=("SYNTHETIC DATA — " if synthetic else "")
                  + f"prior sensitivity: {t.key_quantity} of {t.treatment}")
    for col in ["prior set", "mean", "sd", "95% interval", "P(>0)", "R-hat", "ESS", "div", "ok"]:
        table.add_column(col)
    for r in result.table.itertuples():
        table.add_row(r.prior_set, f"{r.mean:.4f}", f"{r.sd:.4f}",
                      f"[{r.ci_low:.4f}, {r.ci_high:.4f}]", f"{r.p_positive:.3f}",
                      f"{r.r_hat:.3f}", f"{r.ess_bulk:.0f}", str(r.divergences),
                      "yes" if r.converged else "NO")
    out.print(table)
    if result.psense is not None:
        for name, block in result.psense.groupby("prior_set", sort=False):
            flagged = block[block["diagnosis"] != "✓"]
            shown = ", ".join(f"{v} ({d.removeprefix('potential ')})"
                              for v, d in zip(flagged["variable"][:6], flagged["diagnosis"][:6]))
            out.print(f"power-scaling, prior set {name}: {len(flagged)} of {len(block)} variables "
                      f"flagged" + (f": {shown}" + (" ..." if len(flagged) > 6 else "")
                                    if len(flagged) else ""))
