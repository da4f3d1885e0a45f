"""``surmesure recommend``: products for one person, or the top K of everyone to a file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.table import Table

from surmesure.cli.common import JsonOption, console, emit_json, get_store, progress, user_errors
from surmesure.decide.recommend.model import get_model
from surmesure.decide.recommend.service import recommend, recommend_all
from surmesure.errors import InvalidInput
from surmesure.protect import audit
from surmesure.store.people import bulk_audience
from surmesure.unify.profile import find_person

REF_HELP = "A person id, or kind:value (e.g. customer_id:C42)."
COLUMNS = ("person_id", "customer_id", "rank", "product_code", "score", "reason")


def parse_as_of(text: str | None) -> datetime | None:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 date-time, naive UTC."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    except ValueError as exc:
        raise InvalidInput(
            f"--as-of {text!r} is not a date.",
            hint="use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC)",
            field="--as-of",
        ) from exc


def _writer_for(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".parquet", ".csv"):
        if name.endswith(suffix):
            return suffix[1:]
    raise InvalidInput(
        f"Cannot tell the format of {path.name!r}.",
        hint="name the file *.parquet or *.csv",
        field="FILE",
    )


def register(app: typer.Typer) -> None:
    @app.command("recommend")
    @user_errors
    def recommend_cmd(
        file: Path | None = typer.Argument(None, help="With --all: output *.parquet or *.csv."),
        person: str | None = typer.Option(None, "--person", help=REF_HELP),
        everyone: bool = typer.Option(
            False, "--all", help="Every identified person (customer id, e-mail, phone, card)."
        ),
        anonymous: bool = typer.Option(
            False, "--anonymous", help="With --all: people known only by anonymous ids too."
        ),
        k: int = typer.Option(10, "--k", help="How many products per person."),
        as_of: str | None = typer.Option(
            None, "--as-of", help="Use only data before this date (replay)."
        ),
        fit: bool = typer.Option(
            False,
            "--fit",
            help="Fit the model (learned signals and ranker) on the data before --as-of "
            "(default: now) and keep it in the store for every process that recommends.",
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """Stock-aware product recommendations, each with its reason."""
        at = parse_as_of(as_of)
        if fit:
            if everyone or person is not None or file is not None:
                raise InvalidInput(
                    "--fit fits and keeps the model only.",
                    hint="run `surmesure recommend --fit`, then --person or --all",
                    field="--fit",
                )
            _fit(at, as_json)
            return
        if everyone == (person is not None):
            raise InvalidInput(
                "Say who to recommend for.",
                hint="use --person REF, or --all FILE",
                field="--person",
            )
        if anonymous and not everyone:
            raise InvalidInput(
                "--anonymous widens --all only.",
                hint="use --all --anonymous FILE",
                field="--anonymous",
            )
        if everyone:
            if file is None:
                raise InvalidInput(
                    "--all needs an output FILE.", hint="e.g. recos.parquet", field="FILE"
                )
            _write_all(file, k, at, as_json, anonymous)
            return
        assert person is not None
        store = get_store()
        with store.connect() as conn:
            who = find_person(conn, person)
            recs = recommend(store, who.person_id, k=k, as_of=at, conn=conn)
            ranking = get_model(store, conn, at).description
        audit.record(store, audit.cli_actor(), "recommend", person_id=who.person_id)
        if as_json:
            emit_json(
                {
                    "person_id": who.person_id, "as_of": at, "ranking": ranking,
                    "items": [r.__dict__ for r in recs],
                }
            )  # fmt: skip
            return
        table = Table(title=f"recommendations for person {who.person_id}", caption=ranking)
        for column in ("#", "product", "name", "category", "price", "score", "reason"):
            table.add_column(column, overflow="fold")
        for rank, r in enumerate(recs, 1):
            price = "" if r.price is None else f"{r.price:.2f}"
            table.add_row(
                str(rank),
                r.product_code,
                r.name or "",
                r.category or "",
                price,
                f"{r.score:.4f}",
                r.reason,
            )
        console.print(table)


def _fit(at: datetime | None, quiet: bool) -> None:
    from surmesure.decide.recommend.kept import fit_and_keep

    store = get_store()
    with progress(quiet) as bar:
        bar.add_task("fitting the recommendation model", total=None)
        version, fitted = fit_and_keep(store, at)
    audit.record(store, audit.cli_actor(), "recommend.fit", detail={"version": version})
    if quiet:
        emit_json(fitted)
        return
    console.print(
        f"kept recommendation model version {version}, fitted on the data before "
        f"{fitted['as_of']:%Y-%m-%d %H:%M} ({fitted['products']:,} products, "
        f"{fitted['people']:,} people) in {fitted['cpu_seconds']:.1f} s of processor time"
    )
    console.print(fitted["description"])


def _write_all(path: Path, k: int, at: datetime | None, quiet: bool, anonymous: bool) -> None:
    fmt = _writer_for(path)
    store = get_store()
    with store.connect() as conn:
        # every person with an identifier when anonymous ones are asked for
        wanted = None if anonymous else bulk_audience(store, conn).tolist()
    rows: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    people = 0
    with progress(quiet) as bar:
        task = bar.add_task("recommending", total=None)
        for pid, customer, recs in recommend_all(
            store,
            k=k,
            as_of=at,
            on_start=lambda n: bar.update(task, total=n),
            person_ids=wanted,
        ):
            people += 1
            for rank, r in enumerate(recs, 1):
                for column, value in zip(
                    COLUMNS, (pid, customer, rank, r.product_code, r.score, r.reason), strict=True
                ):
                    rows[column].append(value)
            bar.advance(task)
    schema = pa.schema(
        [
            ("person_id", pa.int64()),
            ("customer_id", pa.string()),
            ("rank", pa.int32()),
            ("product_code", pa.string()),
            ("score", pa.float64()),
            ("reason", pa.string()),
        ]
    )
    table = pa.table(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    audit.record(store, audit.cli_actor(), "recommend.export", detail={"people": people})
    ranking = get_model(store, None, at).description
    summary = {
        "file": str(path), "people": people, "rows": table.num_rows, "k": k, "as_of": at,
        "ranking": ranking,
    }  # fmt: skip
    if quiet:
        emit_json(summary)
    else:
        console.print(f"wrote {table.num_rows:,} recommendations for {people:,} people to {path}")
        console.print(ranking)
