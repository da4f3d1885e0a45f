"""What a web page's view costs the server once stored: the dispatcher's round and the serving
cache's news, in one process on DuckDB.

``--customers`` customers (default 2,000) are identified, a segment reads one of their events
in real time (``Product Viewed`` within 90 days, as the demo's ``lyon_loyal``), and a serving
cache holds them all. Then ``--events`` views (default 400) are stored one at a time, each as
``POST /v1/web/events`` stores it (a ``Promotion Viewed`` of a logged-in customer), and
delivered by :func:`surmesure.dispatch.dispatcher.drain` (segments, people, journeys, and the
cache's re-read of whom the people's news names). Two ways take turns, a tenth of the events
at a time: ``told``, every event's person is news (as before views were quiet), and
``quiet``, as the dispatcher tells now. Printed: processor seconds of this process per view
(its threads included: the cache's writer runs beside), the people the cache re-read, and the
ratio of the two ways.

    python benchmarks/bench_web_events.py [--customers N] [--events N] [--json]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("SURMESURE_SUPPRESSION_KEY", "bench-web-events-suppression")
os.environ.setdefault("SURMESURE_ENCRYPTION_KEY", "bench-web-events-encryption")

import orjson

from surmesure.clock import utcnow
from surmesure.collect.events import write_events
from surmesure.collect.segment import Accepted, Refusal, validate_messages
from surmesure.decide.serving import Serving
from surmesure.dispatch import dispatcher, people
from surmesure.domain.segments import SegmentDefinition
from surmesure.segment import repository
from surmesure.store import Store, open_store
from surmesure.web.events import messages
from surmesure.web.identity import Visitor

VIEWERS = SegmentDefinition.model_validate(
    {
        "name": "viewers",
        "where": {"event": {"type": "track", "name": "Product Viewed", "within_days": 90}},
    }
)


def world(store: Store, customers: int) -> None:
    repository.save(store, VIEWERS, utcnow())
    raw = [
        {"type": "identify", "userId": f"C-{i}", "messageId": f"crm-{i}",
         "traits": {"first_name": "Camille", "city": "Lyon"}}
        for i in range(customers)
    ]  # fmt: skip
    stored(store, validate_messages(raw, region="FR", prefix=""), "crm")
    dispatcher.drain(store)


def view(store: Store, customer: str) -> None:
    """One view of the home banner by ``customer``, stored as the web route stores it."""
    who = Visitor(anonymous_id=uuid.uuid4().hex, cookie="", issued=False, customer_id=customer)
    item = {"type": "view", "placement": "home_banner", "decision_id": uuid.uuid4().hex,
            "content_id": "banner"}  # fmt: skip
    stored(store, messages(who, [item], "FR"), "web")


def stored(store: Store, found: tuple[list[Accepted], list[Refusal]], source: str) -> None:
    """Store the messages ``found`` valid, as collect does, from ``source``."""
    accepted, refused = found
    assert not refused
    with store.begin() as conn:
        write_events(store, conn, accepted, source=source, received_at=utcnow())


def run(customers: int, events: int) -> dict[str, Any]:
    quiet = people._quiet
    with tempfile.TemporaryDirectory(prefix="bench-web-events-") as folder:
        store = open_store(f"duckdb:///{Path(folder) / 'store.duckdb'}")
        serving = Serving(store, refresh_seconds=3_600, flush_ms=20, cache_people=customers * 2)
        try:
            world(store, customers)
            serving.ensure_started()
            serving.warm_done.wait(60)
            cache = serving.view()
            spent = {"told": 0.0, "quiet": 0.0}
            drains = {"told": 0.0, "quiet": 0.0}
            loads = {"told": 0, "quiet": 0}
            done = {"told": 0, "quiet": 0}
            step = max(events // 10, 1)
            for turn, start in enumerate(range(0, events, step)):
                for way in ("told", "quiet") if turn % 2 == 0 else ("quiet", "told"):
                    people._quiet = quiet if way == "quiet" else lambda delivery: frozenset()  # type: ignore[assignment]
                    before, used = cache.loads, time.process_time()
                    for k in range(start, min(start + step, events)):
                        view(store, f"C-{k % customers}")
                        delivered = time.process_time()
                        dispatcher.drain(store)
                        drains[way] += time.process_time() - delivered
                    spent[way] += time.process_time() - used
                    loads[way] += cache.loads - before
                    done[way] += min(start + step, events) - start
        finally:
            people._quiet = quiet  # type: ignore[assignment]
            serving.stop()
            store.dispose()
    out: dict[str, Any] = {
        way: {"views": done[way], "cpu_ms_per_view": 1000 * spent[way] / done[way],
              "drain_cpu_ms_per_view": 1000 * drains[way] / done[way],
              "cache_reads": loads[way]}
        for way in spent
    }  # fmt: skip
    out["cpu_ratio_quiet_to_told"] = spent["quiet"] / spent["told"]
    out["drain_cpu_ratio_quiet_to_told"] = drains["quiet"] / drains["told"]
    out["load_average"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = run(args.customers, args.events)
    if args.json:
        print(orjson.dumps(out).decode())
        return
    for way in ("told", "quiet"):
        row = out[way]
        print(
            f"{way}: {row['cpu_ms_per_view']:.2f} ms of processor time per view, of which "
            f"{row['drain_cpu_ms_per_view']:.2f} ms delivering it ({row['views']} views, "
            f"{row['cache_reads']} cache reads)"
        )
    print(
        f"quiet / told: {out['cpu_ratio_quiet_to_told']:.2f} of the processor time per view, "
        f"{out['drain_cpu_ratio_quiet_to_told']:.2f} of its delivery's; load "
        f"average {', '.join(f'{x:.1f}' for x in out['load_average'])}"
    )


if __name__ == "__main__":
    main()
