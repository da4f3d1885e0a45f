"""``surmesure person show|export|erase|unmerge``: one person, seen, exported, erased, split."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.domain.traits import DEFAULT_MIN_RELIABILITY
from surmesure.protect import audit
from surmesure.protect.erase import erase_person
from surmesure.protect.export import export_person
from surmesure.unify.profile import Profile, show
from surmesure.unify.search import search
from surmesure.unify.unmerge import unmerge

REF_HELP = "A person id, or kind:value (e.g. email:marie@example.com, customer_id:C42)."


def _text(value: Any) -> str:
    """A stored value as table text: shown as written, never read as Rich markup."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return escape(orjson.dumps(value, default=str).decode())
    return escape(str(value))


def _usable(trait: dict[str, Any]) -> str:
    """Whether templates use the value at their default threshold, and until when."""
    until: datetime | None = trait["usable_until"]
    if until is None:
        return f"no (below {DEFAULT_MIN_RELIABILITY:.2f})"
    if trait["effective_reliability"] < DEFAULT_MIN_RELIABILITY:
        return f"no (below {DEFAULT_MIN_RELIABILITY:.2f} since {until:%Y-%m-%d})"
    return f"until {until:%Y-%m-%d}"


def _print_profile(profile: Profile) -> None:
    nodes = ", ".join(map(str, profile.nodes))
    console.print(f"[bold]person {profile.person_id}[/] (nodes {nodes})")
    idents = Table(title="identifiers")
    for column in ("kind", "value", "node", "source", "first seen", "held"):
        idents.add_column(column, overflow="fold")
    for row in profile.identifiers:
        idents.add_row(
            row["kind"],
            _text(row["value"]),
            str(row["node_id"]),
            _text(row["source"]),
            _text(row["first_seen_at"]),
            "by claim only" if row.get("claimed") else "",
        )
    console.print(idents)
    traits = Table(title="traits (resolved by reliability and recency)")
    columns = ("trait", "value", "source", "reliability", "effective", "observed", "in templates")
    for column in (*columns, "competing"):
        traits.add_column(column, overflow="fold")
    for t in profile.traits:
        competing = "; ".join(
            f"{_text(c['value'])} ({_text(c['source'])}, {c['effective_reliability']:.2f})"
            for c in t["competing"]
        )
        traits.add_row(
            t["name"],
            _text(t["value"]),
            _text(t["source"]),
            f"{t['reliability']:.2f}",
            f"{t['effective_reliability']:.2f}",
            _text(t["observed_at"]),
            _usable(t),
            competing,
        )
    console.print(traits)
    merges = Table(title="merge history")
    for column in ("merge", "survivor", "absorbed", "via", "why", "merged at", "undone at"):
        merges.add_column(column, overflow="fold")
    for m in profile.merges:
        via = (m["evidence"] or {}).get("via") or {}
        merges.add_row(
            str(m["merge_id"]),
            str(m["survivor_id"]),
            str(m["absorbed_id"]),
            _text(f"{via.get('kind', '')} {via.get('value', '')}".strip()),
            (m["evidence"] or {}).get("basis", ""),
            _text(m["merged_at"]),
            _text(m["undone_at"]),
        )
    console.print(merges)
    _print_claims("claims made (low-trust sources)", profile.claims, "claimant")
    _print_claims("pending claims by others on these identifiers", profile.claims_on, "claimant")
    counts = Table(title="activity", show_header=False)
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for name, value in profile.counts.items():
        counts.add_row(name.replace("_", " "), f"{value:,}")
    console.print(counts)
    consents = Table(title="consents in force")
    for column in ("purpose", "channel", "granted", "recorded at", "source"):
        consents.add_column(column)
    for c in profile.consents:
        consents.add_row(
            c["purpose"],
            c["channel"],
            "[green]yes[/]" if c["granted"] else "[red]no[/]",
            _text(c["recorded_at"]),
            c["source"],
        )
    console.print(consents)
    _print_preferences(profile.preferences)


