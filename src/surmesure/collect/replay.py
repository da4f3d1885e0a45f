"""Replaying quarantined import records, usually after fixing the mapping.

Open import records (of one run, one kind, or all) are grouped by run and file, rebuilt from
their payloads as the file had them, mapped (with the mapping given, else the one their run
used), validated and written exactly as an import would. Records that now pass are marked
``replayed`` (with ``replayed_at``); those that still fail stay ``open`` with the new reason.
A record carrying an erased identifier stays ``open`` with reason ``erased`` and its payload
redacted to the kinds that matched: it can never be replayed. The rows of the files that come
back from a campaign (call outcomes, returned letters) are read and recorded as their import
would (:mod:`surmesure.deliver.replays`), those posted over the API (origin ``api``) as well.
Each group is recorded in ``import_runs`` (path ``replay:<file>``). The whole replay is one
transaction.
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from surmesure.collect import quarantine
from surmesure.collect.files import table_from_records
from surmesure.collect.importer import (
    check_kind,
    effective_mapping,
    load,
    map_records,
    record_run,
    utcnow,
)
from surmesure.collect.mapping import Mapping, mapping_from_dict, resolve_mapping
from surmesure.collect.records import KINDS
from surmesure.collect.replay_events import KIND as KIND_EVENTS
from surmesure.collect.replay_events import replay_events
from surmesure.collect.validate import validate
from surmesure.dispatch import dispatcher
from surmesure.protect import quarantined, screening, suppression
from surmesure.store import schema
from surmesure.store.engine import Store

q = schema.quarantine


@dataclass
class ReplayResult:
    """What a replay did: records now stored (``replayed``, of which ``duplicate`` were
    already there), still refused (``still_open``, by reason) and not replayable (rows that
    never were records)."""

    run_ids: list[int] = field(default_factory=list)
    considered: int = 0
    replayed: int = 0
    duplicate: int = 0
    still_open: int = 0
    not_replayable: int = 0
    new_people: int = 0
    merges: int = 0
    still_open_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Group:
    run_id: int | None
    kind: str
    source_name: str
    origin: str
    ids: list[int] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


ROW_REPLAYS = "surmesure.deliver.replays"
"""Where the rows a campaign brings back (call outcomes, returned letters) are replayed: a
later stage, imported when first needed, so collect imports none (as
:mod:`surmesure.dispatch.subscribers` names the handlers of the outbox)."""


def _rows_stage() -> Any:
    return importlib.import_module(ROW_REPLAYS)


def _row_number(location: str) -> int:
    head, _, number = location.rpartition(" ")
    return int(number) if head == "row" and number.isdigit() else 0


def _groups(
    conn: Connection, run_id: int | None, kind: str | None, reason: str | None = None
) -> list[_Group]:
    # messages (kind "events") are not mapped records: no mapping fix replays them
    rows_kinds = list(_rows_stage().ROW_KINDS)
    where = [
        q.c.status == "open",
        # the rows a campaign brings back are replayed whether a file or the API brought them
        sa.or_(
            sa.and_(q.c.origin == "import", q.c.kind.in_([*KINDS, *rows_kinds])),
            sa.and_(q.c.origin == "api", q.c.kind.in_(rows_kinds)),
        ),
    ]
    if run_id is not None:
        where.append(q.c.run_id == run_id)
    if kind is not None:
        where.append(q.c.kind == kind)
    if reason is not None:
        where.append(q.c.reason == reason)
    groups: dict[tuple[int | None, str, str, str], _Group] = {}
    for batch in quarantined.batches(conn, *where):
        for row in batch:
            key = (row["run_id"], row["kind"], row["source_name"], row["origin"])
            group = groups.setdefault(key, _Group(*key))
            payload = row["payload"]
            if isinstance(payload, str):
                payload = orjson.loads(payload)
            group.ids.append(int(row["quarantine_id"]))
            # a record whose key is gone no longer has a payload: it cannot be replayed
            group.payloads.append(payload if isinstance(payload, dict) else {quarantine.ERASED: []})
            group.rows.append(_row_number(row["location"]))
    return list(groups.values())


def _run_mapping(conn: Connection, run_id: int | None) -> Mapping:
    stored = None
    if run_id is not None:
        stored = conn.execute(
            sa.select(schema.import_runs.c.mapping).where(schema.import_runs.c.run_id == run_id)
        ).scalar_one_or_none()
    if stored is None:
        return Mapping(name="default", source="import")
    document = stored if isinstance(stored, dict) else orjson.loads(stored)
    fields = {k: v for k, v in document.items() if k != "name"}
    return mapping_from_dict(fields, name=document.get("name"))


def replay(
    store: Store,
    *,
    run_id: int | None = None,
    kind: str | None = None,
    mapping: Path | None = None,
    preset: str | None = None,
    reason: str | None = None,
    given: Mapping | None = None,
) -> ReplayResult:
    """Replay the open import records of ``run_id`` and/or ``kind`` (all when neither), and
    without ``run_id`` nor ``reason`` the messages kept for their currency (kind ``events``,
    :mod:`surmesure.collect.replay_events`). ``reason``: only the import records refused for
    that reason (as the quarantine summary words it). The mapping is ``given``, else the file
    ``mapping`` or the ``preset``, else each run's own."""
    clock = time.perf_counter()
    if kind is not None and kind not in (*_rows_stage().ROW_KINDS, KIND_EVENTS):
        check_kind(kind)
    if given is None and (mapping or preset):
        given = resolve_mapping(mapping, preset)
    result = ReplayResult()
    reasons: Counter[str] = Counter()
    now = utcnow()
    with store.begin() as conn:
        if kind in (None, KIND_EVENTS) and run_id is None and reason is None:
            counts = replay_events(store, conn, now, reasons)
            result.considered += counts[0]
            result.replayed += counts[1]
            result.duplicate += counts[2]
            result.still_open += counts[3]
        for group in _groups(conn, run_id, kind, reason) if kind != KIND_EVENTS else ():
            if group.kind in _rows_stage().ROW_KINDS:
                _replay_rows(store, conn, group, given, now, result, reasons)
                continue
            used = _run_mapping(conn, group.run_id)
            chosen = effective_mapping(given or used, (given or used).source or used.source)
            _replay_group(store, conn, group, chosen, now, result, reasons)
    dispatcher.settle(store)  # what the replay stored reaches the later stages at once
    result.still_open_by_reason = dict(reasons.most_common())
    result.seconds = round(time.perf_counter() - clock, 3)
    return result


