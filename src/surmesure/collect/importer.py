"""File imports: read, map, validate, then store and unify, a chunk of records at a time.

``import_file`` is what ``surmesure import KIND FILE`` and the demo call. Everything that can
refuse the file as a whole (unknown kind, unreadable file, a mapping that does not fit) happens
before the first chunk is stored. The file is then streamed in chunks of ``chunk_rows``
records (:func:`surmesure.collect.files.read_chunks`); each chunk is mapped, validated and
stored in a transaction of its own: its valid records written idempotently, its refused ones
quarantined with their reason and row, so memory depends on the chunk and not on the file. The
run is recorded in ``import_runs`` once the last chunk is in. When it returns, the import is
committed.

Re-running an import (after it stopped half way, or twice) stores nothing twice: records are
keyed, quarantined rows known by place and content, and an order line's position in its order
is counted over the whole file (across chunks), so every run derives the same keys. A file
refused half way (an order in a currency without a rate) keeps the chunks stored before it.

Counts: ``rows_read = rows_accepted + rows_updated + rows_quarantined + rows_duplicate``, where
accepted records added rows, updated ones changed stored reference data (products, stock,
stores), duplicates were already stored as they are (or repeat a key of the same file) and
quarantined ones were refused. ``import_runs`` records accepted and updated together as
``rows_accepted``: the records that wrote something. Reference data repeated in two chunks is
written by the first and counted as updated (or a duplicate) by the second.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Connection

from surmesure.collect import quarantine
from surmesure.collect.files import CHUNK_ROWS, RawFile, read_chunks
from surmesure.collect.loaders import LOADERS, LoadContext, Loaded
from surmesure.collect.mapping import POSITION, Mapping, apply_mapping, resolve_mapping
from surmesure.collect.records import KINDS
from surmesure.collect.validate import Validation, validate
from surmesure.config import Settings
from surmesure.dispatch import dispatcher
from surmesure.errors import InvalidInput
from surmesure.protect import screening, suppression
from surmesure.store import schema
from surmesure.store.engine import Store


@dataclass
class ImportResult:
    """What one import did. ``written`` counts new rows by table; ``checked_per_row`` how many
    records the columnar validation sent to the model one by one."""

    run_id: int
    kind: str
    path: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    rows_duplicate: int
    new_people: int
    merges: int
    quarantined_by_reason: dict[str, int]
    seconds: float
    source: str = "import"
    mapping: str | None = None
    file_sha256: str = ""
    conflicts: int = 0
    checked_per_row: int = 0
    written: dict[str, int] = field(default_factory=dict)
    rows_updated: int = 0
    chunks: int = 0
    """Transactions the records were stored in, one a chunk of the file."""
    largest_chunk: int = 0
    """Rows read in the largest chunk (records and unreadable rows)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(
            f"Unknown import kind {kind!r}.",
            hint=f"use one of: {', '.join(KINDS)}",
            field="KIND",
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the steps, shared with the quarantine replay ----------------------------------------------


class LineCounter:
    """Lines seen so far per order over the chunks of one file, so that a line's derived
    position in its order does not depend on where the chunks end. DuckDB keeps the counts
    (one row per order) in a file of its own, removed at :meth:`close`, and at most
    :attr:`MEMORY` of them in memory: held in memory, the counts and their index grew by
    about 50 MB a million orders (the world of a million customers has two million)."""

    MEMORY = "32MB"

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="surmesure-lines-")
        self.con = duckdb.connect(
            str(Path(self._folder.name) / "counts.duckdb"),
            config={"memory_limit": self.MEMORY, "threads": "1"},
        )
        # no key: DuckDB holds a key's index whole in memory while it inserts (order ids land
        # all over it), and the two million orders of a million customers passed the limit;
        # a join with the chunk's orders spills to the file instead
        self.con.execute("CREATE TABLE seen (order_id VARCHAR, n BIGINT)")

    def settle(self) -> None:
        """Write the counts of the chunk just counted to the file, out of memory."""
        self.con.execute("CHECKPOINT")

    def close(self) -> None:
        self.con.close()
        self._folder.cleanup()


