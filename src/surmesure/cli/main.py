"""Entry point of the ``surmesure`` command."""

from __future__ import annotations

import typer

from surmesure.cli import (
    db,
    demo,
    derive,
    experiment,
    experiments_store,
    generate,
    imports,
    keys,
    person,
    quarantine,
    recommend,
    render,
    retention,
    segment,
    serve,
    status,
    uplift,
)

app = typer.Typer(
    name="surmesure",
    help="Personalization for relationship marketing: collect, unify, derive, segment, decide.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (
    db,
    imports,
    quarantine,
    person,
    status,
    serve,
    generate,
    demo,
    experiment,
    experiments_store,
    uplift,
    segment,
    derive,
    recommend,
    render,
    keys,
    retention,
):
    module.register(app)


if __name__ == "__main__":
    app()
