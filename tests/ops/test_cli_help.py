"""Every `govhub … --help` screen says what the command does, and every argument says what it is."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from govhub.cli import build_parser, main


def _screens(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("govhub",)
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _screens(sub, (*path, name))


def test_every_help_screen_describes_its_command_and_every_argument() -> None:
    missing: list[str] = []
    screens = list(_screens(build_parser()))
    for command, parser in screens:
        if not (parser.description or "").strip():
            missing.append(f"{command}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{command}: {'/'.join(action.option_strings) or action.dest} has no help")
    assert len(screens) > 50
    assert not missing, "\n".join(missing)


def test_an_operator_finds_the_job_names_and_learns_that_nothing_has_run_yet(govhub: Callable[..., tuple[str, str]]) -> None:
    govhub("db", "upgrade")
    out, _ = govhub("jobs", "run")
    names = out.split()
    assert "exchange.sweep_overdue" in names and "calendar.next_year_check" in names
    assert names == sorted(names)

    out, err = govhub("jobs", "status")
    assert out == ""
    assert "no job has run yet" in err
    assert "calendar.next_year_check" in err  # named among those never run

    govhub("jobs", "run", "calendar.next_year_check")
    out, err = govhub("jobs", "status")
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["calendar.next_year_check"]
    assert "no job has run yet" not in err and "never run: " in err and "calendar.next_year_check" not in err


def test_catalog_import_says_which_options_cannot_be_combined(
    tmp_path: Path, govhub: Callable[..., tuple[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["catalog", "import", "--help"])
    screen = " ".join(capsys.readouterr().out.split())
    assert "--mode publish cannot be combined with --department" in screen

    govhub("db", "upgrade")
    sheet = tmp_path / "catalogue.csv"
    sheet.write_text("资源代码,资源名称\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="cannot be combined with --department"):
        govhub("catalog", "import", str(sheet), "--mode", "publish", "--department", "11110000000019357B")