def _print_preferences(preferences: dict[str, Any]) -> None:
    """Topics, frequency and pause in force, then every change with its evidence."""
    if not preferences:
        return
    now = preferences["in_force"]
    table = Table(title="marketing preferences in force", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for name, chosen in now["topics"].items():
        table.add_row(f"topic {_text(name)}", "[green]in[/]" if chosen else "[red]left[/]")
    table.add_row("frequency", now["frequency"].replace("_", " "))
    table.add_row("paused until", _text(now["paused_until"]) or "not paused")
    console.print(table)
    if not preferences["history"]:
        return
    history = Table(title="preference history")
    for column in ("recorded at", "kind", "topic", "value", "until", "source", "evidence"):
        history.add_column(column, overflow="fold")
    for p in preferences["history"]:
        history.add_row(
            _text(p["recorded_at"]),
            p["kind"],
            _text(p["name"]),
            _text(p["value"]),
            _text(p["until"]),
            _text(p["source"]),
            _text(p["evidence"]),
        )
    console.print(history)


def _print_claims(title: str, claims: list[dict[str, Any]], who: str) -> None:
    if not claims:
        return
    table = Table(title=title)
    for column in ("kind", "value", who, "source", "claimed at", "status", "why"):
        table.add_column(column, overflow="fold")
    for c in claims:
        table.add_row(
            c["kind"],
            _text(c["value"]),
            str(c["person_id"]),
            _text(c["source"]),
            _text(c["claimed_at"]),
            c["status"],
            _text(c["reason"]),
        )
    console.print(table)


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, value in counts.items():
        table.add_row(name, f"{value:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    p_app = typer.Typer(help="One person: find, show, export, erase, unmerge.")
    app.add_typer(p_app, name="person")

    @p_app.command("find")
    @user_errors
    def find_command(
        text: str = typer.Argument(
            ..., metavar="IDENTIFIER", help="Any identifier as typed, or a person id."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """Who an identifier of any kind names (e-mail, phone, customer id, card...)."""
        store = get_store()
        try:
            found = search(store, text)
            only = found[0].person_id if len(found) == 1 else None
            detail = {"found": len(found)}
            audit.record(store, audit.cli_actor(), "person.search", person_id=only, detail=detail)
        finally:
            store.dispose()
        if as_json:
            emit_json({"people": [{"person_id": m.person_id, "via": m.via} for m in found]})
            return
        if not found:
            console.print("Nobody is known by this identifier.")
        for m in found:
            console.print(f"person {m.person_id} (found by {', '.join(m.via)})")

    @p_app.command("show")
    @user_errors
    def show_command(
        ref: str = typer.Argument(..., metavar="REF", help=REF_HELP),
        as_json: bool = JsonOption,
    ) -> None:
        """Identifiers, resolved traits with their provenance, merges, activity and consent."""
        store = get_store()
        try:
            profile = show(store, ref)
            audit.record(store, audit.cli_actor(), "person.show", person_id=profile.person_id)
        finally:
            store.dispose()
        if as_json:
            emit_json(profile.to_dict())
        else:
            _print_profile(profile)

    @p_app.command("export")
    @user_errors
    def export_command(
        ref: str = typer.Argument(..., metavar="REF", help=REF_HELP),
        out: Path | None = typer.Option(None, "--out", help="Write the export to this file."),
        as_json: bool = JsonOption,
    ) -> None:
        """Everything held about a person, as JSON (to --out, or on stdout)."""
        store = get_store()
        try:
            export = export_person(store, ref, out=out)
            audit.record(
                store,
                audit.cli_actor(),
                "person.export",
                person_id=export.person_id,
                detail={"rows": sum(export.counts().values())},
            )
        finally:
            store.dispose()
        if out is None:
            emit_json(export.to_dict())
        elif as_json:
            emit_json({"person_id": export.person_id, "out": str(out), "rows": export.counts()})
        else:
            _print_counts(f"person {export.person_id} exported to {out}", export.counts())

    @p_app.command("erase")
    @user_errors
    def erase_command(
        ref: str = typer.Argument(..., metavar="REF", help=REF_HELP),
        yes: bool = typer.Option(False, "--yes", help="Confirm: erasure cannot be undone."),
        reason: str = typer.Option(
            "erasure requested", "--reason", help="Why, kept with the suppressed identifiers."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """Delete everything about a person, in one transaction (orders kept, detached), and
        suppress their identifiers so that no later event, import or replay brings them back."""
        store = get_store()
        try:
            erasure = erase_person(store, ref, confirmed=yes, reason=reason)
            audit.record(
                store,
                audit.cli_actor(),
                "person.erase",
                person_id=erasure.person_id,
                detail={"deleted": sum(erasure.deleted.values())},
            )
        finally:
            store.dispose()
        if as_json:
            emit_json(erasure.to_dict())
            return
        _print_counts(f"person {erasure.person_id} erased: rows deleted", erasure.deleted)
        if erasure.detached:
            _print_counts("rows kept, detached from the person", erasure.detached)
        for path, change in erasure.files.items():
            console.print(f"file {change}: {path}")
        console.print(
            f"{erasure.suppressed} identifier(s) suppressed: records carrying them are "
            "refused (reason erased) until a new consent re-admits them."
        )

    @p_app.command("unmerge")
    @user_errors
    def unmerge_command(
        ref: str = typer.Argument(..., metavar="REF", help=REF_HELP),
        merge_id: int = typer.Option(..., "--merge", help="The merge to undo (see `show`)."),
        as_json: bool = JsonOption,
    ) -> None:
        """Undo one merge: the absorbed side becomes a person again, never re-merged."""
        store = get_store()
        try:
            result = unmerge(store, ref, merge_id)
            audit.record(
                store,
                audit.cli_actor(),
                "person.unmerge",
                person_id=result.person_id,
                detail={"merge_id": merge_id, "absorbed_id": result.absorbed_id},
            )
        finally:
            store.dispose()
        if as_json:
            emit_json(result.to_dict())
            return
        console.print(
            f"Merge {result.merge_id} undone: person {result.absorbed_id} stands apart from "
            f"person {result.person_id} again (nodes {', '.join(map(str, result.restored_nodes))})."
        )
        _print_counts("rows moved back", {k: v for k, v in result.moved.items() if v})
