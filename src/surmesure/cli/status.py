"""``surmesure status``: what the store holds and how its scheduled jobs ran."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.config import get_settings
from surmesure.ops.runs import job_status
from surmesure.store.status import collect_status

SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "identity",
        [
            ("people", "people"),
            ("identified_people", "  identified (customer id)"),
            ("contactable_people", "  known by e-mail, phone or card only"),
            ("anonymous_people", "  anonymous (web ids only)"),
            ("identifiers", "identifiers"),
            ("merges", "merges"),
            ("merges_undone", "merges undone"),
            ("traits", "trait observations"),
            ("consents", "consent records"),
        ],
    ),
    (
        "commerce",
        [
            ("orders", "orders"),
            ("returns", "  returns"),
            ("anonymous_orders", "  anonymous orders"),
            ("order_lines", "order lines"),
            ("return_lines", "  return lines"),
            ("fee_lines", "  fee lines"),
            ("anonymous_order_lines", "  anonymous order lines"),
            ("sales_amount", "sales amount"),
            ("returned_amount", "returned amount"),
            ("first_order_at", "first order"),
            ("last_order_at", "last order"),
            ("products", "products"),
            ("stores", "stores"),
            ("stock_rows", "stock rows"),
        ],
    ),
    (
        "engagement",
        [
            ("events", "events"),
            ("channel_activity", "channel activity"),
            ("survey_answers", "survey answers"),
        ],
    ),
]


def _fmt(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "-" if value is None else str(value)


def print_status(status: dict[str, Any]) -> None:
    table = Table(title=f"surmesure store ({status['database']})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for title, rows in SECTIONS:
        table.add_row(f"[bold]{title}[/]", "")
        for key, label in rows:
            table.add_row(label, _fmt(status.get(key)))
    console.print(table)
    quarantine = status["quarantine"]
    if quarantine["total"]:
        reasons = Table(title=f"quarantined records: {quarantine['total']:,}")
        for column in ("kind", "field", "reason"):
            reasons.add_column(column)
        reasons.add_column("records", justify="right")
        for item in quarantine["by_reason"]:
            reasons.add_row(
                item["kind"],
                escape(item["field"] or ""),
                escape(item["reason"]),
                _fmt(item["count"]),
            )
        console.print(reasons)
    else:
        console.print("[green]No record in quarantine.[/]")
    print_jobs(status["jobs"])


def print_jobs(jobs: list[dict[str, Any]]) -> None:
    table = Table(title="scheduled jobs (UTC)")
    for column in ("job", "last run", "outcome", "next due"):
        table.add_column(column)
    for item in jobs:
        run = item["last_run"]
        if run is None:
            last, outcome = "never", ""
        else:
            last = f"{run['started_at']:%Y-%m-%d %H:%M:%S} by {run['actor']}"
            if run["ok"] is None:
                outcome = "[yellow]running or stopped[/]"
            else:
                mark = "[green]ok[/]" if run["ok"] else "[red]failed[/]"
                outcome = f"{mark}: {escape(run['summary'] or '')}"
        if item["next_due"] is not None:
            due = f"{item['next_due']:%Y-%m-%d %H:%M:%S}"
        else:
            due = "-" if item["schedule"] == "off" else "an interval after the server starts"
        table.add_row(f"{item['job']} ({item['schedule']})", last, outcome, due)
    console.print(table)


HELP = (
    "Report what the store holds: people, merges, orders, returns, fees, catalogue, events, "
    "answers, consents, quarantined records by reason, and the last run and next due time of "
    "each scheduled job (derive, segment refresh, retention)."
)


def register(app: typer.Typer) -> None:
    @app.command("status", help=HELP, short_help="Report what the store holds.")
    @user_errors
    def status_command(as_json: bool = JsonOption) -> None:
        store = get_store()
        try:
            status = collect_status(store)
            status["jobs"] = job_status(store, get_settings().schedule)
        finally:
            store.dispose()
        if as_json:
            emit_json(status)
        else:
            print_status(status)
