"""Entry point of the ``surmesure`` command.

Commands load on demand: ``surmesure --help`` lists them from :data:`COMMANDS` without
importing any, and ``surmesure status`` imports the modules of ``status`` only, so a call pays
for the libraries its own command uses (the store, the models, the plots) and nothing else.
While a server owns the embedded store file, a command runs in that server instead
(:mod:`surmesure.cli.remote`).
:data:`COMMANDS` names, for each command, the modules that register it and its one-line help
(a test holds it equal to what the modules register).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True, slots=True)
class Entry:
    """A command: the modules whose ``register(app)`` adds it, and its one-line help."""

    modules: tuple[str, ...]
    help: str


def _entry(help: str, *modules: str) -> Entry:
    return Entry(tuple(f"surmesure.cli.{m}" for m in modules), help)


COMMANDS: dict[str, Entry] = {
    "import": _entry("Import a file of customers, orders, products, ... or events.", "imports"),
    "status": _entry("Report what the store holds.", "status"),
    "serve": _entry("Serve the HTTP API (Segment-compatible collection).", "serve"),
    "generate": _entry("Write a seeded retail world as files ready to import.", "generate"),
    "demo": _entry("Generate the demo world, import it, and show what was built.", "demo"),
    "derive": _entry("Compute RFM, CLV, engagement and satisfaction for every person.", "derive"),
    "kpi": _entry(
        "Retention and value KPIs: cohort retention, repeat rate, average basket, revenue per",
        "derive",
    ),
    "report": _entry(
        "A self-contained HTML page of the latest derive run: headline KPIs, RFM grid, CLV",
        "derive",
    ),
    "recommend": _entry("Stock-aware product recommendations, each with its reason.", "recommend"),
    "render": _entry("Render TEMPLATE for one person and explain every choice.", "render"),
    "db": _entry("Database schema: migrate to the latest revision.", "db"),
    "quarantine": _entry("Records refused at collection: list, show, replay.", "quarantine"),
    "person": _entry("One person: find, show, export, erase, unmerge.", "person"),
    "experiment": _entry(
        "Experiments: define, assign, analyze and read results.",
        "experiment",
        "experiments_store",
    ),
    "uplift": _entry("Uplift: whom a treatment moves, and whom to treat.", "uplift"),
    "segment": _entry(
        "Segments: named, versioned definitions of who belongs (YAML or JSON files).", "segment"
    ),
    "export": _entry("Export data from the store.", "derive"),
    "page": _entry("Personal micro-site pages.", "render"),
    "video": _entry("Personalized videos.", "video"),
    "key": _entry("API keys: create, list, revoke; reseal stored traits.", "keys"),
    "user": _entry("Console users: create, list, disable.", "users"),
    "audit": _entry("The audit log of personal-data reads and changes.", "keys"),
    "retention": _entry("Retention of personal data.", "retention"),
    "campaign": _entry(
        "Campaigns: validate, save, preview, send and follow them (YAML or JSON files).",
        "campaign",
    ),
    "journey": _entry(
        "Journeys: validate, publish, follow and simulate them; run their worker.", "journey"
    ),
    "dispatch": _entry(
        "Changes handed on to the later stages: workers, drain, status.", "dispatch"
    ),
}


def load(name: str) -> Any:
    """The command ``name`` as its modules register it (imports them)."""
    scratch = typer.Typer()

    @scratch.callback()
    def _group() -> None:  # a callback keeps a lone command inside a group
        pass

    for module in COMMANDS[name].modules:
        importlib.import_module(module).register(scratch)
    group = typer.main.get_command(scratch)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


class _Deferred(TyperCommand):
    """A command known by its name and help until it runs: then its modules load."""

    def __init__(self, name: str) -> None:
        super().__init__(name, help=COMMANDS[name].help, short_help=COMMANDS[name].help)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,
        **extra: Any,
    ) -> Any:
        assert self.name is not None
        from surmesure.cli import remote

        owner = remote.owner_of_store(self.name, args)
        if owner is not None:
            argv = [self.name, *args]
            forwarded = TyperCommand(
                self.name,
                callback=lambda: remote.forward(owner, argv),
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
                add_help_option=False,
            )
            return forwarded.make_context(info_name, list(args), parent=parent, **extra)
        return load(self.name).make_context(info_name, args, parent=parent, **extra)


class LazyGroup(TyperGroup):
    """The top-level group: lists :data:`COMMANDS`, loads one when it is called."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        return _Deferred(cmd_name)


app = typer.Typer(
    name="surmesure",
    cls=LazyGroup,
    help="Personalization for relationship marketing: collect, unify, derive, segment, decide.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    """Personalization for relationship marketing: collect, unify, derive, segment, decide."""


if __name__ == "__main__":
    app()