def with_line_numbers(
    mapped: pa.Table, given: list[int | None] | None = None, counter: LineCounter | None = None
) -> pa.Table:
    """Order lines with ``line_no``: the mapped value, else ``given`` (a replay), else the
    line's 1-based position within its order in file order (all lines of the file count,
    refused ones too, so a replayed line finds its own place; with a ``counter``, those of the
    chunks before too)."""
    con = counter.con if counter is not None else duckdb.connect()
    if counter is None:
        con.execute("CREATE TABLE seen (order_id VARCHAR, n BIGINT)")
    try:
        con.register("m", mapped.select([POSITION, "order_id"]))
        derived = (
            con.sql(
                f"SELECT CAST(CASE WHEN m.order_id IS NULL THEN NULL ELSE row_number() OVER "
                f"(PARTITION BY trim(m.order_id, ' ') ORDER BY {POSITION}) + coalesce(s.n, 0) "
                f"END AS BIGINT) AS n FROM m LEFT JOIN seen s ON s.order_id = trim(m.order_id, ' ')"
                f" ORDER BY {POSITION}"
            )
            .to_arrow_table()
            .column("n")
        )
        if counter is not None:
            chunk = (
                "(SELECT trim(order_id, ' ') AS order_id, count(*) AS n FROM m "
                "WHERE order_id IS NOT NULL GROUP BY 1) AS c"
            )
            con.execute(
                f"UPDATE seen SET n = seen.n + c.n FROM {chunk} WHERE seen.order_id = c.order_id"
            )
            con.execute(
                f"INSERT INTO seen SELECT c.order_id, c.n FROM {chunk} "
                "WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.order_id = c.order_id)"
            )
            counter.settle()
        con.unregister("m")
    finally:
        if counter is None:
            con.close()
    if given is not None:
        derived = pc.coalesce(pa.array(given, pa.int64()), derived)
    if "line_no" in mapped.column_names:
        column = mapped.column("line_no")
        if column.null_count == 0:
            return mapped
        merged = pc.coalesce(column.cast(pa.string()), derived.cast(pa.string()))
        return mapped.set_column(mapped.column_names.index("line_no"), "line_no", merged)
    return mapped.append_column("line_no", derived)


def map_records(
    table: pa.Table,
    kind: str,
    mapping: Mapping,
    *,
    origin: str,
    line_numbers: list[int | None] | None = None,
    counter: LineCounter | None = None,
) -> pa.Table:
    mapped = apply_mapping(table, mapping, kind, origin=origin)
    if kind == "orders":
        mapped = with_line_numbers(mapped, line_numbers, counter)
    return mapped


def rejected_items(
    raw: pa.Table,
    rows: pa.Array,
    mapped: pa.Table,
    validation: Validation,
    kind: str,
    mapping: Mapping,
) -> list[quarantine.Item]:
    """Quarantine items for the refused records: the raw record as read, its row, and for
    an order line whose position was derived, that position."""
    if not validation.rejections:
        return []
    positions = pa.array([r.pos for r in validation.rejections], pa.int64())
    payloads = raw.take(positions).to_pylist()
    numbers = rows.take(positions).to_pylist()
    derived = kind == "orders" and "line_no" not in mapping.columns
    line_nos = mapped.column("line_no").take(positions).to_pylist() if derived else None
    items = []
    for i, rejection in enumerate(validation.rejections):
        payload = payloads[i]
        if line_nos is not None and line_nos[i] is not None:
            payload[quarantine.LINE_NO] = line_nos[i]
        items.append(
            quarantine.Item(
                f"row {numbers[i]}", rejection.field, rejection.value, rejection.reason, payload
            )
        )
    return items


def load(
    store: Store,
    conn: Connection,
    kind: str,
    valid: pa.Table,
    rows: pa.Array,
    *,
    mapping: Mapping,
    source: str,
    origin: str,
    now: datetime,
    settings: Settings,
) -> Loaded:
    """Write the ``valid`` records, but for those carrying an erased identifier, which are
    left out and listed in ``Loaded.erased`` for the caller to quarantine."""
    numbers = rows.to_pylist()
    valid, erased = screening.screen_records(
        store, conn, kind, valid, key=settings.suppression_key, now=now
    )
    ctx = LoadContext(
        store=store,
        conn=conn,
        kind=kind,
        source=source,
        mapping=mapping,
        settings=settings,
        now=now,
        refs=lambda pos: f"{origin} row {numbers[pos]}",
    )
    try:
        loaded = LOADERS[kind](ctx, valid)
    finally:
        ctx.ddb.close()
    loaded.erased = erased
    return loaded


