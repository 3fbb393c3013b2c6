"""The command-line shell: every command is wired, and --help renders for each one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from csg_interp.cli import COMMANDS, build_parser, main


def test_every_command_is_available():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == list(COMMANDS)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_renders(command, capsys):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: csg-interp")
    if command is None:
        for name in COMMANDS:
            assert name in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_expected_errors_are_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "csg_interp", "evaluate", str(tmp_path / "no-such-run")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("csg-interp evaluate: error:")
    assert "Traceback" not in result.stderr
