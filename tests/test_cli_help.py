"""`bayes-pool --help` texts: every command's help renders, and no sentence is broken where the
source happens to wrap its docstring (issue 15). Rendered at a width wide enough for any
paragraph, each paragraph of a command's docstring and each option's help must sit on one line."""

from __future__ import annotations

import inspect

import click
import pytest
import typer
from typer.testing import CliRunner

from bayes_pool.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "3000", "TERMINAL_WIDTH": "3000"}
GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)


def _lines(output: str) -> list[str]:
    """Rendered lines with the panels' box characters and repeated spaces removed."""
    return [" ".join(line.replace("│", " ").split()) for line in output.splitlines()]


def _paragraphs(doc: str) -> list[str]:
    return [" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n") if p.strip()]


def _on_one_line(text: str, lines: list[str]) -> bool:
    return any(text in line for line in lines)


def _help(*args: str) -> list[str]:
    res = runner.invoke(app, [*args, "--help"], env=WIDE)
    assert res.exit_code == 0, res.output
    return _lines(res.output)


def test_every_command_is_listed_with_its_summary_on_one_line():
    lines = _help()
    assert {"run", "did", "psm", "mediate", "rerun", "report", "sensitivity"} <= set(COMMANDS)
    for name in COMMANDS:
        summary = _paragraphs(GROUP.commands[name].callback.__doc__)[0]
        assert _on_one_line(f"{name} {summary}", lines), (name, summary)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help_keeps_each_paragraph_and_option_help_on_one_line(name):
    command = GROUP.commands[name]
    lines = _help(name)
    assert any(line.startswith("Usage:") and f" {name} " in f"{line} " for line in lines)
    for paragraph in _paragraphs(command.callback.__doc__):
        assert _on_one_line(paragraph, lines), (name, paragraph)
    for param in command.params:
        if isinstance(param, (click.Option, click.Argument)) and getattr(param, "help", None):
            assert "\n" not in param.help, (name, param.name)
            assert _on_one_line(" ".join(param.help.split()), lines), (name, param.name)