def erased_items(
    store: Store,
    conn: Connection,
    items: list[quarantine.Item],
    rejected: list[int],
    mapped: pa.Table,
    loaded: Loaded,
    rows: pa.Array,
    settings: Settings,
) -> list[quarantine.Item]:
    """``items`` (the refused records: unreadable rows, then those at the ``rejected``
    positions) with the ones carrying an erased identifier redacted, and the records ``load``
    left out for one."""
    erased = screening.screen_rejected(
        store,
        conn,
        mapped,
        rejected,
        key=settings.suppression_key,
        region=settings.default_country,
    )
    erased.update(loaded.erased)
    first = len(items) - len(rejected)
    region = settings.default_country
    named = [
        screening.text_identifiers(i.payload[quarantine.MALFORMED], region) for i in items[:first]
    ]
    found = suppression.erased_kinds(store, conn, named, key=settings.suppression_key)
    if not erased and not any(found):
        return items
    numbers = rows.to_pylist()
    out = [
        screening.refused_item(item.location, kinds) if kinds else item
        for item, kinds in zip(items[:first], found, strict=True)
    ]
    for pos, item in zip(rejected, items[first:], strict=True):
        kinds = erased.pop(pos, None)
        out.append(item if kinds is None else screening.refused_item(item.location, kinds))
    out += [screening.refused_item(f"row {numbers[p]}", k) for p, k in sorted(erased.items())]
    return out


def record_run(
    store: Store,
    conn: Connection,
    run_id: int,
    *,
    kind: str,
    path: str,
    sha256: str,
    mapping: Mapping,
    started_at: datetime,
    counts: tuple[int, int, int, int],
) -> None:
    read, accepted, quarantined, duplicate = counts
    store.bulk_insert(
        conn,
        schema.import_runs,
        pa.table(
            {
                "run_id": pa.array([run_id], pa.int64()),
                "kind": [kind],
                "path": [path],
                "file_sha256": [sha256],
                "mapping": [quarantine.payload_json(mapping.model_dump(mode="json"))],
                "started_at": pa.array([started_at], pa.timestamp("us")),
                "finished_at": pa.array([utcnow()], pa.timestamp("us")),
                "rows_read": pa.array([read], pa.int64()),
                "rows_accepted": pa.array([accepted], pa.int64()),
                "rows_quarantined": pa.array([quarantined], pa.int64()),
                "rows_duplicate": pa.array([duplicate], pa.int64()),
            }
        ),
    )


def effective_mapping(mapping: Mapping, source: str | None) -> Mapping:
    """The mapping with its source settled: ``source`` if given, else the mapping's, else
    ``"import"``. This is what ``import_runs`` records and what a replay reuses."""
    return mapping.model_copy(update={"source": source or mapping.source or "import"})


# -- the import ------------------------------------------------------------------------------------


