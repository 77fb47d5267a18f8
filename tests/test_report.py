"""The reanalysis report (report.html, report.md) of a run folder.

Run folders are built with the real :func:`bayes_pool.workflow.write_run` from fabricated
estimates and small matplotlib figures (no sampling), so the report is checked on exactly what
a run writes. The HTML page is opened in headless Chromium (Debian's ``chromium``, installed by
``scripts/install-chromium``); the checks read the browser's rendered DOM, and the screenshots
are kept in ``test-artifacts/report/``.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from bayes_pool import compare, estimates, runs  # noqa: E402
from bayes_pool.cli import app  # noqa: E402
from bayes_pool.report_page import collect, sensitivity_folders, write_report  # noqa: E402
from bayes_pool.workflow import Analysis, write_run  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "report"
SENTINEL = "ROWLEVEL-SENTINEL-9931"
NOTICE_RGB = np.array([0xFF, 0xF3, 0xCD]) / 255  # background of #synthetic-notice
runner = CliRunner()


# --------------------------------------------------------------------------- building runs


def _png(path: Path, width_in: float, label: str) -> Path:
    fig, ax = plt.subplots(figsize=(width_in, 2))
    ax.plot([0, 1, 2], [0, 1, 0.5])
    ax.set_title(label)
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return path


def _estimates(study: str) -> pd.DataFrame:
    """Table 3 three ways (one posterior not converged), a DiD table with no published
    counterpart, and a published Table 4 cell the run does not re-estimate."""
    r = estimates.row
    good = dict(r_hat=1.001, ess_bulk=1500.0, ess_tail=1200.0, divergences=0.0, converged=True)
    bad = dict(r_hat=1.08, ess_bulk=55.0, ess_tail=70.0, divergences=3.0, converged=False)
    rows = [
        r(study=study, table="3", column="(1)", term="policy", quantity="ame", source="published",
          estimate=0.098, se=0.041, n_obs=7719),
        r(study=study, table="3", column="(1)", term="policy", quantity="beta", source="published",
          estimate=0.674, se=0.28, n_obs=7719, note="flag: contradiction; printed twice"),
        r(study=study, table="3", column="(1)", term="policy", quantity="ame",
          source="frequentist", estimate=0.093, se=0.040, n_obs=7719),
        r(study=study, table="3", column="(1)", term="policy", quantity="beta",
          source="frequentist", estimate=0.518, se=0.27, n_obs=7719),
        r(study=study, table="3", column="(1)", term="policy", quantity="ame", source="bayesian",
          estimate=0.087, se=0.048, ci_low=-0.01, ci_high=0.18, n_obs=7719, **good),
        r(study=study, table="3", column="(1)", term="policy", quantity="beta", source="bayesian",
          estimate=0.494, se=0.29, ci_low=-0.07, ci_high=1.05, n_obs=7719, **bad),
        r(study=study, table="did", column="bernoulli", term="policy", quantity="ame",
          source="frequentist", estimate=0.05, se=0.02, n_obs=300),
        r(study=study, table="did", column="bernoulli", term="policy", quantity="ame",
          source="bayesian", estimate=0.051, se=0.021, ci_low=0.01, ci_high=0.09, n_obs=300,
          **good),
        r(study=study, table="4", column="(1)", term="objective", quantity="beta",
          source="published", estimate=0.2, se=0.05, n_obs=7719),
    ]
    return estimates.frame(rows)


def _figure_maker(folder: Path, synthetic: bool, table: pd.DataFrame) -> dict[str, Path]:
    return {"event_study": _png(folder / "event_study.png", 5, "event study"),
            "extra": _png(folder / "heterogeneity.png", 4, "subgroups")}


def _write_sensitivity(folder: Path, study: str) -> None:
    """What the sensitivity command writes: tables, figures, estimates and a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"prior_set": ["default", "vague", "sceptical", "optimistic"],
                  "quantity": "ame", "mean": [0.087, 0.09, 0.05, 0.097],
                  "sd": [0.048, 0.05, 0.03, 0.04], "p_positive": [0.96, 0.96, 0.9, 0.99],
                  "converged": [True, True, False, True]}
                 ).to_csv(folder / "sensitivity.csv", index=False)
    pd.DataFrame({"variable": ["policy", "sigma_province", "Intercept"],
                  "prior": [0.01, 0.12, 0.02], "likelihood": [0.3, 0.02, 0.4],
                  "diagnosis": ["✓", "potential prior-data conflict", "✓"]}
                 ).to_csv(folder / "psense.csv", index=False)
    for name, w in [("sensitivity", 5), ("psense", 4.5), ("prior_predictive", 4),
                    ("posterior_predictive", 3.5)]:
        _png(folder / f"{name}.png", w, name)
    r = estimates.row
    estimates.write_csv(estimates.frame([
        r(study=study, table="3", column=f"(1) {p}", term="policy", quantity="ame",
          source="bayesian", estimate=m, se=0.04, ci_low=m - 0.08, ci_high=m + 0.08,
          r_hat=1.0, ess_bulk=900.0, ess_tail=800.0, divergences=0.0, converged=True)
        for p, m in [("vague", 0.09), ("sceptical", 0.05)]]), folder / "estimates.csv")
    (folder / "manifest.json").write_text(json.dumps(
        {"command": "sensitivity", "study": study, "seed": 7,
         "data": {"kind": "synthetic", "seed": 7, "fingerprint": "f00d"}}))


