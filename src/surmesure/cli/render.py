"""``surmesure render TEMPLATE --person ID``, ``surmesure page link|preferences --person ID``.

``render`` shows what one person would receive from a template and why (variant, fields used
and their source, fields fallen back and the reason); nothing is recorded. ``page link`` prints
the signed, expiring URL of a person's page.
"""

from __future__ import annotations

from datetime import datetime

import typer
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.clock import utcnow
from surmesure.config import get_settings
from surmesure.decide.audience import load_audience
from surmesure.decide.content import render
from surmesure.decide.library import library_for
from surmesure.decide.pages import link
from surmesure.decide.personal import DEFAULT_PRODUCTS, default_recommender, personal
from surmesure.protect import audit
from surmesure.segment.repository import catalog as segment_catalog
from surmesure.unify.profile import find_person

PERSON_HELP = "A person id, or kind:value (e.g. customer_id:C42)."
page_app = typer.Typer(help="Personal micro-site pages.", no_args_is_help=True)


@user_errors
def render_command(
    template: str = typer.Argument(..., help="A template name, or the path of a YAML file."),
    person: str = typer.Option(..., "--person", help=PERSON_HELP),
    locale: str | None = typer.Option(None, "--locale", help="Locale (default: the template's)."),
    at: datetime | None = typer.Option(None, "--at", help="Render as of this UTC time."),
    as_json: bool = JsonOption,
) -> None:
    """Render TEMPLATE for one person and explain every choice."""
    settings = get_settings()
    compiled = library_for(get_settings()).named(template)
    now = at or utcnow()
    store = get_store()
    try:
        with store.connect() as conn:
            person_id = find_person(conn, person).person_id
            audience = load_audience(
                conn,
                person_id,
                now,
                settings.trait_half_life_days,
                needs=compiled.needs,
                channel=compiled.definition.channel,
                metrics=compiled.field_metrics,
            )
            # the context and products a decision or a campaign would give (one path)
            found = personal(
                store,
                conn,
                audience,
                now,
                {"channel": compiled.definition.channel},
                k=DEFAULT_PRODUCTS if compiled.reads_products else 0,
                recommender=default_recommender(),
                as_of=at,
            )
            catalog = segment_catalog(conn) if "segment" in compiled.needs else {}
        audit.record(
            store, audit.cli_actor(), "render", person_id=person_id, detail={"template": template}
        )
    finally:
        store.dispose()
    out = render(
        compiled,
        audience,
        now=now,
        context=found.context,
        products=found.products,
        catalog=catalog,
        locale=locale,
        time_limit_s=settings.template_time_limit_ms / 1000,
    )
    if as_json:
        emit_json(
            {
                "person_id": person_id,
                "template": out.template,
                "variant": out.variant,
                "subject": out.subject,
                "body": out.body,
                "products": found.products,
                "explanation": out.explanation | {"products": found.products_note},
            }
        )
        return
    why = out.explanation["variant"]["reason"]
    console.print(f"[bold]{out.template}[/] for person {person_id}: variant [bold]{out.variant}[/]")
    console.print(f"  because {why}")
    if out.subject:
        console.print(f"[bold]subject:[/] {out.subject}")
    console.print(out.body, markup=False)
    table = Table(title="fields")
    for column in ("field", "reads", "used", "source", "reliability", "threshold", "reason"):
        table.add_column(column)
    for f in out.explanation["fields"]:
        reliability = f.get("effective_reliability")
        table.add_row(
            f["field"],
            f"trait {f['trait']}" if "trait" in f else f"metric {f['metric']}",
            "yes" if f["used"] else "no (fallback)",
            f.get("source", ""),
            "" if reliability is None else f"{reliability:.2f}",
            f"{f['threshold']:.2f}",
            f.get("reason", ""),
        )
    console.print(table)


@page_app.command("link")
@user_errors
def page_link(
    person: str = typer.Option(..., "--person", help=PERSON_HELP),
    days: int = typer.Option(30, "--days", help="Days the link stays valid."),
) -> None:
    """Print the signed URL of a person's page (it carries no personal data)."""
    store = get_store()
    try:
        with store.connect() as conn:
            person_id = find_person(conn, person).person_id
        url = link(person_id, days=days, now=utcnow(), settings=get_settings())
        audit.record(
            store, audit.cli_actor(), "page.link", person_id=person_id, detail={"days": days}
        )
    finally:
        store.dispose()
    typer.echo(url)


@page_app.command("preferences")
@user_errors
def preferences_link(
    person: str = typer.Option(..., "--person", help=PERSON_HELP),
    days: int = typer.Option(90, "--days", help="Days the link stays valid."),
) -> None:
    """Print the signed URL of a person's preference centre (it carries no personal data)."""
    from surmesure.protect import preferences

    store = get_store()
    try:
        with store.connect() as conn:
            person_id = find_person(conn, person).person_id
        url = preferences.link(person_id, days=days, now=utcnow(), settings=get_settings())
        audit.record(
            store, audit.cli_actor(), "preferences.link", person_id=person_id, detail={"days": days}
        )
    finally:
        store.dispose()
    typer.echo(url)


def register(app: typer.Typer) -> None:
    app.command("render")(render_command)
    app.add_typer(page_app, name="page")
