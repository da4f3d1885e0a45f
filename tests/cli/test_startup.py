"""The command loads on demand: ``--help`` lists every command with its help without importing
one, a command imports its own modules only, and the table the listing reads from says what the
modules register."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from surmesure.cli.main import COMMANDS, app, load

HEAVY = ("sqlalchemy", "duckdb", "numpy", "pyarrow", "sklearn", "scipy", "surmesure.store")


def _imported_by(*args: str) -> set[str]:
    """The heavy modules a fresh interpreter has imported after running the command."""
    code = (
        "import sys\n"
        "from surmesure.cli.main import app\n"
        f"try:\n    app({list(args)!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(eval(out.strip().splitlines()[-1]))


def test_the_table_says_what_the_modules_register() -> None:
    names: set[str] = set()
    for module in sorted({m for entry in COMMANDS.values() for m in entry.modules}):
        scratch = typer.Typer()

        @scratch.callback()
        def _group() -> None:
            pass

        importlib.import_module(module).register(scratch)
        group = typer.main.get_command(scratch)
        assert isinstance(group, TyperGroup)
        for name in group.commands:
            assert module in COMMANDS[name].modules, (name, module)
        names |= set(group.commands)
    assert names == set(COMMANDS)
    for name, entry in COMMANDS.items():
        command = load(name)
        assert (command.short_help or command.help or "").split("\n")[0] == entry.help


def test_help_imports_no_command_and_lists_them_all() -> None:
    assert _imported_by("--help") == set()
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in result.output


def test_a_command_runs_through_its_own_modules() -> None:
    assert "sklearn" not in _imported_by("key", "--help")
    result = CliRunner().invoke(app, ["experiment", "--help"])
    assert result.exit_code == 0
    for sub in ("analyze", "create", "assign", "results"):  # from its two modules
        assert sub in result.output
    assert CliRunner().invoke(app, ["nothing"]).exit_code == 2