@pytest.fixture(scope="module")
def runs_built(tmp_path_factory):
    """A synthetic `run`-like folder with a sensitivity/ subfolder, and a file-based `did`-like
    folder; both written by write_run (which writes the report), the first then re-reported
    by `bayes-pool report` once its sensitivity results exist."""
    base = tmp_path_factory.mktemp("report")
    spec = {"name": "did_logit", "family": "bernoulli", "description": "hierarchical DiD",
            "priors": {"treatment": {"dist": "Normal", "mu": 0, "sigma": 2.5}},
            "sampler": {"chains": 2, "draws": 300, "tune": 300},
            "convergence": {"max_r_hat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400,
                            "max_divergences": 0}}
    kinds = {
        "synthetic": dict(study="testy", synthetic=True, manifest={
            "command": "run", "seed": 2024, "spec": spec,
            "invocation": {"command": "run", "args": {"study": "testy", "seed": 2024,
                                                      "only": "table3", "data": None}},
            "data": {"kind": "synthetic", "seed": 2024, "fingerprint": "abc123", "n_rows": 7719}}),
        "file": dict(study="did", synthetic=False, manifest={
            "command": "did", "seed": 5, "spec": spec,
            "data": {"path": "/data/my_panel.csv", "format": "csv", "fingerprint": "def456",
                     "n_rows": 300, "n_columns": 6, "mapping": None}}),
    }
    out = {}
    for kind, k in kinds.items():
        with runs.run_folder(k["study"], out=base / f"run-{kind}") as folder:
            # a data file left in the folder must never reach the report
            pd.DataFrame({"id": [SENTINEL], "y": [1]}).to_csv(folder / "data.csv", index=False)
            analysis = Analysis(estimates=_estimates(k["study"]), figures=[_figure_maker])
            paths = write_run(folder, analysis, study=k["study"], title=f"Test {kind}",
                              synthetic=k["synthetic"], key_term="policy", manifest=k["manifest"])
            assert paths["report_html"].exists() and paths["report_md"].exists()
        out[kind] = base / f"run-{kind}"
    _write_sensitivity(out["synthetic"] / "sensitivity", "testy")
    res = runner.invoke(app, ["report", str(out["synthetic"])])
    assert res.exit_code == 0, res.output
    assert "sensitivity results from sensitivity" in res.output
    return out


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def chromium():
    return _require_chromium()


def _require_chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the report test needs Debian's chromium package. "
                    "Run the set-up (`make setup`, which runs scripts/install-chromium; as root: "
                    "`scripts/install-chromium`).", pytrace=False)
    return CHROMIUM


_MARK_IMAGES = """<script>
window.addEventListener('load', () => {
  for (const img of document.images) {
    img.setAttribute('data-loaded', String(img.complete && img.naturalWidth > 0));
    img.setAttribute('data-natural-width', String(img.naturalWidth));
  }
  document.body.setAttribute('data-checked', 'yes');
});
</script>"""


