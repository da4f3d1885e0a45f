"""``surmesure demo``: generate the demo world, import all of it, and show what was built."""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from datetime import time as dtime
from importlib import resources
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import (
    JsonOption,
    console,
    emit_json,
    get_store,
    progress,
    user_errors,
)
from surmesure.cli.demo_journeys import journeys_demo, print_journeys
from surmesure.cli.demo_send import print_sent, send_demo
from surmesure.cli.demo_video import print_videos, videos_demo
from surmesure.cli.demo_web import print_web, web_demo
from surmesure.cli.generate import generate_with_progress, make_spec
from surmesure.collect.events import ingest_file
from surmesure.collect.importer import import_file
from surmesure.config import get_settings
from surmesure.derive.report import write_report
from surmesure.derive.run import derive
from surmesure.protect.keys import create_key
from surmesure.protect.users import create_user
from surmesure.store import Store
from surmesure.store.status import collect_status
from surmesure.world import (
    IMPORTS,
    MANIFEST,
    WEB_EVENTS,
    Spec,
    manifest_matches,
    read_manifest,
)
from surmesure.world.truth import checks
from surmesure.world.web import IDENTITY_SECRET

HELP = """Generate the demo world into --out (kept when its manifest.json already matches the
seed and size), import every file into the configured store (SURMESURE_DATABASE_URL) in
dependency order (stores, products, stock, customers from the crm first, orders, surveys,
e-mail, consents, then web events), and report what was built: people identified and
anonymous, merges, conflicts, quarantined records by reason, rows per table, seconds per step,
checked against the truth the manifest records. Then derive the metrics of every person at the
world's last day and write the HTML report to --out/report.html."""

TABLE_KEYS = (
    "identifiers", "traits", "orders", "order_lines", "returns", "products", "stores",
    "stock_rows", "survey_answers", "channel_activity", "consents", "events",
)  # fmt: skip


