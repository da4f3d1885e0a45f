"""``surmesure segment``: save, validate, size, preview, overlap, refresh and discover
segments."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.common import (
    JsonOption,
    console,
    emit_json,
    err_console,
    get_store,
    progress,
    user_errors,
)
from surmesure.domain.segments import SegmentDefinition
from surmesure.errors import InvalidInput
from surmesure.ops.runs import recorded, refreshed_summary
from surmesure.protect import audit
from surmesure.segment import discover, membership, repository
from surmesure.segment.definitions import check_references, check_sealed, load_file
from surmesure.segment.reports import plot_centroids, plot_overlap, preview, values_of
from surmesure.store.engine import Store
from surmesure.store.span import present

# Help is read as Rich markup: a literal bracket is written \\[.
HELP = """Segments: named, versioned definitions of who belongs (YAML or JSON files).

A definition has a `name`, a `description` and one condition under `where`: trait, metric,
event, purchase, consent, near, segment, bucket, nested with all / any / not. Windows are
\\[now - within_days, now], both ends included, in UTC.
"""

ENGINES = ("store", "spark")
"""Where ``segment size``, ``preview`` and ``overlap`` evaluate membership: the store's SQL
(DuckDB or PostgreSQL; the SQLAlchemy compiler, fastest on the store: measured 4x faster than
the Ibis plan on the demo world) or Spark (the Ibis compiler, on ``SURMESURE_SPARK_MASTER``)."""

EngineOption = typer.Option(
    "store",
    "--engine",
    help="Where to evaluate membership: store (its own SQL, the default: fastest on one "
    "machine) or spark (a Spark session on SURMESURE_SPARK_MASTER, default local, reading "
    "the store's tables as Parquet; needs the spark extra and Java 17).",
)


def _engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InvalidInput(
            f"Option '--engine' has value {engine!r}. Not an engine.",
            hint="use --engine store or --engine spark",
            field="engine",
        )
    return engine


AtOption = typer.Option(
    None,
    "--at",
    formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
    help="Evaluate as of this UTC time (default: now, or the day after the latest order or "
    "event when the data ends before today).",
)


def _now(at: datetime | None) -> datetime:
    return at if at is not None else datetime.now(UTC).replace(tzinfo=None)


def _present(store: Store, at: datetime | None) -> datetime:
    """``at``, or the data's present (:func:`surmesure.store.span.present`), said on stderr
    when it is not now."""
    if at is not None:
        return at
    when, note = present(store, _now(None))
    if note is not None:
        err_console.print(f"[yellow]note:[/] {escape(note)}")
    return when


def _resolve(store: Store, ref: str) -> SegmentDefinition:
    """A file (checked against the saved segments) or the name of a saved segment."""
    path = Path(ref)
    with store.connect() as conn:
        if path.suffix in (".yaml", ".yml", ".json") or path.exists():
            definition = load_file(path)
            check_references(definition, repository.catalog(conn))
            check_sealed(definition, store.settings.sealed_traits)
            return definition
        return repository.get(conn, ref)


def _print_explain(name: str, everyone: int, steps: list[membership.Step], as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "name": name,
                "size": steps[-1].people,
                "people": everyone,
                "steps": [{"condition": s.condition, "people": s.people} for s in steps],
            }
        )
        return
    table = Table(title=f"{name}: people left after each condition")
    table.add_column("#", justify="right")
    table.add_column("condition", overflow="fold")
    table.add_column("people", justify="right")
    table.add_row("", "current people", f"{everyone:,}")
    for i, step in enumerate(steps, 1):
        text = escape(orjson.dumps(step.condition).decode())
        count = f"{step.people:,}" if step.people else "[bold red]0[/]"
        table.add_row(str(i), text, count)
    console.print(table)


def _print_size(name: str, count: int, as_json: bool) -> None:
    if as_json:
        emit_json({"name": name, "size": count})
    else:
        console.print(f"{name}: [bold]{count:,}[/] people")


def _size_on_spark(store: Store, definition: SegmentDefinition, now: datetime) -> int:
    from surmesure.segment import spark  # PySpark is loaded only for this engine

    with store.connect() as conn:
        catalog = repository.catalog(conn)
    return spark.size(store, definition, now, catalog)


def register(app: typer.Typer) -> None:
    segment = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(segment, name="segment")

    @segment.command("validate", help="Check a definition file; save nothing.")
    @user_errors
    def validate_command(file: Path, as_json: bool = JsonOption) -> None:
        store = get_store()
        definition = _resolve(store, str(file))
        # a saved segment too: a trait sealed since it was saved cannot be compared any more
        check_sealed(definition, store.settings.sealed_traits)
        if as_json:
            emit_json({"name": definition.name, "valid": True})
        else:
            console.print(f"[green]valid:[/] {definition.name}")

    @segment.command("save", help="Validate a definition file and save it as a new version.")
    @user_errors
    def save_command(file: Path, as_json: bool = JsonOption) -> None:
        store = get_store()
        saved = repository.save(store, load_file(file), _now(None))
        if as_json:
            emit_json({"name": saved.name, "version": saved.version, "changed": saved.changed})
        elif saved.changed:
            console.print(f"[green]saved[/] {saved.name} version {saved.version}")
        else:
            console.print(f"{saved.name} unchanged (version {saved.version})")

    @segment.command("size", help="How many people are in a segment (FILE or NAME).")
    @user_errors
    def size_command(
        ref: str,
        at: datetime | None = AtOption,
        explain: bool = typer.Option(
            False, "--explain", help="The count after each condition, in the order written."
        ),
        engine: str = EngineOption,
        as_json: bool = JsonOption,
    ) -> None:
        _engine(engine)
        store = get_store()
        definition = _resolve(store, ref)
        if engine == "spark":
            if explain:
                raise InvalidInput(
                    "Option '--explain' counts on the store only.",
                    hint="leave out --engine spark to explain a segment",
                    field="explain",
                )
            count = _size_on_spark(store, definition, _present(store, at))
            _print_size(definition.name, count, as_json)
            return
        if explain:
            _print_explain(
                definition.name,
                *membership.explain(store, definition, _present(store, at)),
                as_json,
            )
            return
        _print_size(
            definition.name, membership.size(store, definition, _present(store, at)), as_json
        )

    @segment.command("preview", help="A sample of members with the values that put them in.")
    @user_errors
    def preview_command(
        name: str,
        limit: int = typer.Option(20, "--limit", min=1, help="How many members to show."),
        at: datetime | None = AtOption,
        engine: str = EngineOption,
        as_json: bool = JsonOption,
    ) -> None:
        _engine(engine)
        store = get_store()
        with store.connect() as conn:
            catalog = repository.catalog(conn)
        definition = _resolve(store, name)
        now = _present(store, at)
        if engine == "spark":
            from surmesure.segment import spark

            ids = spark.sample(store, definition, now, catalog, limit)
            rows = values_of(store, definition, catalog, now, ids)
        else:
            rows = preview(store, definition, catalog, now, limit)
        audit.record(
            store,
            audit.cli_actor(),
            "segment.preview",
            detail={"segment": definition.name, "people": [r["person_id"] for r in rows]},
        )
        if as_json:
            emit_json({"name": definition.name, "members": rows})
            return
        table = Table(title=f"{definition.name}: first {len(rows)} members")
        columns = list(rows[0]) if rows else ["person_id"]
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if row[c] is None else escape(str(row[c])) for c in columns))
        console.print(table)

    @segment.command("overlap", help="Pairwise overlap of segments, as a table and a heatmap.")
    @user_errors
    def overlap_command(
        names: list[str],
        plot: Path | None = typer.Option(None, "--plot", help="Write a heatmap PNG here."),
        at: datetime | None = AtOption,
        engine: str = EngineOption,
        as_json: bool = JsonOption,
    ) -> None:
        _engine(engine)
        store = get_store()
        definitions = [_resolve(store, n) for n in names]
        labels = [d.name for d in definitions]
        now = _present(store, at)
        if engine == "spark":
            from surmesure.segment import spark

            with store.connect() as conn:
                catalog = repository.catalog(conn)
            matrix = spark.overlap(store, definitions, now, catalog)
        else:
            matrix = membership.overlap(store, definitions, now)
        if plot is not None:
            plot_overlap(labels, matrix, plot)
        if as_json:
            emit_json({"segments": labels, "overlap": matrix, "plot": plot})
            return
        table = Table(title="overlap (people in both)")
        table.add_column("")
        for label in labels:
            table.add_column(label, justify="right")
        for label, row in zip(labels, matrix, strict=True):
            table.add_row(label, *(f"{cell:,}" for cell in row))
        console.print(table)
        if plot is not None:
            console.print(f"heatmap: {plot}")

    @segment.command("refresh", help="Recompute memberships; record who entered and who left.")
    @user_errors
    def refresh_command(
        names: list[str] | None = typer.Argument(None, help="Segments (default: all)."),
        at: datetime | None = AtOption,
        as_json: bool = JsonOption,
    ) -> None:
        store = get_store()
        with store.connect() as conn:
            total = len(names) if names else len(repository.catalog(conn))
        when = _present(store, at)
        with (
            recorded(store, "segment_refresh", audit.cli_actor()) as run,
            progress(quiet=as_json) as bar,
        ):
            task = bar.add_task("refreshing segments", total=total)
            results = membership.refresh(
                store,
                names,
                when,
                on_done=lambda r: bar.update(task, advance=1, description=f"refreshed {r.name}"),
            )
            run.summary = refreshed_summary(results)
        if as_json:
            emit_json({"segments": [r.__dict__ for r in results]})
            return
        table = Table(title="refresh")
        for column in ("segment", "members", "entered", "exited"):
            table.add_column(column, justify="left" if column == "segment" else "right")
        for r in results:
            table.add_row(r.name, f"{r.members:,}", f"{r.entered:,}", f"{r.exited:,}")
        console.print(table)

    @segment.command("discover", help="Find segments by k-means on derived metrics.")
    @user_errors
    def discover_command(
        k: int | None = typer.Option(None, "--k", help="Clusters (default: best of 2..8)."),
        save: bool = typer.Option(False, "--save", help="Save the clusters as segments."),
        prefix: str = typer.Option("cluster", "--prefix", help="Segment names: PREFIX_0, ..."),
        plot: Path | None = typer.Option(None, "--plot", help="Write a centroid heatmap PNG."),
        as_json: bool = JsonOption,
    ) -> None:
        store = get_store()
        tries = len(discover.candidate_ks(k))
        with progress(quiet=as_json) as bar:
            task = bar.add_task("clustering", total=tries)
            found = discover.discover(
                store,
                k,
                prefix,
                on_fit=lambda c, score: bar.update(
                    task, advance=1, description=f"k = {c}: silhouette {score:.3f}"
                ),
            )
            bar.update(task, completed=tries, description=f"k = {found.k} chosen")
            moved: dict[str, int] = {}
            if save:
                saving = bar.add_task("saving segments", total=len(found.clusters))
                moved = discover.save(
                    store,
                    found,
                    _now(None),
                    prefix,
                    on_done=lambda name: bar.update(saving, advance=1, description=f"saved {name}"),
                )
        if plot is not None:
            rows = [[c.z[f] for f in found.features] for c in found.clusters]
            plot_centroids(
                [f"{c.name}: {c.label}" for c in found.clusters], found.features, rows, plot
            )
        if as_json:
            emit_json({**found.payload(), "saved": save, "changes": moved, "plot": plot})
            return
        table = Table(title=f"k = {found.k}, silhouette {found.silhouette:.3f}")
        for column in ("segment", "size", "what sets it apart"):
            table.add_column(column, justify="right" if column == "size" else "left")
        for c in found.clusters:
            table.add_row(c.name, f"{c.size:,}", c.label)
        console.print(table)
        if save:
            console.print(f"[green]saved[/] {len(found.clusters)} segments ({prefix}_*)")
        if plot is not None:
            console.print(f"heatmap: {plot}")
