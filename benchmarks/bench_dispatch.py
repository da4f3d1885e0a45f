"""Events per second from collection to real-time segment membership, on DuckDB, beside the
collection-only rate of the same run.

The events are those of ``bench_collect`` (page, track and identify calls of 5,000 devices),
validated beforehand, then written through ``write_events`` in transactions of ``--per-commit``
messages, as the event writer groups them. Two phases on fresh stores, alternating round by
round so that the machine's load falls on both alike:

- collection only: the writes, no dispatch (no segment saved, as collection was measured
  before the dispatcher);
- end to end: three saved segments that page, track and identify events can change, and the
  server's dispatcher thread (:class:`surmesure.dispatch.background.Background`) kicked after
  each commit; the clock stops when every change is delivered (segment membership updated).
  The lag is the time from the last commit to the last delivery.

    python benchmarks/bench_dispatch.py [--events 100000] [--per-commit 2000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench_collect import SEGMENTS, make_bodies
from surmesure.clock import utcnow
from surmesure.collect.events import write_events
from surmesure.collect.segment import Accepted, validate_messages
from surmesure.config import Settings
from surmesure.dispatch import background as background_module
from surmesure.dispatch import dispatcher
from surmesure.dispatch.background import Background
from surmesure.segment import repository
from surmesure.segment.definitions import parse
from surmesure.store import Store, open_store


def messages(events: int, per_commit: int) -> list[list[Accepted]]:
    raw = [m for body in make_bodies(events, "bd") for m in orjson.loads(body)["batch"]]
    accepted, refused = validate_messages(raw, region="FR", prefix="")
    assert not refused, refused[:3]
    return [accepted[i : i + per_commit] for i in range(0, len(accepted), per_commit)]


BUSY: list[float] = []


def _timed_settle(store: Store, settings: Settings | None = None) -> dict[str, int]:
    """The dispatcher's round, timed: how long the dispatcher thread was busy."""
    clock = time.perf_counter()
    try:
        return dispatcher.settle(store, settings)
    finally:
        BUSY.append(time.perf_counter() - clock)


background_module.settle = _timed_settle  # type: ignore[assignment]


def run(chunks: list[list[Accepted]], folder: Path, *, dispatch: bool) -> dict[str, float]:
    store = open_store(f"duckdb:///{folder / ('e2e' if dispatch else 'collect')}.duckdb")
    settings = Settings(database_url=store.url)
    background = Background(store, settings, period=0.5) if dispatch else None
    try:
        if background is not None:
            for segment in SEGMENTS:
                repository.save(store, parse(segment), datetime(2026, 1, 1))
            background.start()
        BUSY.clear()
        clock = time.perf_counter()
        for chunk in chunks:
            with store.begin() as conn:
                write_events(
                    store, conn, chunk, source="web", received_at=utcnow(), settings=settings
                )
            if background is not None:
                background.kick()
        committed = time.perf_counter()
        if background is not None:
            background.stop()  # delivers what is left, then stops
        done = time.perf_counter()
        return {
            "events": sum(len(c) for c in chunks),
            "seconds": done - clock,
            "lag": done - committed,
            "members": _members(store) if dispatch else 0,
            "behind": _behind(store) if dispatch else 0,
            "busy": sum(BUSY),
            "rounds": len(BUSY),
        }
    finally:
        store.dispose()


def _members(store: Store) -> int:
    with store.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM segment_members").scalar_one())


def _behind(store: Store) -> int:
    """Changes the membership subscriber has not had (delivered ones may be pruned)."""
    position = dispatcher.cursors(store, ["segment_membership"])["segment_membership"]
    with store.connect() as conn:
        return int(
            conn.exec_driver_sql(
                f"SELECT count(*) FROM changes WHERE change_id > {int(position)}"
            ).scalar_one()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-commit", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    chunks = messages(args.events, args.per_commit)
    results: dict[str, list[dict[str, float]]] = {"collect": [], "e2e": []}
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        for round_ in range(args.rounds):
            for name in ("collect", "e2e"):
                folder = Path(tmp) / f"{round_}"
                folder.mkdir(exist_ok=True)
                results[name].append(run(chunks, folder, dispatch=name == "e2e"))
    collect = statistics.median(r["events"] / r["seconds"] for r in results["collect"])
    e2e = statistics.median(r["events"] / r["seconds"] for r in results["e2e"])
    last: dict[str, Any] = results["e2e"][-1]
    print(f"events {args.events:,}, {args.per_commit:,} a commit, {args.rounds} rounds (median)")
    print(f"collection only          {collect:>10,.0f} events/s")
    print(f"collection -> membership {e2e:>10,.0f} events/s  ({e2e / collect:.0%} of collection)")
    print(
        f"lag after the last commit {statistics.median(r['lag'] for r in results['e2e']):.2f} s; "
        f"members {last['members']:,}; changes left undelivered {last['behind']:,}"
    )
    print(f"dispatcher busy {last['busy']:.2f} s in {last['rounds']} rounds (last run)")


if __name__ == "__main__":
    main()