def _replayable(group: _Group, result: ReplayResult) -> list[int]:
    """The places of the group's records that can be replayed (counted in ``result``)."""
    result.considered += len(group.ids)
    keep = [
        i
        for i, p in enumerate(group.payloads)
        if not any(mark in p for mark in quarantine.UNREPLAYABLE)
    ]
    result.not_replayable += len(group.ids) - len(keep)
    return keep


def _replay_rows(
    store: Store,
    conn: Connection,
    group: _Group,
    given: Mapping | None,
    now: Any,
    result: ReplayResult,
    reasons: Counter[str],
) -> None:
    """A file of rows that came back from a campaign (:mod:`surmesure.deliver.replays`)."""
    mapping = given or Mapping(name="default")
    stage = _rows_stage()
    stage.check_mapping(mapping, group.kind)
    keep = _replayable(group, result)
    if not keep:
        return
    ids = [group.ids[i] for i in keep]
    payloads = [group.payloads[i] for i in keep]
    done = stage.replay_rows(
        store, conn, group.kind, group.source_name, ids, payloads, mapping, now, group.origin
    )
    result.replayed += done.replayed
    result.duplicate += done.duplicate
    result.still_open += len(done.refused)
    reasons.update(done.refused)


def _replay_group(
    store: Store,
    conn: Connection,
    group: _Group,
    mapping: Mapping,
    now: Any,
    result: ReplayResult,
    reasons: Counter[str],
) -> None:
    keep = _replayable(group, result)
    if not keep:
        return
    payloads = [group.payloads[i] for i in keep]
    ids = [group.ids[i] for i in keep]
    line_numbers = [p.get(quarantine.LINE_NO) for p in payloads]
    records = [{k: v for k, v in p.items() if k not in quarantine.RESERVED} for p in payloads]
    raw = table_from_records(records)
    rows = pa.array([group.rows[i] for i in keep], pa.int64())
    mapping.check_kind(group.kind)
    mapped = map_records(
        raw,
        group.kind,
        mapping,
        origin=f"the quarantined records of {group.source_name}",
        line_numbers=line_numbers if group.kind == "orders" else None,
    )
    settings = store.settings
    validation = validate(
        mapped, group.kind, timezone=mapping.timezone, region=settings.default_country
    )
    run_id = store.next_ids(conn, schema.import_run_id_seq, 1)[0]
    loaded = load(
        store,
        conn,
        group.kind,
        validation.table,
        rows,
        mapping=mapping,
        source=mapping.source or "import",
        origin=group.source_name,
        now=now,
        settings=settings,
    )
    refused = {r.pos: r for r in validation.rejections}
    erased = screening.screen_rejected(
        store,
        conn,
        mapped,
        sorted(refused),
        key=settings.suppression_key,
        region=settings.default_country,
    )
    erased.update(loaded.erased)
    for pos, kinds in erased.items():
        # the record of an erased person is not kept (its key is destroyed): only the kinds
        item = screening.refused_item("", kinds)
        quarantined.reseal(
            conn,
            ids[pos],
            None,
            quarantine.payload_json(item.payload),
            now=now,
            fresh_key=True,
            field=item.field,
            reason=item.reason,
        )
    for pos, rejection in refused.items():
        if pos in erased:
            continue
        quarantined.reseal(
            conn,
            ids[pos],
            quarantine.clean(rejection.value),
            quarantine.payload_json(payloads[pos]),
            now=now,
            field=rejection.field,
            reason=rejection.reason,
        )
    refused_or_erased = set(refused) | set(erased)
    for pos in refused_or_erased:
        reasons[suppression.REASON if pos in erased else refused[pos].reason] += 1
    done = [ids[p] for p in range(len(ids)) if p not in refused_or_erased]
    if done:
        conn.execute(
            q.update().where(q.c.quarantine_id.in_(done)).values(status="replayed", replayed_at=now)
        )
    # keyed: a plain hash of a few records could be matched against guessed ones
    digest = quarantined.digest(store, quarantine.payload_json({"records": payloads}))
    record_run(
        store,
        conn,
        run_id,
        kind=group.kind,
        path=f"replay:{group.source_name}",
        sha256=digest,
        mapping=mapping,
        started_at=now,
        counts=(len(ids), loaded.new + loaded.updated, len(refused_or_erased), loaded.duplicate),
    )
    result.run_ids.append(run_id)
    result.replayed += len(done)
    result.duplicate += loaded.duplicate
    result.still_open += len(refused_or_erased)
    result.new_people += loaded.new_people
    result.merges += loaded.merges
