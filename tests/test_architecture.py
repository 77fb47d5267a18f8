"""The import rules of ARCHITECTURE.md: the import-linter contracts in ``pyproject.toml`` hold,
they cover every top-level module, only the CLI chooses a matplotlib backend, the module
map names every module, and a module over 400 lines says why in its docstring.

Seconds, no fitting. ``lint-imports`` fails on an ``ignore_imports`` line that matches no
import, so the listed exceptions cannot outlive the arrows they excuse.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayes_pool"


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def _top_level_modules() -> set[str]:
    """Every module and package directly under ``bayes_pool`` (``templates`` holds no code)."""
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    return names


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")]))}  # this tree, not an installed copy
    done = subprocess.run([str(lint), "--no-cache", "--no-logo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    kept = re.search(r"Contracts: (\d+) kept, (\d+) broken", done.stdout)
    assert kept and kept.groups() == (str(len(_contracts())), "0"), done.stdout


def test_studies_contract_lists_every_module_but_studies():
    """The forbidden contract names its sources one by one; a new module must join them."""
    sources = {m.removeprefix("bayes_pool.") for m in _contracts()["studies"]["source_modules"]}
    assert sources == _top_level_modules() - {"studies"}


def test_layers_place_every_module_once():
    layered = [name.strip(" ()") for layer in _contracts()["layers"]["layers"]
               for name in re.split(r"[:|]", layer)]
    assert sorted(layered) == sorted(_top_level_modules())


MATPLOTLIB_USE = re.compile(r"\bmatplotlib\.use\(")
SETS_BACKEND_TODAY: set[str] = set()
"""Modules allowed to set a backend besides cli.py: none (figures draw on Figure objects
without pyplot, so a notebook keeps its inline backend)."""


def test_only_the_cli_sets_a_matplotlib_backend():
    setters = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if MATPLOTLIB_USE.search(p.read_text(encoding="utf-8"))}
    assert setters - {"cli.py"} - SETS_BACKEND_TODAY == set(), "a new module sets a backend"
    assert SETS_BACKEND_TODAY <= setters, "a listed module no longer sets one: drop it here"


def test_module_map_names_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^- `([\w/]+\.py)` -- ", text, flags=re.M))
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    assert listed == modules


MAX_LINES = 400
LONG_REASON = "Over 400 lines"


def test_modules_over_400_lines_say_why():
    """Issue 15: no module above 400 lines without a reason in its docstring, a paragraph
    starting "Over 400 lines" (split the module instead where no honest reason exists)."""
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if LONG_REASON not in doc:
                unexplained.append(str(path.relative_to(PACKAGE)))
    assert unexplained == []