def import_file(
    store: Store,
    kind: str,
    path: Path,
    *,
    mapping: Path | None = None,
    preset: str | None = None,
    source: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    settings: Settings | None = None,
    rates: dict[str, float] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Import the records of ``kind`` in ``path`` (CSV, CSV.GZ, Parquet or JSON Lines) with
    a mapping file or a preset (default: columns named as the fields), ``chunk_rows`` records
    a transaction. ``on_progress(done, total)`` is called after each chunk (see
    :attr:`RawFile.done`). ``settings``: those of the caller (default: the store's).
    ``rates`` add to the mapping's (orders in another currency than the store's, see
    :mod:`surmesure.collect.currency`)."""
    settings = settings or store.settings
    clock = time.perf_counter()
    started_at = utcnow()
    check_kind(kind)
    chosen = effective_mapping(resolve_mapping(mapping, preset), source)
    if rates:
        chosen = Mapping.model_validate({**chosen.model_dump(), "rates": {**chosen.rates, **rates}})
    chosen.check_kind(kind)
    origin = str(path.resolve())
    chunks = read_chunks(path, chunk_rows)
    sha256 = sha256_of(path)
    run = Run(kind=kind, origin=origin, mapping=chosen, now=started_at, settings=settings)
    counter = LineCounter() if kind == "orders" else None
    try:
        import_chunks(store, run, chunks, counter, on_progress)
    finally:
        if counter is not None:
            counter.close()
    assert run.run_id is not None  # (a file gives one chunk at least)
    loaded = run.loaded
    with store.begin() as conn:
        counts = (run.read, loaded.new + loaded.updated, run.quarantined, loaded.duplicate)
        record_run(
            store,
            conn,
            run.run_id,
            kind=kind,
            path=origin,
            sha256=sha256,
            mapping=chosen,
            started_at=started_at,
            counts=counts,
        )
    # the changes of this file reach the later stages before the command answers
    effects = dispatcher.settle(store, settings).get("segment_membership", 0)
    if effects:
        loaded.written["segment_changes"] = effects
    return ImportResult(
        run_id=run.run_id,
        kind=kind,
        path=origin,
        rows_read=run.read,
        rows_accepted=loaded.new,
        rows_quarantined=run.quarantined,
        rows_duplicate=loaded.duplicate,
        rows_updated=loaded.updated,
        new_people=loaded.new_people,
        merges=loaded.merges,
        quarantined_by_reason=dict(run.reasons.most_common()),
        seconds=round(time.perf_counter() - clock, 3),
        source=run.source,
        mapping=chosen.name,
        file_sha256=sha256,
        conflicts=loaded.conflicts,
        checked_per_row=run.checked_per_row,
        written=loaded.written,
        chunks=run.chunks,
        largest_chunk=run.largest_chunk,
    )


@dataclass
class Run:
    """One import under way: what it reads with, and its counts so far."""

    kind: str
    origin: str
    mapping: Mapping
    now: datetime
    settings: Settings
    run_id: int | None = None
    read: int = 0
    quarantined: int = 0
    checked_per_row: int = 0
    chunks: int = 0
    largest_chunk: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    loaded: Loaded = field(default_factory=Loaded)

    @property
    def source(self) -> str:
        return self.mapping.source or "import"


def import_chunks(
    store: Store,
    run: Run,
    chunks: Iterator[RawFile],
    counter: LineCounter | None,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Map and import each chunk of the file. A file of more than one chunk is measured by
    its first (the share of the file it read), and every table holding no more rows than the
    file has records has its secondary indexes made once at the end, not rewritten at each
    checkpoint (:meth:`Store.deferred_indexes`): the world of a million customers loads its
    traits, identifiers, orders and activity into empty tables."""
    first: RawFile | None = None
    with contextlib.ExitStack() as deferred:
        for raw in chunks:
            if run.chunks == 1 and first is not None:  # a second chunk: a file of several
                expected = run.read + raw.rows_read  # a file read ahead whole: two at least
                if 0 < first.done < first.total:
                    expected = max(expected, first.rows_read * first.total // first.done)
                deferred.enter_context(store.deferred_indexes(expected))
            mapped = map_records(
                raw.table, run.kind, run.mapping, origin=run.origin, counter=counter
            )
            if run.run_id is None:  # the mapping fits: the file is taken
                with store.begin() as conn:
                    run.run_id = store.next_ids(conn, schema.import_run_id_seq, 1)[0]
            import_chunk(store, run, raw, mapped)
            store.settle_bulk()
            first = first or raw
            if on_progress is not None:
                on_progress(raw.done, raw.total)


def import_chunk(store: Store, run: Run, raw: RawFile, mapped: pa.Table) -> None:
    """Validate, store and quarantine the records of one chunk, in one transaction."""
    kind, settings = run.kind, run.settings
    validation = validate(
        mapped, kind, timezone=run.mapping.timezone, region=settings.default_country
    )
    items = [
        quarantine.Item(f"row {m.row}", None, None, m.reason, {quarantine.MALFORMED: m.payload})
        for m in raw.malformed
    ] + rejected_items(raw.table, raw.rows, mapped, validation, kind, run.mapping)
    with store.begin() as conn:
        loaded = load(
            store,
            conn,
            kind,
            validation.table,
            raw.rows,
            mapping=run.mapping,
            source=run.source,
            origin=run.origin,
            now=run.now,
            settings=settings,
        )
        rejected = [r.pos for r in validation.rejections]
        items = erased_items(store, conn, items, rejected, mapped, loaded, raw.rows, settings)
        quarantine.add(
            store,
            conn,
            items,
            run_id=run.run_id,
            origin="import",
            kind=kind,
            source_name=run.origin,
            now=run.now,
        )
    run.read += raw.rows_read
    run.quarantined += len(items)
    run.reasons.update(i.reason for i in items)
    run.checked_per_row += validation.checked_per_row
    run.chunks += 1
    run.largest_chunk = max(run.largest_chunk, raw.rows_read)
    run.loaded.add(loaded)