def _chromium(binary: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(binary), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def _dom(binary: Path, report: Path, tmp: Path) -> "DomSummary":
    """Chromium's DOM of the report after load, with every img marked loaded or not (the
    marking script goes into a copy; the report itself carries no script)."""
    check = tmp / f"check-{report.parent.name}.html"
    check.write_text(report.read_text().replace("</body>", _MARK_IMAGES + "</body>"))
    res = _chromium(binary, tmp / "profile-dom", "--virtual-time-budget=10000", "--dump-dom",
                    check.as_uri())
    dom = DomSummary()
    dom.feed(res.stdout)
    assert dom.body_attrs.get("data-checked") == "yes", "the load handler never ran"
    return dom


def _screenshot(binary: Path, report: Path, name: str, tmp: Path) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    _chromium(binary, tmp / "profile-shot", "--hide-scrollbars", "--window-size=1280,4200",
              f"--screenshot={shot}", report.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000
    return shot


class DomSummary(HTMLParser):
    """What the checks need from a dumped DOM: images (with their figure), tables (rows and
    flagged rows by data-table), the first element of the body, and the visible text."""

    def __init__(self):
        super().__init__()
        self.images, self.tables, self.ids = [], {}, []
        self.body_attrs, self.first_in_body, self.text = {}, None, []
        self._figure, self._table, self._in_body, self._skip = None, None, False, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self._in_body, self.body_attrs = True, a
            return
        if self._in_body and self.first_in_body is None:
            self.first_in_body = (tag, a.get("id"))
        if "id" in a:
            self.ids.append(a["id"])
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "figure":
            self._figure = a.get("data-figure")
        elif tag == "img":
            self.images.append({**a, "figure": self._figure})
        elif tag == "table":
            self._table = a.get("data-table")
            self.tables[self._table] = {"rows": 0, "flagged": 0}
        elif tag == "tr" and self._table is not None:
            self.tables[self._table]["rows"] += 1
            self.tables[self._table]["flagged"] += "flagged" in (a.get("class") or "")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "figure":
            self._figure = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_body and not self._skip:
            self.text.append(data)

    @property
    def body_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _png_width(path: Path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


# --------------------------------------------------------------------------- tests


def test_synthetic_report_in_chromium(runs_built, chromium, tmp_path):
    run = runs_built["synthetic"]
    report = run / "report.html"
    dom = _dom(chromium, report, tmp_path)

    # every figure of the run and of its sensitivity folder, each once, loaded at its own size
    pngs = {p.stem: p for p in [*run.glob("*.png"), *(run / "sensitivity").glob("*.png")]}
    assert {"forest", "event_study", "heterogeneity", "sensitivity", "psense",
            "prior_predictive", "posterior_predictive"} <= set(pngs)
    assert sorted(i["figure"] for i in dom.images) == sorted(pngs)
    for img in dom.images:
        assert img["src"].startswith("data:image/png;base64,"), img["figure"]
        assert img["data-loaded"] == "true", f"{img['figure']} did not load"
        assert int(img["data-natural-width"]) == _png_width(pngs[img["figure"]])

    # every reproduced table, with one row per compared cell (+ header)
    comp = compare.comparison(pd.read_csv(run / "estimates.csv"))
    for table, n in comp.groupby("table").size().items():
        assert dom.tables[f"testy-{table}"]["rows"] == n + 1
    assert set(comp["table"]) == {"3", "did"}  # Table 4 was published only
    assert "Table 4: 1 cell" in dom.body_text
    # convergence: one row per posterior estimate, the unconverged one flagged with its reasons
    assert dom.tables["convergence"] == {"rows": 3 + 1, "flagged": 1}
    assert dom.tables["testy-3"]["flagged"] == 1
    assert "1 of 3 posterior estimates NOT CONVERGED" in dom.body_text
    assert "R-hat 1.080 > 1.01; ESS bulk 55 < 400; ESS tail 70 < 400; 3 divergences" \
        in dom.body_text
    # sensitivity tables (a prior-data conflict row flagged), refit convergence, manifest
    sens = "sens-sensitivity"
    assert dom.tables[f"{sens}-sensitivity"] == {"rows": 4 + 1, "flagged": 1}  # not converged
    assert dom.tables[f"{sens}-psense"] == {"rows": 3 + 1, "flagged": 1}
    assert dom.tables[f"{sens}-convergence"]["rows"] == 2 + 1
    assert dom.tables["versions"]["rows"] > 5
    assert "abc123" in dom.body_text and "bayes-pool run testy" in dom.body_text

    # the headline opens the page: the key term's AME of the first table, P(effect > 0) of the
    # default prior set and the range over the four prior sets of sensitivity.csv
    assert dom.ids.index("headline") < dom.ids.index("robustness") < dom.ids.index("tables")
    assert dom.tables["headline"]["rows"] == 1 + 1
    assert "0.087 (0.048) [-0.010, 0.180]" in dom.body_text
    assert "0.960" in dom.body_text and "0.050 to 0.097 over 4 prior sets" in dom.body_text
    # "How robust is it?": the prior-set line, and how to make the missing robustness folder
    assert dom.tables["robustness"]["rows"] == 1 + 1
    assert "bayes-pool robustness RUN_DIR" in dom.body_text

    # the SYNTHETIC DATA notice is the first thing on the page
    assert dom.first_in_body == ("div", "synthetic-notice")
    assert dom.body_text.startswith("SYNTHETIC DATA")
    assert "run-synthetic" in dom.body_text and ".partial" not in dom.body_text
    assert SENTINEL not in report.read_text()

    shot = _screenshot(chromium, report, "synthetic_run", tmp_path)
    top = plt.imread(shot)[30:60, 300:1000, :3]  # inside the notice box at the top
    assert np.allclose(top.mean(axis=(0, 1)), NOTICE_RGB, atol=0.03)


def test_file_run_report_has_no_synthetic_notice(runs_built, chromium, tmp_path):
    run = runs_built["file"]
    report = run / "report.html"
    dom = _dom(chromium, report, tmp_path)
    assert "synthetic-notice" not in dom.ids
    assert "SYNTHETIC DATA" not in dom.body_text
    assert dom.first_in_body[0] == "h1"
    assert all(i["data-loaded"] == "true" for i in dom.images)
    assert sorted(i["figure"] for i in dom.images) == sorted(p.stem for p in run.glob("*.png"))
    assert {"did-3", "did-did", "convergence"} <= set(dom.tables)
    assert "/data/my_panel.csv" in dom.body_text and "def456" in dom.body_text
    assert "No sensitivity results found" in dom.body_text
    # headline without a sensitivity run: P(effect > 0) by the normal approximation, said so
    assert dom.tables["headline"]["rows"] == 1 + 1
    assert "≈ 0.965" in dom.body_text and "not run (bayes-pool sensitivity)" in dom.body_text
    assert "robustness" not in dom.tables and "bayes-pool robustness RUN_DIR" in dom.body_text
    assert SENTINEL not in report.read_text()
    shot = _screenshot(chromium, report, "file_run", tmp_path)
    top = plt.imread(shot)[30:60, 300:1000, :3]
    assert not np.allclose(top.mean(axis=(0, 1)), NOTICE_RGB, atol=0.03)


def test_markdown_report(runs_built):
    syn = (runs_built["synthetic"] / "report.md").read_text()
    assert syn.startswith("> **SYNTHETIC DATA.**")
    for heading in ("## Data source", "### Table 3", "### DiD", "## Figures",
                    "## Convergence diagnostics", "## Prior sensitivity", "#### psense.csv",
                    "## Manifest"):
        assert f"\n{heading}\n" in syn, heading
    links = [line[line.index("(") + 1:-1] for line in syn.splitlines() if line.startswith("![")]
    assert len(links) == 7
    assert all((runs_built["synthetic"] / link).is_file() for link in links)
    assert "**NOT CONVERGED: R-hat 1.080" in syn
    plain = (runs_built["file"] / "report.md").read_text()
    assert "SYNTHETIC" not in plain and plain.startswith("# bayes-pool did")
    assert SENTINEL not in syn + plain


def test_sensitivity_folder_rule(tmp_path):
    """Run folder itself, sensitivity/ (or its run subfolders), then the manifest's pointer."""
    run = tmp_path / "run"
    run.mkdir()
    assert sensitivity_folders(run, None) == []
    (run / "psense.csv").write_text("variable,prior\nx,0.1\n")
    (run / "sensitivity" / "20260101-a").mkdir(parents=True)
    (run / "sensitivity" / "20260101-a" / "sensitivity.png").write_bytes(b"")
    (run / "sensitivity" / "empty").mkdir()
    elsewhere = tmp_path / "sens-elsewhere"
    elsewhere.mkdir()
    (elsewhere / "sensitivity.csv").write_text("prior_set,mean\ndefault,0.1\n")
    for pointer in ("../sens-elsewhere", ["../sens-elsewhere"], {"folder": str(elsewhere)}):
        found = sensitivity_folders(run, {"sensitivity": pointer})
        assert [f.resolve() for f in found] == [
            run.resolve(), (run / "sensitivity" / "20260101-a").resolve(), elsewhere.resolve()]
        assert found[1] == run / "sensitivity" / "20260101-a"
    # a sensitivity/ symlink to a sensitivity run keeps its name in the report
    (run / "sensitivity" / "20260101-a" / "sensitivity.png").unlink()
    (run / "sensitivity" / "link").symlink_to(elsewhere)
    assert sensitivity_folders(run, None) == [run, run / "sensitivity" / "link"]


@pytest.mark.parametrize("manifest", [
    {"command": "mediate", "seed": 1, "data": {"path": "m.csv", "format": "csv",
                                               "fingerprint": "x", "n_rows": 10}},
    {"command": "psm", "seed": 1, "synthetic": False, "spec": {"name": "propensity_logit"},
     "data": {"path": "p.csv", "format": "csv", "fingerprint": "y", "n_rows": 10}},
])
def test_report_without_spec_thresholds_uses_defaults(tmp_path, manifest):
    """mediate writes no spec to the manifest; the thresholds fall back to the defaults."""
    folder = tmp_path / "r"
    folder.mkdir()
    estimates.write_csv(_estimates("mediate"), folder / "estimates.csv")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    rep = collect(folder)
    assert rep.thresholds == {"max_r_hat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400,
                              "max_divergences": 0}
    assert not rep.synthetic and rep.n_not_converged == 1 and rep.n_bayes == 3
    paths = write_report(folder)
    assert 'id="synthetic-notice"' not in paths["report_html"].read_text()


def test_report_command_rejects_a_folder_that_is_not_a_run(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2
    assert "no manifest.json, estimates.csv or sensitivity" in res.output
    (tmp_path / "estimates.csv").write_text("a,b\n1,2\n")
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "not a bayes_pool estimates table" in res.output
    assert not (tmp_path / "report.html").exists()


def test_chromium_missing_fails_with_setup_hint(monkeypatch):
    """The browser fixture fails (not skips) with the set-up command when chromium is absent."""
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(pytest.fail.Exception, match="scripts/install-chromium"):
        _require_chromium()


def test_thresholds_from_the_manifest_convergence_record(tmp_path):
    """Command-line overrides recorded in the manifest decide the reasons shown."""
    folder = tmp_path / "r"
    folder.mkdir()
    estimates.write_csv(_estimates("did"), folder / "estimates.csv")
    (folder / "manifest.json").write_text(json.dumps({
        "command": "did", "spec": {"convergence": {"max_r_hat": 1.01, "min_ess_bulk": 400,
                                                   "min_ess_tail": 400, "max_divergences": 0}},
        "convergence": {"thresholds": {"max_r_hat": 1.05, "min_ess_bulk": 100,
                                       "min_ess_tail": 100, "max_divergences": 0},
                        "overridden": ["max_r_hat", "min_ess_bulk", "min_ess_tail"]}}))
    rep = collect(folder)
    assert rep.thresholds["max_r_hat"] == 1.05 and rep.thresholds["min_ess_bulk"] == 100
    (bad,) = [row for row, f in zip(rep.convergence.rows, rep.convergence.flagged) if f]
    assert bad[-1] == ("NOT CONVERGED: R-hat 1.080 > 1.05; ESS bulk 55 < 100; ESS tail 70 < 100; "
                       "3 divergences")
