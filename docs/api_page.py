"""Write docs/api.md from the docstrings of the public API: ``python docs/api_page.py``.

``tests/test_api.py`` checks that docs/api.md is what this script writes, so the page cannot
fall behind the code.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

PAGE = Path(__file__).with_name("api.md")


def _doc(obj) -> str:
    """The docstring as Markdown: a numpydoc section (``Parameters`` over dashes) becomes a
    bold heading and a list, one item per name with its description joined to it."""
    lines, out, section = inspect.cleandoc(obj.__doc__ or "").splitlines(), [], False
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1]) and line.strip():
            out += [f"**{line.strip()}**", ""]
            section = True
        elif re.fullmatch(r"-{3,}", line):
            continue
        elif section and line and not line.startswith(" "):
            out.append(f"- `{line.split(' : ')[0]}`" + (f" ({line.split(' : ', 1)[1]})"
                                                       if " : " in line else "") + ":")
        elif section and line.startswith(" "):
            out[-1] += " " + line.strip()
        else:
            section = section and bool(line)
            out.append(line)
    return "\n".join(out)


def _param(p: inspect.Parameter) -> str:
    """A parameter as the code writes it (the annotations are strings: postponed)."""
    text = p.name if p.annotation is inspect.Parameter.empty else f"{p.name}: {p.annotation}"
    if p.default is not inspect.Parameter.empty:
        text += f" = {p.default!r}" if p.annotation is not inspect.Parameter.empty \
            else f"={p.default!r}"
    return ("**" if p.kind is p.VAR_KEYWORD else "") + text


def _signature(name: str, obj, *, method: bool = False) -> str:
    """``name(...)`` in a code block, one parameter a line."""
    sig = inspect.signature(obj)
    out, star = [], False
    for p in list(sig.parameters.values())[1 if method else 0:]:
        if p.kind is p.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        out.append(_param(p))
    tail = "" if sig.return_annotation is inspect.Signature.empty \
        else f" -> {sig.return_annotation}"
    return "\n".join(["```python", f"{name}(", *(f"    {p}," for p in out), f"){tail}", "```"])


def page() -> str:
    """The Markdown page."""
    import bayes_pool as bp
    from bayes_pool import api, api_studies, estimates, results
    out = ["# Python API", "",
           "Written by `python docs/api_page.py` from the docstrings of `bayes_pool/api.py`, "
           "`bayes_pool/api_studies.py`, "
           "`bayes_pool/results.py` and `bayes_pool/estimates.py`. A worked example: "
           "`docs/quickstart.py`.", "", _doc(api), "", "## Analyses", ""]
    for name in ("did", "event_study", "staggered", "psm", "mediate", "sensitivity", "study",
                 "how_robust"):
        fn = getattr(bp, name)
        out += [f"### `bp.{name}`", "", _signature(f"bp.{name}", fn), "", _doc(fn), ""]
    out += ["### `bp.Study`", "", _doc(api_studies.Study), ""]
    for name in ("simulate", "run"):
        fn = getattr(api_studies.Study, name)
        out += [_signature(f"Study.{name}", fn, method=True), "", _doc(fn), ""]
    out += ["## Results", "", _doc(results), "", "### `bp.Result`", "", _doc(results.Result), ""]
    for name in ("tidy", "summary", "diagnostics", "plot"):
        fn = getattr(results.Result, name)
        out += [_signature(f"Result.{name}", fn, method=True), "", _doc(fn), ""]
    for name in ("idata", "facts"):
        out += [f"`Result.{name}`: {_doc(getattr(results.Result, name))}", ""]
    out += ["### `bp.EventStudyResult`", "", _doc(results.EventStudyResult), "",
            _signature("EventStudyResult.plot", results.EventStudyResult.plot, method=True), "",
            _doc(results.EventStudyResult.plot), "",
            "## Convergence from the diagnostic columns", ""]
    for name in ("meets", "converged", "rejudge"):
        fn = getattr(estimates, name)
        out += [_signature(f"bayes_pool.estimates.{name}", fn), "", _doc(fn), ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    PAGE.write_text(page())