def run_imports(store: Store, folder: Path, quiet: bool) -> list[dict[str, Any]]:
    """Import every file of the world, then its web events; one step per file."""
    steps: list[dict[str, Any]] = []
    with progress(quiet=quiet) as bar:
        for item in IMPORTS:
            task = bar.add_task(f"import {item.kind} {item.file}", total=None)

            def on_progress(done: int, total: int, task: Any = task) -> None:
                bar.update(task, completed=done, total=total)

            result = import_file(
                store, item.kind, folder / item.file, source=item.source, on_progress=on_progress
            )
            steps.append(
                {
                    "step": f"import {item.file}",
                    "kind": item.kind,
                    "source": item.source,
                    **{
                        k: v
                        for k, v in result.to_dict().items()
                        if k not in ("path", "file_sha256", "mapping", "source", "kind")
                    },
                }
            )
        path = folder / WEB_EVENTS
        task = bar.add_task(f"import events {path.name}", total=None)

        def on_events(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        # the demo shop signs its logins: its web events verify with the demo's secret
        settings = get_settings().model_copy(update={"identity_secret": IDENTITY_SECRET})
        ingested = ingest_file(store, path, source="web", on_progress=on_events, settings=settings)
        steps.append({"step": f"import {path.name}", "kind": "events", "source": "web", **ingested})
    return steps


def run_derive(store: Store, spec: Spec, folder: Path, quiet: bool) -> dict[str, Any]:
    """Derive every person's metrics at the world's last day, fit and keep the recommendation
    model, then write the report."""
    from surmesure.decide.recommend.kept import fit_and_keep

    clock = time.perf_counter()
    with progress(quiet=quiet) as bar:
        task = bar.add_task("derive", total=None)
        result = derive(store, as_of=spec.end)
        bar.update(task, description="recommendation model")
        version, fitted = fit_and_keep(store)
        bar.update(task, description="report")
        written = write_report(store, folder / "report.html")
    return {
        "as_of": spec.end.isoformat(),
        "people": result.people,
        "objectors": result.objectors,
        "buyers": result.buyers,
        "segments": result.segments,
        "report": written.path,
        "figures": written.figures,
        "recommendation_model": {
            "version": version,
            "ranking": fitted["description"],
            "cpu_seconds": fitted["cpu_seconds"],
        },
        "seconds": round(time.perf_counter() - clock, 2),
    }


def summary(
    spec: Spec,
    folder: Path,
    manifest: dict[str, Any],
    generated: dict[str, Any],
    steps: list[dict[str, Any]],
    status: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    return {
        "folder": str(folder),
        "database": status["database"],
        "spec": {"customers": spec.customers, "seed": spec.seed, "months": spec.months},
        "generated": generated,
        "steps": steps,
        "people": {
            "total": status["people"],
            "identified": status["identified_people"],
            "contactable": status["contactable_people"],
            "anonymous": status["anonymous_people"],
        },
        "merges": status["merges"],
        "conflicts": sum(int(s.get("conflicts", 0) or 0) for s in steps),
        "quarantine": status["quarantine"],
        "tables": {k: status.get(k) for k in TABLE_KEYS},
        "truth": manifest["truth"],
        "checks": checks(manifest, status),
        "seconds": round(seconds, 2),
    }


def print_summary(report: dict[str, Any]) -> None:
    steps = Table(
        title=f"demo: {report['spec']['customers']:,} customers into {report['database']}"
    )
    for column in ("step", "rows", "accepted", "quarantined", "new people", "merges", "s"):
        steps.add_column(column, justify="left" if column == "step" else "right")
    gen = report["generated"]
    steps.add_row("generate" if gen["written"] else "generate (kept)", "", "", "", "", "",
                  f"{gen['seconds']:.1f}")  # fmt: skip
    for s in report["steps"]:
        steps.add_row(
            s["step"].removeprefix("import "),
            f"{s.get('rows_read', s.get('received', 0)):,}",
            f"{s.get('rows_accepted', s.get('accepted', 0)):,}",
            f"{s.get('rows_quarantined', s.get('quarantined', 0)):,}",
            f"{s.get('new_people', 0):,}",
            f"{s.get('merges', 0):,}",
            f"{s['seconds']:.1f}",
        )
    console.print(steps)
    people = Table(title="people", show_header=False)
    people.add_column("what")
    people.add_column("count", justify="right")
    for key, value in report["people"].items():
        people.add_row(key, f"{value:,}")
    people.add_row("merges", f"{report['merges']:,}")
    people.add_row("conflicts kept apart", f"{report['conflicts']:,}")
    console.print(people)
    tables = Table(title="rows per table", show_header=False)
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for key, value in report["tables"].items():
        tables.add_row(key, f"{value or 0:,}")
    console.print(tables)
    quarantine = report["quarantine"]
    reasons = Table(title=f"quarantined records: {quarantine['total']:,}")
    for column in ("kind", "field", "reason", "records"):
        reasons.add_column(column, justify="right" if column == "records" else "left")
    for item in quarantine["by_reason"]:
        reasons.add_row(
            item["kind"], escape(item["field"] or ""), escape(item["reason"]), f"{item['count']:,}"
        )
    console.print(reasons)
    verdicts = Table(title="checked against the truth")
    for column in ("check", "expected", "found", ""):
        verdicts.add_column(column, justify="left" if column == "check" else "right")
    for c in report["checks"]:
        mark = "[green]ok[/]" if c["ok"] else "[red]differs[/]"
        verdicts.add_row(c["what"], f"{c['expected']:,}", f"{c['found']:,}", mark)
    console.print(verdicts)
    console.print(f"Done in {report['seconds']:.1f} s. See [bold]surmesure status[/].")


KEYS_FILE = "keys.env"
DEMO_SCOPES = ("decide", "read", "admin")
MAPPINGS = "mappings"
SEGMENTS = "segments"


def write_examples(out: Path, kind: str) -> list[str]:
    """The files shipped with the demo (``surmesure.world.<kind>``), copied to ``out/<kind>``:
    mappings (the call centre's, and the value maps that fix the demo's refusals) and
    segments to try."""
    folder = out / kind
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    package = f"surmesure.world.{kind}"
    for item in sorted(resources.files(package).iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            (folder / item.name).write_text(item.read_text(encoding="utf-8"), encoding="utf-8")
            written.append(str(folder / item.name))
    return written


def demo_keys(store: Store, out: Path) -> dict[str, str]:
    """New keys for the demo, one per server-side scope, written to ``out/keys.env`` (readable
    by its owner only); earlier demo keys are revoked. The write key stays the development one,
    which may only collect."""
    keys = {
        scope: create_key(store, f"demo-{scope}", [scope], replace=True)[0] for scope in DEMO_SCOPES
    }
    path = out / KEYS_FILE
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    lines = [f"SURMESURE_DEMO_{scope.upper()}_KEY={key}" for scope, key in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return keys


DEMO_USER = "admin@demo.surmesure.example"


def demo_user(store: Store, out: Path) -> tuple[str, str]:
    """The demo's console admin, with a new random password each run (never a published one),
    appended to ``out/keys.env``: ``(e-mail, password)``."""
    password = secrets.token_urlsafe(12)
    create_user(store, DEMO_USER, password, "admin", replace=True)
    path = out / KEYS_FILE
    with path.open("a") as keys:
        keys.write(f"SURMESURE_DEMO_CONSOLE_EMAIL={DEMO_USER}\n")
        keys.write(f"SURMESURE_DEMO_CONSOLE_PASSWORD={password}\n")
    return DEMO_USER, password


def print_keys(keys: dict[str, str], out: Path) -> None:
    console.print(
        "Serve it: [bold]surmesure serve --dev[/] (the write key [bold]dev-write-key[/] may "
        f"only collect). Keys for the other scopes, also in {out / KEYS_FILE}:"
    )
    for scope, key in keys.items():
        console.print(f"  {scope:<7} {key}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    @app.command(
        "demo", help=HELP, short_help="Generate the demo world, import it, and show what was built."
    )
    @user_errors
    def demo_command(
        customers: int = typer.Option(50_000, "--customers", help="True customers."),
        out: Path = typer.Option(Path("demo"), "--out", help="Folder of the demo files."),
        seed: int = typer.Option(7, "--seed", help="Random seed; same seed, same files."),
        months: int = typer.Option(15, "--months", help="Months of history (12 to 60)."),
        send: bool = typer.Option(
            True, "--send/--no-send", help="End with a campaign on every channel, to local servers."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        clock = time.perf_counter()
        spec = make_spec(customers, seed, months, None)
        if manifest_matches(out, spec):
            manifest = read_manifest(out)
            generated = {"written": False, "seconds": 0.0}
        else:
            manifest = generate_with_progress(spec, out, quiet=as_json)
            generated = {"written": True, "seconds": manifest["seconds"]}
        assert manifest is not None, f"{out / MANIFEST} is missing"
        store = get_store()
        try:
            steps = run_imports(store, out, quiet=as_json)
            status = collect_status(store)
            derived = run_derive(store, spec, out, quiet=as_json)
            keys = demo_keys(store, out)
            sign_in = demo_user(store, out)
            shop = web_demo(store, out, KEYS_FILE)
            sent = send_demo(store, out, datetime.combine(spec.end, dtime(10))) if send else None
            journeys = journeys_demo(store, out, datetime.combine(spec.end, dtime(10)))
            videos = videos_demo(store, out, datetime.combine(spec.end, dtime(10)))
        finally:
            store.dispose()
        report = summary(spec, out, manifest, generated, steps, status, time.perf_counter() - clock)
        report["derive"] = derived
        report["keys"] = {"file": str(out / KEYS_FILE), "scopes": sorted([*keys, "web"])}
        report["shop"] = shop
        report["console"] = {"file": str(out / KEYS_FILE), "email": sign_in[0], "role": "admin"}
        report["mappings"] = write_examples(out, MAPPINGS)
        report["segment_files"] = write_examples(out, SEGMENTS)
        if sent is not None:
            report["campaign"] = sent
        report["journeys"] = journeys
        report["videos"] = videos
        if as_json:
            emit_json(report)
        else:
            print_summary(report)
            console.print(
                f"Derived {derived['people']:,} people in {derived['seconds']:.1f} s "
                f"({derived['objectors']:,} left out: they object to profiling). "
                f"Report: [bold]{derived['report']}[/]"
            )
            fitted = derived["recommendation_model"]
            console.print(
                f"Recommendation model version {fitted['version']} kept "
                f"({fitted['cpu_seconds']:.1f} s of processor time): {fitted['ranking']}"
            )
            print_keys(keys, out)
            print_web(shop)
            console.print(
                "Console: [bold]surmesure serve --dev[/], then open "
                "[bold]http://127.0.0.1:8080/console/[/] and sign in as "
                f"[bold]{sign_in[0]}[/] with the password [bold]{sign_in[1]}[/] "
                f"(also in {escape(str(out / KEYS_FILE))}; more users: surmesure user create)"
            )
            fix = escape(str(out / MAPPINGS / "fix_customers.yaml"))
            console.print(
                f"Mappings (the call centre's, and fixes for the refused values) in "
                f"{escape(str(out / MAPPINGS))}: e.g. [bold]surmesure quarantine replay "
                f"--kind customers --mapping {fix}[/]"
            )
            if sent is not None:
                print_sent(sent)
            print_journeys(journeys)
            print_videos(videos)
            lyon = escape(str(out / SEGMENTS / "lyon_loyal.yaml"))
            console.print(
                f"Segments to try in {escape(str(out / SEGMENTS))}: e.g. [bold]surmesure segment "
                f"size {lyon} --explain[/]"
            )
